//! The `text` format: plain, uncoloured lines for a terminal or a CI log.
//!
//! Layout, in this order (sections separated by one blank line, empty sections left out):
//! 1. one line per finding, in report order:
//!    `file:line: ACTION policy: Kind/ns/name: message (field)`;
//! 2. one line per patch operation the mutating webhook would apply, in report order:
//!    `file:line: PATCH policy: Kind/ns/name: op /json/pointer = value` (the value as compact JSON,
//!    cut to 80 characters; no `= value` for `remove`);
//! 3. one line per input error: `file:line: error: message`;
//! 4. `How to fix:` with, for each policy that fired and has a remediation, sorted by policy id,
//!    `  policy (title):` followed by the remediation indented by four spaces;
//! 5. the summary as the last line, e.g.
//!    `42 objects checked: 3 denied (2 objects), 1 warning, 0 dry-run, 1 input error`,
//!    or `42 objects checked: no violations` when there are no findings and no input errors; when
//!    the mutating webhook would change objects, `, 4 patches (2 objects) by the mutating webhook`
//!    is appended.
//!
//! `-` (stdin) is shown as `stdin`. Control characters in messages are neutralised (line breaks
//! and tabs become spaces, others are shown as `\u{..}`), so one finding is always one line and
//! policy text cannot send terminal escape sequences.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Write};

use super::display_path;
use super::model::{Action, Report};

/// Writes `report` as text.
pub fn write(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    let mut wrote_section = false;

    for f in &report.findings {
        write!(
            out,
            "{}:{}: {} {}: {}: {}",
            one_line(display_path(&f.location.file)),
            f.location.line,
            f.action.as_str().to_ascii_uppercase(),
            one_line(&f.policy),
            one_line(&f.object.display()),
            one_line(&f.message),
        )?;
        if let Some(field) = &f.field {
            write!(out, " ({})", one_line(field))?;
        }
        writeln!(out)?;
        wrote_section = true;
    }

    if !report.patches.is_empty() {
        if wrote_section {
            writeln!(out)?;
        }
        for p in &report.patches {
            writeln!(
                out,
                "{}:{}: PATCH {}: {}: {}",
                one_line(display_path(&p.location.file)),
                p.location.line,
                one_line(&p.policy),
                one_line(&p.object.display()),
                one_line(&p.describe()),
            )?;
        }
        wrote_section = true;
    }

    if !report.errors.is_empty() {
        if wrote_section {
            writeln!(out)?;
        }
        for e in &report.errors {
            writeln!(
                out,
                "{}:{}: error: {}",
                one_line(display_path(&e.location.file)),
                e.location.line,
                one_line(&e.message),
            )?;
        }
        wrote_section = true;
    }

    // Policy id -> (title, remediation), first occurrence wins.
    let mut fixes: BTreeMap<&str, (&str, &str)> = BTreeMap::new();
    for f in &report.findings {
        if let Some(remediation) = f.remediation.as_deref() {
            fixes
                .entry(f.policy.as_str())
                .or_insert((f.title.as_str(), remediation));
        }
    }
    if !fixes.is_empty() {
        if wrote_section {
            writeln!(out)?;
        }
        writeln!(out, "How to fix:")?;
        for (policy, (title, remediation)) in fixes {
            if title.is_empty() {
                writeln!(out, "  {}:", one_line(policy))?;
            } else {
                writeln!(out, "  {} ({}):", one_line(policy), one_line(title))?;
            }
            for line in remediation.lines() {
                writeln!(out, "    {}", one_line(line))?;
            }
        }
        wrote_section = true;
    }

    if wrote_section {
        writeln!(out)?;
    }
    writeln!(out, "{}", summary(report))
}

/// The summary line, without a line break.
pub fn summary(report: &Report) -> String {
    let patches = if report.patches.is_empty() {
        String::new()
    } else {
        format!(
            ", {} ({}) by the mutating webhook",
            plural(report.patches.len(), "patch", "patches"),
            plural(report.patched_objects(), "object", "objects"),
        )
    };
    format!("{}{patches}", findings_summary(report))
}

fn findings_summary(report: &Report) -> String {
    let checked = format!("{} checked", plural(report.objects, "object", "objects"));
    if report.findings.is_empty() && report.errors.is_empty() {
        return format!("{checked}: no violations");
    }
    let denied_objects: BTreeSet<_> = report
        .findings
        .iter()
        .filter(|f| f.action == Action::Deny)
        .map(|f| (&f.location, &f.object))
        .collect();
    format!(
        "{checked}: {} denied ({}), {}, {} dry-run, {}",
        report.count(Action::Deny),
        plural(denied_objects.len(), "object", "objects"),
        plural(report.count(Action::Warn), "warning", "warnings"),
        report.count(Action::Dryrun),
        plural(report.errors.len(), "input error", "input errors"),
    )
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `s` on one line: tabs and line breaks become spaces, other control characters are escaped.
fn one_line(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '\t' | '\n' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}') {
            out.push(' ');
        } else if c.is_control() {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::super::Format;
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case(0, "0 objects checked: no violations\n")]
    #[case(1, "1 object checked: no violations\n")]
    #[case(42, "42 objects checked: no violations\n")]
    fn clean_run_says_no_violations(#[case] objects: usize, #[case] want: &str) {
        let report = Report {
            objects,
            ..Report::default()
        };
        assert_eq!(render(&report, Format::Text), want);
    }

    #[test]
    fn mixed_run_lists_findings_errors_fixes_and_summary() {
        let want = "\
deploy/api.yaml:1: DRYRUN labels: Deployment/team-b/api: missing label team
deploy/api.yaml:1: DENY pod-security: Deployment/team-b/api: container api runs as root
deploy/web.yaml:1: DENY image-registry: Deployment/team-a/web: image docker.io/nginx is not from registry.example.com
deploy/web.yaml:1: DENY pod-security: Deployment/team-a/web: container web runs as root (spec.template.spec.containers[0].securityContext)
deploy/web.yaml:1: WARN resource-limits: Deployment/team-a/web: container web has no memory limit
namespaces.yaml:1: WARN labels: Namespace/team-a: missing label owner

deploy/broken.yaml:7: error: mapping values are not allowed here

How to fix:
  image-registry (Images from the approved registry):
    Pull images from registry.example.com only.
  pod-security (Pod security baseline):
    Set securityContext.runAsNonRoot: true.
  resource-limits (Resource limits):
    Set resources.limits.cpu and resources.limits.memory.

4 objects checked: 3 denied (2 objects), 2 warnings, 1 dry-run, 1 input error
";
        assert_eq!(render(&mixed(), Format::Text), want);
    }

    #[test]
    fn errors_only_run() {
        let want = "\
stdin:1: error: document has no kind
bad.yaml:3: error: did not find expected key

0 objects checked: 0 denied (0 objects), 0 warnings, 0 dry-run, 2 input errors
";
        assert_eq!(render(&errors_only(), Format::Text), want);
    }

    #[rstest]
    #[case::one_of_each(
        1,
        1,
        1,
        1,
        "9 objects checked: 1 denied (1 object), 1 warning, 1 dry-run, 1 input error"
    )]
    #[case::only_warnings(
        0,
        3,
        0,
        0,
        "9 objects checked: 0 denied (0 objects), 3 warnings, 0 dry-run, 0 input errors"
    )]
    #[case::only_dryrun(
        0,
        0,
        2,
        0,
        "9 objects checked: 0 denied (0 objects), 0 warnings, 2 dry-run, 0 input errors"
    )]
    #[case::denies_on_distinct_objects(
        3,
        0,
        0,
        0,
        "9 objects checked: 3 denied (3 objects), 0 warnings, 0 dry-run, 0 input errors"
    )]
    fn summary_wording(
        #[case] deny: usize,
        #[case] warn: usize,
        #[case] dryrun: usize,
        #[case] errors: usize,
        #[case] want: &str,
    ) {
        let mut report = Report {
            objects: 9,
            ..Report::default()
        };
        let mut n = 0;
        for (action, count) in [
            (Action::Deny, deny),
            (Action::Warn, warn),
            (Action::Dryrun, dryrun),
        ] {
            for _ in 0..count {
                n += 1;
                report.findings.push(finding(
                    loc("a.yaml", n),
                    obj("Pod", Some("ns"), &format!("p{n}")),
                    "labels",
                    action,
                    "m",
                ));
            }
        }
        for i in 0..errors {
            report.errors.push(error(loc("b.yaml", i + 1), "e"));
        }
        assert_eq!(summary(&report), want);
        assert!(render(&report, Format::Text).ends_with(&format!("\n{want}\n")));
    }

    #[test]
    fn denied_objects_counts_each_object_once() {
        let report = mixed();
        // web has two deny findings, api one.
        assert!(summary(&report).contains("3 denied (2 objects)"));
    }

    #[test]
    fn control_characters_cannot_break_lines_or_reach_the_terminal() {
        let out = render(&nasty(), Format::Text);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines[0],
            "we<ird>&\"file'.yaml:2: DENY pod-security: Pod/a&b/x<y>: bad <&>\"' value\\u{1}\\u{1b}[31m  second line\u{fffe} (spec.containers[0].env[?(@.name==\"A&B\")])"
        );
        assert_eq!(
            lines[2],
            "in]]>put.yaml:1: error: unexpected ]]> and \\u{0}"
        );
        assert!(!out.contains('\u{1b}'));
        assert!(!out.contains('\r'));
    }

    #[test]
    fn multi_line_remediation_is_indented_and_policies_without_one_are_left_out() {
        let mut report = mixed();
        for f in &mut report.findings {
            if f.policy == "pod-security" {
                f.remediation = Some("First step.\nSecond step.".to_string());
            } else {
                f.remediation = None;
            }
        }
        let out = render(&report, Format::Text);
        assert!(out.contains(
            "\n\nHow to fix:\n  pod-security (Pod security baseline):\n    First step.\n    Second step.\n\n4 objects checked:"
        ));
        assert!(!out.contains("image-registry ("));
    }

    #[test]
    fn patches_are_listed_after_findings_sorted_and_counted_in_the_summary() {
        let want = "\
deploy/api.yaml:1: DRYRUN labels: Deployment/team-b/api: missing label team
deploy/api.yaml:1: DENY pod-security: Deployment/team-b/api: container api runs as root
deploy/web.yaml:1: DENY image-registry: Deployment/team-a/web: image docker.io/nginx is not from registry.example.com
deploy/web.yaml:1: DENY pod-security: Deployment/team-a/web: container web runs as root (spec.template.spec.containers[0].securityContext)
deploy/web.yaml:1: WARN resource-limits: Deployment/team-a/web: container web has no memory limit
namespaces.yaml:1: WARN labels: Namespace/team-a: missing label owner

deploy/web.yaml:1: PATCH resource-limits: Deployment/team-a/web: add /spec/template/spec/containers/0/resources/limits/cpu = \"400m\"
deploy/web.yaml:1: PATCH resource-limits: Deployment/team-a/web: add /spec/template/spec/containers/0/resources/limits/memory = \"256Mi\"
deploy/web.yaml:30: PATCH labels: ConfigMap/team-a/settings: remove /metadata/annotations/old
deploy/web.yaml:30: PATCH labels: ConfigMap/team-a/settings: add /metadata/labels/team = \"team-a\"

deploy/broken.yaml:7: error: mapping values are not allowed here
";
        let out = render(&patched(), Format::Text);
        assert!(out.starts_with(want), "{out}");
        assert!(
            out.ends_with(
                "\n\n4 objects checked: 3 denied (2 objects), 2 warnings, 1 dry-run, 1 input error, 4 patches (2 objects) by the mutating webhook\n"
            ),
            "{out}"
        );
        // Patches never change the exit code.
        assert_eq!(patched().exit_code(), mixed().exit_code());
    }

    #[test]
    fn a_clean_run_with_patches_says_what_the_webhook_would_change() {
        let out = render(&patches_only(), Format::Text);
        assert_eq!(
            out,
            "stdin:1: PATCH resource-limits: Pod/shop/api: add /spec/containers/0/resources = \
             {\"limits\":{\"cpu\":\"400m\",\"memory\":\"256Mi\"},\"requests\":{\"cpu\":\"100m\",\"memory\":\"…\n\
             \n\
             1 object checked: no violations, 1 patch (1 object) by the mutating webhook\n"
        );
        assert_eq!(patches_only().exit_code(), 0);
    }

    #[rstest]
    #[case::one(1, 1, ", 1 patch (1 object) by the mutating webhook")]
    #[case::several_on_one_object(3, 1, ", 3 patches (1 object) by the mutating webhook")]
    #[case::several_objects(4, 2, ", 4 patches (2 objects) by the mutating webhook")]
    fn patch_summary_wording(#[case] ops: usize, #[case] objects: usize, #[case] want: &str) {
        let mut report = Report {
            objects: 5,
            ..Report::default()
        };
        for i in 0..ops {
            let n = i % objects;
            report.patches.push(patch(
                loc("a.yaml", n + 1),
                obj("Pod", Some("ns"), &format!("p{n}")),
                "labels",
                "add",
                &format!("/metadata/labels/l{i}"),
                Some("\"x\""),
            ));
        }
        report.sort();
        assert_eq!(
            summary(&report),
            format!("5 objects checked: no violations{want}")
        );
    }

    #[test]
    fn a_patch_cannot_break_lines_or_reach_the_terminal() {
        let mut report = patches_only();
        report.patches[0].path = "/metadata/labels/a\nb\u{1b}[31m".to_string();
        report.patches[0].value = Some("\"x\\ny\"".to_string());
        let out = render(&report, Format::Text);
        assert_eq!(
            out.lines().next(),
            Some("stdin:1: PATCH resource-limits: Pod/shop/api: add /metadata/labels/a b\\u{1b}[31m = \"x\\ny\"")
        );
        assert!(!out.contains('\u{1b}'));
    }

    #[test]
    fn no_fix_heading_without_remediation() {
        let mut report = mixed();
        for f in &mut report.findings {
            f.remediation = None;
        }
        assert!(!render(&report, Format::Text).contains("How to fix"));
    }
}
