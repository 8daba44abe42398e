//! The `junit` format: a JUnit XML test report for GitLab's and Jenkins' test report views.
//!
//! Layout (every checked object is a test, so passing objects are listed too):
//!
//! ```xml
//! <testsuites name="regate" tests=".." failures=".." errors="..">
//!   <testsuite name="deploy/web.yaml" tests=".." failures=".." errors=".." skipped="0">
//!     <testcase name="Deployment/team-a/web" classname="deploy/web.yaml" file="deploy/web.yaml" line="1">
//!       <failure message="2 policy violations: image-registry, pod-security" type="policy">..</failure>
//!       <system-out>WARN resource-limits: ..</system-out>
//!     </testcase>
//!     <testcase name="input error at line 7" classname="deploy/broken.yaml" ..>
//!       <error message=".." type="input">..</error>
//!     </testcase>
//!   </testsuite>
//! </testsuites>
//! ```
//!
//! - One `<testsuite>` per input file (`name` = the file; `-` is shown as `stdin`), sorted by file.
//! - One `<testcase>` per checked object (plus any object that has findings but is missing from
//!   `checked`), sorted by line: `name` = `Kind/ns/name`, `classname` = the file. When one file
//!   holds the same `Kind/ns/name` more than once, ` (line N)` is appended to tell them apart.
//! - Deny findings make the object's test fail: one `<failure type="policy">` whose `message` is
//!   `policy: message` for a single finding or `N policy violations: p1, p2` for several, and whose
//!   body has one line per finding (`policy: message (field)`) followed by its `fix:` remediation.
//! - Warn and dry-run findings do not fail the test; they are listed in `<system-out>` as
//!   `WARN policy: message (field)` / `DRYRUN ...`, followed by one line per patch operation the
//!   mutating webhook would apply to the object, `PATCH policy: op /path = value` (never a failure).
//! - Input errors become a testcase `input error at line N` (all errors of one line together)
//!   with an `<error type="input">`.
//! - `tests`, `failures` and `errors` are counted per suite and summed on `<testsuites>`.
//!
//! All text goes through the `xml` escaping module, so the document is well-formed XML 1.0 whatever the
//! messages contain.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Write};

use super::display_path;
use super::model::{Action, Finding, Location, ObjectRef, Patch, Report};
use super::xml;

enum Case<'a> {
    Object {
        line: usize,
        object: &'a ObjectRef,
        findings: Vec<&'a Finding>,
        patches: Vec<&'a Patch>,
    },
    Input {
        line: usize,
        messages: Vec<&'a str>,
    },
}

impl Case<'_> {
    fn failed(&self) -> bool {
        match self {
            Case::Object { findings, .. } => findings.iter().any(|f| f.action == Action::Deny),
            Case::Input { .. } => false,
        }
    }

    fn errored(&self) -> bool {
        matches!(self, Case::Input { .. })
    }
}

/// Groups the report into suites: file -> cases sorted by line.
fn suites(report: &Report) -> BTreeMap<&str, Vec<Case<'_>>> {
    type Entries<'r> = (Vec<&'r Finding>, Vec<&'r Patch>);
    let mut objects: BTreeMap<(&Location, &ObjectRef), Entries<'_>> = BTreeMap::new();
    for (location, object) in &report.checked {
        objects.entry((location, object)).or_default();
    }
    for f in &report.findings {
        objects
            .entry((&f.location, &f.object))
            .or_default()
            .0
            .push(f);
    }
    for p in &report.patches {
        objects
            .entry((&p.location, &p.object))
            .or_default()
            .1
            .push(p);
    }
    let mut inputs: BTreeMap<(&str, usize), Vec<&str>> = BTreeMap::new();
    for e in &report.errors {
        inputs
            .entry((e.location.file.as_str(), e.location.line))
            .or_default()
            .push(e.message.as_str());
    }

    let mut suites: BTreeMap<&str, Vec<Case<'_>>> = BTreeMap::new();
    for ((location, object), (findings, patches)) in objects {
        suites
            .entry(display_path(&location.file))
            .or_default()
            .push(Case::Object {
                line: location.line,
                object,
                findings,
                patches,
            });
    }
    for ((file, line), messages) in inputs {
        suites
            .entry(display_path(file))
            .or_default()
            .push(Case::Input { line, messages });
    }
    for cases in suites.values_mut() {
        // Stable sort: objects keep their (line, object) order; errors come after objects of the same line.
        cases.sort_by_key(|c| match c {
            Case::Object { line, .. } => (*line, 0),
            Case::Input { line, .. } => (*line, 1),
        });
    }
    suites
}

/// Writes `report` as JUnit XML.
pub fn write(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    let suites = suites(report);
    let all = || suites.values().flatten();
    let tests = all().count();
    let failures = all().filter(|c| c.failed()).count();
    let errors = all().filter(|c| c.errored()).count();
    writeln!(out, r#"<?xml version="1.0" encoding="UTF-8"?>"#)?;
    writeln!(
        out,
        r#"<testsuites name="regate" tests="{tests}" failures="{failures}" errors="{errors}">"#,
    )?;
    for (file, cases) in &suites {
        write_suite(file, cases, out)?;
    }
    writeln!(out, "</testsuites>")
}

fn write_suite(file: &str, cases: &[Case<'_>], out: &mut dyn Write) -> io::Result<()> {
    let file_attr = xml::attr(file);
    writeln!(
        out,
        r#"  <testsuite name="{file_attr}" tests="{}" failures="{}" errors="{}" skipped="0">"#,
        cases.len(),
        cases.iter().filter(|c| c.failed()).count(),
        cases.iter().filter(|c| c.errored()).count(),
    )?;

    let mut same_name: HashMap<String, usize> = HashMap::new();
    for case in cases {
        if let Case::Object { object, .. } = case {
            *same_name.entry(object.display()).or_default() += 1;
        }
    }

    for case in cases {
        match case {
            Case::Object {
                line,
                object,
                findings,
                patches,
            } => {
                let mut name = object.display();
                if same_name.get(&name).copied().unwrap_or(0) > 1 {
                    name = format!("{name} (line {line})");
                }
                write_object_case(&name, &file_attr, *line, findings, patches, out)?;
            }
            Case::Input { line, messages } => {
                writeln!(
                    out,
                    r#"    <testcase name="input error at line {line}" classname="{file_attr}" file="{file_attr}" line="{line}">"#,
                )?;
                let first = messages.first().copied().unwrap_or_default();
                writeln!(
                    out,
                    r#"      <error message="{}" type="input">{}</error>"#,
                    xml::attr(first),
                    xml::text(&messages.join("\n")),
                )?;
                writeln!(out, "    </testcase>")?;
            }
        }
    }
    writeln!(out, "  </testsuite>")
}

fn write_object_case(
    name: &str,
    file_attr: &str,
    line: usize,
    findings: &[&Finding],
    patches: &[&Patch],
    out: &mut dyn Write,
) -> io::Result<()> {
    let head = format!(
        r#"    <testcase name="{}" classname="{file_attr}" file="{file_attr}" line="{line}""#,
        xml::attr(name),
    );
    if findings.is_empty() && patches.is_empty() {
        return writeln!(out, "{head}/>");
    }
    writeln!(out, "{head}>")?;

    let (deny, other): (Vec<&Finding>, Vec<&Finding>) =
        findings.iter().partition(|f| f.action == Action::Deny);
    if !deny.is_empty() {
        let message = match deny.as_slice() {
            [only] => format!("{}: {}", only.policy, only.message),
            many => {
                let mut policies: Vec<&str> = many.iter().map(|f| f.policy.as_str()).collect();
                policies.dedup();
                format!("{} policy violations: {}", many.len(), policies.join(", "))
            }
        };
        let mut body = String::new();
        for f in &deny {
            body.push_str(&describe(f));
            body.push('\n');
            if let Some(fix) = &f.remediation {
                body.push_str("  fix: ");
                body.push_str(fix);
                body.push('\n');
            }
        }
        writeln!(
            out,
            r#"      <failure message="{}" type="policy">{}</failure>"#,
            xml::attr(&message),
            xml::text(&body),
        )?;
    }
    if !other.is_empty() || !patches.is_empty() {
        let mut body: String = other
            .iter()
            .map(|f| {
                format!(
                    "{} {}\n",
                    f.action.as_str().to_ascii_uppercase(),
                    describe(f)
                )
            })
            .collect();
        for p in patches {
            body.push_str(&format!("PATCH {}: {}\n", p.policy, p.describe()));
        }
        writeln!(out, "      <system-out>{}</system-out>", xml::text(&body))?;
    }
    writeln!(out, "    </testcase>")
}

/// `policy: message (field)`.
fn describe(f: &Finding) -> String {
    match &f.field {
        Some(field) => format!("{}: {} ({field})", f.policy, f.message),
        None => format!("{}: {}", f.policy, f.message),
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::super::Format;
    use super::*;
    use roxmltree::{Document, Node};
    use rstest::rstest;

    fn attr<'a>(node: Node<'a, '_>, name: &str) -> &'a str {
        node.attribute(name)
            .unwrap_or_else(|| panic!("<{}> lacks {name}", node.tag_name().name()))
    }

    fn children<'a, 'i>(node: Node<'a, 'i>, tag: &str) -> Vec<Node<'a, 'i>> {
        node.children().filter(|n| n.has_tag_name(tag)).collect()
    }

    /// (tests, failures, errors) as the attributes say, checked against the elements present.
    fn counts(node: Node<'_, '_>) -> (usize, usize, usize) {
        let num = |name| -> usize {
            attr(node, name)
                .parse()
                .unwrap_or_else(|e| panic!("{name}: {e}"))
        };
        (num("tests"), num("failures"), num("errors"))
    }

    fn element_counts(suite: Node<'_, '_>) -> (usize, usize, usize) {
        let cases = children(suite, "testcase");
        (
            cases.len(),
            cases
                .iter()
                .filter(|c| !children(**c, "failure").is_empty())
                .count(),
            cases
                .iter()
                .filter(|c| !children(**c, "error").is_empty())
                .count(),
        )
    }

    #[rstest]
    #[case::empty(empty(), (0, 0, 0), vec![])]
    #[case::mixed(mixed(), (5, 2, 1), vec![
        ("deploy/api.yaml", (1, 1, 0)),
        ("deploy/broken.yaml", (1, 0, 1)),
        ("deploy/web.yaml", (2, 1, 0)),
        ("namespaces.yaml", (1, 0, 0)),
    ])]
    #[case::errors_only(errors_only(), (2, 0, 2), vec![("bad.yaml", (1, 0, 1)), ("stdin", (1, 0, 1))])]
    #[case::nasty(nasty(), (2, 1, 1), vec![("in]]>put.yaml", (1, 0, 1)), ("we<ird>&\"file'.yaml", (1, 1, 0))])]
    fn counts_match_at_suite_and_root_level(
        #[case] report: Report,
        #[case] root_counts: (usize, usize, usize),
        #[case] want_suites: Vec<(&str, (usize, usize, usize))>,
    ) {
        let out = render(&report, Format::Junit);
        let doc = Document::parse(&out).expect("well-formed XML");
        let root = doc.root_element();
        assert_eq!(root.tag_name().name(), "testsuites");
        assert_eq!(attr(root, "name"), "regate");
        assert_eq!(counts(root), root_counts);
        let suites = children(root, "testsuite");
        let got: Vec<(&str, (usize, usize, usize))> = suites
            .iter()
            .map(|s| (attr(*s, "name"), counts(*s)))
            .collect();
        assert_eq!(got, want_suites);
        for s in &suites {
            assert_eq!(counts(*s), element_counts(*s));
            assert_eq!(attr(*s, "skipped"), "0");
        }
    }

    #[test]
    fn mixed_report_testcases() {
        let out = render(&mixed(), Format::Junit);
        let doc = Document::parse(&out).expect("well-formed XML");
        let cases: Vec<Node> = doc
            .descendants()
            .filter(|n| n.has_tag_name("testcase"))
            .collect();
        let names: Vec<(&str, &str)> = cases
            .iter()
            .map(|c| (attr(*c, "classname"), attr(*c, "name")))
            .collect();
        assert_eq!(
            names,
            [
                ("deploy/api.yaml", "Deployment/team-b/api"),
                ("deploy/broken.yaml", "input error at line 7"),
                ("deploy/web.yaml", "Deployment/team-a/web"),
                ("deploy/web.yaml", "ConfigMap/team-a/settings"),
                ("namespaces.yaml", "Namespace/team-a"),
            ]
        );

        // web: two deny findings in one failure, the warning in system-out.
        let web = cases[2];
        assert_eq!(attr(web, "file"), "deploy/web.yaml");
        assert_eq!(attr(web, "line"), "1");
        let failures = children(web, "failure");
        assert_eq!(failures.len(), 1);
        assert_eq!(attr(failures[0], "type"), "policy");
        assert_eq!(
            attr(failures[0], "message"),
            "2 policy violations: image-registry, pod-security"
        );
        assert_eq!(
            failures[0].text(),
            Some(
                "image-registry: image docker.io/nginx is not from registry.example.com\n  fix: Pull images from registry.example.com only.\n\
                 pod-security: container web runs as root (spec.template.spec.containers[0].securityContext)\n  fix: Set securityContext.runAsNonRoot: true.\n"
            )
        );
        let system_out = children(web, "system-out");
        assert_eq!(system_out.len(), 1);
        assert_eq!(
            system_out[0].text(),
            Some("WARN resource-limits: container web has no memory limit\n")
        );

        // api: a single deny finding names it in the message; the dry-run is not a failure.
        let api = cases[0];
        assert_eq!(
            attr(children(api, "failure")[0], "message"),
            "pod-security: container api runs as root"
        );
        assert_eq!(
            children(api, "system-out")[0].text(),
            Some("DRYRUN labels: missing label team\n")
        );

        // Input error.
        let broken = children(cases[1], "error");
        assert_eq!(broken.len(), 1);
        assert_eq!(attr(broken[0], "type"), "input");
        assert_eq!(
            attr(broken[0], "message"),
            "mapping values are not allowed here"
        );

        // Clean object and warn-only object: passing tests.
        for passing in [cases[3], cases[4]] {
            assert!(children(passing, "failure").is_empty());
            assert!(children(passing, "error").is_empty());
        }
        assert!(!children(cases[4], "system-out").is_empty());
        assert_eq!(cases[3].children().count(), 0);
    }

    #[test]
    fn patches_are_listed_in_system_out_and_never_fail_a_test() {
        let out = render(&patched(), Format::Junit);
        let doc = Document::parse(&out).expect("well-formed XML");
        // Same counts as without patches: a patch is not a failure.
        assert_eq!(counts(doc.root_element()), (5, 2, 1));
        let case = |name: &str| {
            doc.descendants()
                .find(|n| n.has_tag_name("testcase") && n.attribute("name") == Some(name))
                .unwrap_or_else(|| panic!("testcase {name}"))
        };
        // The clean ConfigMap is now a passing test with a system-out.
        let settings = case("ConfigMap/team-a/settings");
        assert!(children(settings, "failure").is_empty());
        assert_eq!(
            children(settings, "system-out")[0].text(),
            Some("PATCH labels: remove /metadata/annotations/old\nPATCH labels: add /metadata/labels/team = \"team-a\"\n")
        );
        // web: warnings first, then its patches; the failure is unchanged.
        let web = case("Deployment/team-a/web");
        assert_eq!(children(web, "failure").len(), 1);
        assert_eq!(
            children(web, "system-out")[0].text(),
            Some("WARN resource-limits: container web has no memory limit\n\
                  PATCH resource-limits: add /spec/template/spec/containers/0/resources/limits/cpu = \"400m\"\n\
                  PATCH resource-limits: add /spec/template/spec/containers/0/resources/limits/memory = \"256Mi\"\n")
        );
    }

    #[test]
    fn patches_only_object_is_a_passing_testcase_with_system_out() {
        let out = render(&patches_only(), Format::Junit);
        let doc = Document::parse(&out).expect("well-formed XML");
        assert_eq!(counts(doc.root_element()), (1, 0, 0));
        let case = doc
            .descendants()
            .find(|n| n.has_tag_name("testcase"))
            .expect("testcase");
        assert_eq!(attr(case, "name"), "Pod/shop/api");
        assert_eq!(attr(case, "classname"), "stdin");
        let text = children(case, "system-out")[0].text().unwrap_or_default();
        assert!(
            text.starts_with("PATCH resource-limits: add /spec/containers/0/resources = {"),
            "{text}"
        );
    }

    #[test]
    fn markup_and_control_characters_stay_well_formed() {
        let report = nasty();
        let out = render(&report, Format::Junit);
        assert!(!out.contains('\u{1}') && !out.contains('\u{0}') && !out.contains('\u{1b}'));
        let doc = Document::parse(&out).expect("well-formed XML");
        let case = doc
            .descendants()
            .find(|n| n.has_tag_name("testcase") && n.attribute("name") == Some("Pod/a&b/x<y>"))
            .expect("object testcase");
        assert_eq!(attr(case, "classname"), "we<ird>&\"file'.yaml");
        let failure = children(case, "failure")[0];
        assert_eq!(
            attr(failure, "message"),
            "pod-security: bad <&>\"' value\u{FFFD}\u{FFFD}[31m\r\nsecond line\u{FFFD}"
        );
        assert_eq!(
            failure.text(),
            Some(
                "pod-security: bad <&>\"' value\u{FFFD}\u{FFFD}[31m\r\nsecond line\u{FFFD} (spec.containers[0].env[?(@.name==\"A&B\")])\n  fix: Set securityContext.runAsNonRoot: true.\n"
            )
        );
        let error = doc
            .descendants()
            .find(|n| n.has_tag_name("error"))
            .expect("error element");
        assert_eq!(error.text(), Some("unexpected ]]> and \u{FFFD}"));
    }

    #[test]
    fn same_object_twice_in_one_file_gets_line_suffix() {
        let pod = obj("Pod", Some("ns"), "p");
        let report = Report {
            objects: 2,
            checked: vec![(loc("a.yaml", 1), pod.clone()), (loc("a.yaml", 9), pod)],
            ..Report::default()
        };
        let out = render(&report, Format::Junit);
        let doc = Document::parse(&out).expect("well-formed XML");
        let names: Vec<&str> = doc
            .descendants()
            .filter(|n| n.has_tag_name("testcase"))
            .map(|n| attr(n, "name"))
            .collect();
        assert_eq!(names, ["Pod/ns/p (line 1)", "Pod/ns/p (line 9)"]);
    }

    #[test]
    fn errors_on_one_line_share_a_testcase_and_unchecked_objects_with_findings_appear() {
        let mut report = Report {
            objects: 0,
            checked: vec![],
            findings: vec![finding(
                loc("a.yaml", 4),
                obj("Pod", None, "orphan"),
                "labels",
                Action::Deny,
                "m",
            )],
            patches: vec![],
            errors: vec![
                error(loc("a.yaml", 4), "one"),
                error(loc("a.yaml", 4), "two"),
            ],
        };
        report.sort();
        let out = render(&report, Format::Junit);
        let doc = Document::parse(&out).expect("well-formed XML");
        let root = doc.root_element();
        assert_eq!(counts(root), (2, 1, 1));
        let err = doc
            .descendants()
            .find(|n| n.has_tag_name("error"))
            .expect("error element");
        assert_eq!(attr(err, "message"), "one");
        assert_eq!(err.text(), Some("one\ntwo"));
    }

    #[test]
    fn empty_report_is_an_empty_testsuites() {
        assert_eq!(
            render(&empty(), Format::Junit),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"regate\" tests=\"0\" failures=\"0\" errors=\"0\">\n</testsuites>\n"
        );
    }
}
