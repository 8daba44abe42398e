//! A decision as the AdmissionReview response, written by hand (kube's typed response serialises
//! patches wrongly, kube-rs #1781): uid echoed, the request's apiVersion, 403 and a message on deny, warnings bounded as
//! the API server wants them, and base64 JSONPatch with `patchType: JSONPatch`.

use serde::Serialize;
use serde_json::Value as Json;

use super::decision::{truncate, Decision};
use super::enforcement::Action;
use crate::admission::patch;
use crate::admission::{Endpoint, Review};

/// Maximum length of one warning, in bytes (the API server truncates longer ones).
pub const MAX_WARNING_LEN: usize = 120;
/// Maximum total length of all warnings, in bytes.
pub const MAX_WARNINGS_TOTAL: usize = 4096;
/// Maximum length of the deny message.
pub const MAX_MESSAGE_LEN: usize = 4096;

/// Strips control characters (warnings travel in an HTTP header) and bounds the length. Text that needs
/// neither (the usual case) is returned as it is, without a copy.
fn clean(text: String, max: usize) -> String {
    if !has_control(&text) {
        let trimmed = text.trim();
        if trimmed.len() == text.len() && text.len() <= max {
            return text;
        }
        return truncate(trimmed, max);
    }
    let flat: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    truncate(flat.trim(), max)
}

/// Whether `text` holds a control character (Unicode category Cc: U+0000–U+001F and U+007F–U+009F),
/// read byte by byte: the C1 range is encoded as 0xC2 0x80–0x9F in UTF-8. A scan without early exit
/// (which the compiler vectorises) first looks for any byte that can start one; only text that has such
/// a byte, which messages seldom do, is scanned exactly.
fn has_control(text: &str) -> bool {
    let bytes = text.as_bytes();
    let candidate = bytes.iter().fold(false, |seen, &b| {
        seen | (b < 0x20) | (b == 0x7f) | (b == 0xc2)
    });
    candidate
        && bytes.iter().enumerate().any(|(i, &b)| {
            b < 0x20
                || b == 0x7f
                || (b == 0xc2 && bytes.get(i + 1).is_some_and(|n| (0x80..=0x9f).contains(n)))
        })
}

/// Warnings for the response: `[policy] message`, each at most 120 bytes, 4096 in total; when the budget
/// runs out the last warning says how many were left out.
pub fn warnings(decision: &Decision) -> Vec<String> {
    let all: Vec<String> = decision
        .with_action(Action::Warn)
        .map(|r| {
            let mut warning = String::with_capacity(r.policy.len() + r.message.len() + 3);
            push_tagged(&mut warning, &r.policy, &r.message);
            clean(warning, MAX_WARNING_LEN)
        })
        .collect();
    let mut out: Vec<String> = Vec::with_capacity(all.len());
    let mut total = 0;
    let count = all.len();
    for (i, w) in all.into_iter().enumerate() {
        let remaining_after = count - i - 1;
        // Keep room for a closing "N more" note when more follow.
        let reserve = if remaining_after > 0 { 40 } else { 0 };
        if total + w.len() + reserve > MAX_WARNINGS_TOTAL {
            out.push(format!("{} more warnings not shown", count - i));
            break;
        }
        total += w.len();
        out.push(w);
    }
    out
}

/// Appends `[policy] message` (appending cost less than the formatting machinery).
fn push_tagged(out: &mut String, policy: &str, message: &str) {
    out.push('[');
    out.push_str(policy);
    out.push_str("] ");
    out.push_str(message);
}

/// The deny message: every deny-level result as `[policy] message (field)`, joined with `; `.
pub fn deny_message(decision: &Decision) -> String {
    let mut message = String::new();
    for r in decision.with_action(Action::Deny) {
        if !message.is_empty() {
            message.push_str("; ");
        }
        push_tagged(&mut message, &r.policy, &r.message);
        if let Some(f) = &r.field {
            message.push_str(" (");
            message.push_str(f);
            message.push(')');
        }
    }
    clean(message, MAX_MESSAGE_LEN)
}

/// The AdmissionReview response, serialised straight to its wire form (keys in the order serde_json's
/// map would give them, so [`build`] and [`write`] spell the same document).
#[derive(Serialize)]
struct Envelope<'a> {
    #[serde(rename = "apiVersion")]
    api_version: &'a str,
    kind: &'static str,
    response: Answer<'a>,
}

#[derive(Serialize)]
struct Answer<'a> {
    allowed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    patch: Option<String>,
    #[serde(rename = "patchType", skip_serializing_if = "Option::is_none")]
    patch_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<Status>,
    uid: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    warnings: Vec<String>,
}

#[derive(Serialize)]
struct Status {
    code: u16,
    message: String,
    reason: &'static str,
}

fn envelope<'a>(
    api_version: &'a str,
    uid: &'a str,
    decision: &Decision,
    endpoint: Endpoint,
) -> Envelope<'a> {
    let allowed = decision.allowed();
    let patched = endpoint == Endpoint::Mutate && allowed && !decision.patch.is_empty();
    Envelope {
        api_version,
        kind: "AdmissionReview",
        response: Answer {
            allowed,
            patch: patched.then(|| patch::encode(&decision.patch)),
            patch_type: patched.then_some("JSONPatch"),
            status: (!allowed).then(|| Status {
                code: 403,
                message: deny_message(decision),
                reason: "Forbidden",
            }),
            uid,
            warnings: warnings(decision),
        },
    }
}

/// The full AdmissionReview response for `review` at `endpoint`, as a JSON tree.
pub fn build(review: &Review, decision: &Decision, endpoint: Endpoint) -> Json {
    serde_json::to_value(envelope(
        &review.api_version,
        &review.uid,
        decision,
        endpoint,
    ))
    .unwrap_or(Json::Null)
}

/// [`build`], serialised: the body the server sends for a review of `api_version` with `uid`, written
/// without building the tree first.
pub fn write(api_version: &str, uid: &str, decision: &Decision, endpoint: Endpoint) -> String {
    serde_json::to_string(&envelope(api_version, uid, decision, endpoint)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::decision::{PolicyResult, RuleKind};
    use crate::policy::Severity;
    use serde_json::json;

    fn result(action: Action, message: &str) -> PolicyResult {
        PolicyResult {
            policy: "p".into(),
            title: "T".into(),
            severity: Severity::High,
            action,
            rule: RuleKind::Deny,
            message: message.into(),
            field: None,
        }
    }

    fn review() -> Review {
        Review {
            api_version: "admission.k8s.io/v1beta1".into(),
            uid: "abc".into(),
            request: json!({}),
        }
    }

    #[test]
    fn deny_has_403_and_echoes_uid_and_version() {
        let d = Decision {
            results: vec![result(Action::Deny, "no")],
            ..Default::default()
        };
        let r = build(&review(), &d, Endpoint::Validate);
        assert_eq!(r["apiVersion"], "admission.k8s.io/v1beta1");
        assert_eq!(r["response"]["uid"], "abc");
        assert_eq!(r["response"]["allowed"], false);
        assert_eq!(r["response"]["status"]["code"], 403);
        assert_eq!(r["response"]["status"]["message"], "[p] no");
    }

    #[test]
    fn warnings_are_bounded() {
        let long = "é".repeat(200);
        let d = Decision {
            results: (0..100).map(|_| result(Action::Warn, &long)).collect(),
            ..Default::default()
        };
        let w = warnings(&d);
        assert!(w.iter().all(|w| w.len() <= MAX_WARNING_LEN));
        assert!(w.iter().map(String::len).sum::<usize>() <= MAX_WARNINGS_TOTAL);
        assert!(w.last().unwrap().ends_with("more warnings not shown"));
        assert!(w.iter().all(|w| !w.contains('\n')));
    }

    #[rstest::rstest]
    #[case::plain("no control characters  ", "no control characters")]
    #[case::newline_and_tab("line one\nline\ttwo", "line one line two")]
    #[case::carriage_return_at_the_end("done\r", "done")]
    #[case::long_plain(&"x".repeat(200), &"x".repeat(200))]
    fn warnings_are_flattened_and_trimmed(#[case] message: &str, #[case] expected: &str) {
        let d = Decision {
            results: vec![result(Action::Warn, message)],
            ..Default::default()
        };
        let w = warnings(&d);
        assert_eq!(
            w,
            vec![truncate(&format!("[p] {expected}"), MAX_WARNING_LEN)]
        );
    }

    #[test]
    fn patch_only_on_mutate_and_base64() {
        let d = Decision {
            patch: vec![json!({"op": "add", "path": "/a", "value": 1})],
            ..Default::default()
        };
        let v = build(&review(), &d, Endpoint::Validate);
        assert!(v["response"].get("patch").is_none());
        let m = build(&review(), &d, Endpoint::Mutate);
        assert_eq!(m["response"]["patchType"], "JSONPatch");
        assert_eq!(m["response"]["patch"], patch::encode(&d.patch));
    }

    /// The response as the tree was built before the serialisable envelope: every key spelled out.
    fn reference(review: &Review, decision: &Decision, endpoint: Endpoint) -> Json {
        let mut response = serde_json::Map::new();
        response.insert("uid".into(), json!(review.uid));
        let allowed = decision.allowed();
        response.insert("allowed".into(), json!(allowed));
        if !allowed {
            response.insert(
                "status".into(),
                json!({"code": 403, "reason": "Forbidden", "message": deny_message(decision)}),
            );
        }
        let warnings = warnings(decision);
        if !warnings.is_empty() {
            response.insert("warnings".into(), json!(warnings));
        }
        if endpoint == Endpoint::Mutate && allowed && !decision.patch.is_empty() {
            response.insert("patchType".into(), json!("JSONPatch"));
            response.insert("patch".into(), json!(patch::encode(&decision.patch)));
        }
        json!({"apiVersion": review.api_version, "kind": "AdmissionReview", "response": response})
    }

    #[rstest::rstest]
    #[case::allowed_quietly(vec![], false)]
    #[case::denied(vec![(Action::Deny, "no \"quotes\" \\ here"), (Action::Deny, "two")], false)]
    #[case::warned(vec![(Action::Warn, "careful\u{7}"), (Action::Dryrun, "seen")], false)]
    #[case::denied_and_warned(vec![(Action::Warn, "w"), (Action::Deny, "é ✓ \u{85}")], false)]
    #[case::patched(vec![(Action::Warn, "w")], true)]
    #[case::patch_withheld_on_deny(vec![(Action::Deny, "no")], true)]
    fn the_written_body_is_the_tree_serialised(
        #[case] results: Vec<(Action, &str)>,
        #[case] with_patch: bool,
    ) {
        let decision = Decision {
            results: results.iter().map(|(a, m)| result(*a, m)).collect(),
            patch: if with_patch {
                vec![json!({"op": "add", "path": "/metadata/labels/a", "value": "b"})]
            } else {
                vec![]
            },
            ..Default::default()
        };
        for endpoint in [Endpoint::Validate, Endpoint::Mutate] {
            let want = reference(&review(), &decision, endpoint);
            assert_eq!(build(&review(), &decision, endpoint), want);
            let review = review();
            let written = write(&review.api_version, &review.uid, &decision, endpoint);
            // The same bytes as serialising the tree (keys in the same order), and the same document.
            assert_eq!(written, want.to_string());
            assert_eq!(serde_json::from_str::<Json>(&written).unwrap(), want);
        }
    }

    #[rstest::rstest]
    #[case::kept_as_it_is("plain text", 20, "plain text")]
    #[case::kept_at_the_limit("exactly10!", 10, "exactly10!")]
    #[case::trimmed("  padded ", 20, "padded")]
    #[case::truncated("a longer message", 10, "a longe…")]
    #[case::trimmed_then_truncated("  a longer message", 10, "a longe…")]
    #[case::control_flattened("bell\u{7}ringing\n", 20, "bell ringing")]
    fn clean_returns_what_the_header_may_carry(
        #[case] text: &str,
        #[case] max: usize,
        #[case] expected: &str,
    ) {
        assert_eq!(clean(text.to_string(), max), expected);
    }

    #[rstest::rstest]
    #[case::one_without_field(vec![("a", "no", None)], "[a] no")]
    #[case::one_with_field(vec![("a", "no", Some("spec.x"))], "[a] no (spec.x)")]
    #[case::joined(
        vec![("a", "no", Some("f")), ("b", "not either", None), ("c", " padded\t", Some("g"))],
        "[a] no (f); [b] not either; [c]  padded  (g)"
    )]
    fn the_deny_message_tags_each_denial_with_its_policy_and_field(
        #[case] denials: Vec<(&str, &str, Option<&str>)>,
        #[case] expected: &str,
    ) {
        let decision = Decision {
            results: denials
                .iter()
                .map(|(policy, message, field)| PolicyResult {
                    policy: policy.to_string(),
                    field: field.map(str::to_string),
                    ..result(Action::Deny, message)
                })
                .chain([result(Action::Warn, "not a denial")])
                .collect(),
            ..Default::default()
        };
        assert_eq!(deny_message(&decision), expected);
    }

    #[test]
    fn control_characters_are_found_as_char_is_control_finds_them() {
        let samples: Vec<char> = (0u32..0x300)
            .chain([0x2028, 0x2029, 0x200b, 0xfeff, 0x1f600])
            .filter_map(char::from_u32)
            .collect();
        for c in samples {
            for text in [
                c.to_string(),
                format!("a{c}b"),
                format!("é{c}"),
                format!("{c}\u{c2}"),
            ] {
                assert_eq!(
                    has_control(&text),
                    text.chars().any(char::is_control),
                    "{text:?}"
                );
            }
        }
    }
}
