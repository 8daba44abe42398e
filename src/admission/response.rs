//! Writing the AdmissionReview response by hand (kube's typed response serialises patches wrongly,
//! kube-rs #1781): uid echoed, the request's apiVersion, 403 and a message on deny, warnings bounded as
//! the API server wants them, and base64 JSONPatch with `patchType: JSONPatch`.

use serde_json::{json, Map, Value as Json};

use super::patch;
use super::review::Review;
use crate::policy::decision::{truncate, Decision};
use crate::report::model::Action;

/// Maximum length of one warning, in bytes (the API server truncates longer ones).
pub const MAX_WARNING_LEN: usize = 120;
/// Maximum total length of all warnings, in bytes.
pub const MAX_WARNINGS_TOTAL: usize = 4096;
/// Maximum length of the deny message.
pub const MAX_MESSAGE_LEN: usize = 4096;

/// Which webhook endpoint answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// Validating webhook: allowed or denied, with warnings; never a patch.
    Validate,
    /// Mutating webhook: always allowed unless a mutation policy failed closed; carries the patch.
    Mutate,
}

impl Endpoint {
    pub fn as_str(self) -> &'static str {
        match self {
            Endpoint::Validate => "validate",
            Endpoint::Mutate => "mutate",
        }
    }
}

/// Strips control characters (warnings travel in an HTTP header) and bounds the length.
fn clean(text: &str, max: usize) -> String {
    if !text.chars().any(char::is_control) {
        return truncate(text.trim(), max);
    }
    let flat: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    truncate(flat.trim(), max)
}

/// Warnings for the response: `[policy] message`, each at most 120 bytes, 4096 in total; when the budget
/// runs out the last warning says how many were left out.
pub fn warnings(decision: &Decision) -> Vec<String> {
    let all: Vec<String> = decision
        .with_action(Action::Warn)
        .map(|r| clean(&format!("[{}] {}", r.policy, r.message), MAX_WARNING_LEN))
        .collect();
    let mut out: Vec<String> = Vec::new();
    let mut total = 0;
    for (i, w) in all.iter().enumerate() {
        let remaining_after = all.len() - i - 1;
        // Keep room for a closing "N more" note when more follow.
        let reserve = if remaining_after > 0 { 40 } else { 0 };
        if total + w.len() + reserve > MAX_WARNINGS_TOTAL {
            out.push(format!("{} more warnings not shown", all.len() - i));
            break;
        }
        total += w.len();
        out.push(w.clone());
    }
    out
}

/// The deny message: every deny-level result as `[policy] message (field)`, joined with `; `.
pub fn deny_message(decision: &Decision) -> String {
    let parts: Vec<String> = decision
        .with_action(Action::Deny)
        .map(|r| match &r.field {
            Some(f) => format!("[{}] {} ({f})", r.policy, r.message),
            None => format!("[{}] {}", r.policy, r.message),
        })
        .collect();
    clean(&parts.join("; "), MAX_MESSAGE_LEN)
}

/// The full AdmissionReview response for `review` at `endpoint`.
pub fn build(review: &Review, decision: &Decision, endpoint: Endpoint) -> Json {
    let mut response = Map::new();
    response.insert("uid".into(), Json::String(review.uid.clone()));
    let allowed = decision.allowed();
    response.insert("allowed".into(), Json::Bool(allowed));
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
        response.insert("patchType".into(), Json::String("JSONPatch".into()));
        response.insert("patch".into(), Json::String(patch::encode(&decision.patch)));
    }
    json!({
        "apiVersion": review.api_version,
        "kind": "AdmissionReview",
        "response": Json::Object(response),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::decision::{PolicyResult, RuleKind};
    use crate::report::model::Severity;

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
}
