//! JUnit XML, the one writer of it: a small document model ([`TestSuites`] of [`TestSuite`]s of
//! [`TestCase`]s, each passed, failed, errored or skipped) written by [`TestSuites::write`], used by
//! the `junit` format of `regate check` ([`write`]) and by `regate test --format junit`
//! (`policy::testrunner`). The `tests`, `failures`, `errors` and `skipped` counts are computed from
//! the cases; `time` attributes (seconds) are written only for a timed document, each suite and the
//! root summing their cases. All text goes through the `xml` escaping module, so the document is
//! well-formed XML 1.0 whatever the messages contain.
//!
//! `regate check`'s report is for GitLab's and Jenkins' test report views. Layout (every checked
//! object is a test, so passing objects are listed too):
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

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Write};
use std::time::Duration;

use super::display_path;
use super::model::{Action, Finding, Location, ObjectRef, Patch, Report};
use super::xml;

/// A JUnit XML document.
#[derive(Debug, Clone, PartialEq)]
pub struct TestSuites {
    /// The `name` of `<testsuites>`.
    pub name: String,
    /// Write `time` attributes: each case's [`TestCase::time`], summed per suite and for the root.
    pub timed: bool,
    pub suites: Vec<TestSuite>,
}

/// One `<testsuite>`.
#[derive(Debug, Clone, PartialEq)]
pub struct TestSuite {
    pub name: String,
    pub cases: Vec<TestCase>,
}

/// One `<testcase>`.
#[derive(Debug, Clone, PartialEq)]
pub struct TestCase {
    pub name: String,
    pub classname: String,
    pub file: String,
    pub line: usize,
    /// Written only in a [`TestSuites::timed`] document.
    pub time: Duration,
    pub result: CaseResult,
    /// The `<system-out>` text, when there is any.
    pub system_out: Option<String>,
}

/// How a test case ended, and the element that says so.
#[derive(Debug, Clone, PartialEq)]
pub enum CaseResult {
    /// No element.
    Passed,
    /// `<failure>`.
    Failure(Problem),
    /// `<error>`.
    Error(Problem),
    /// `<skipped message=".."/>`.
    Skipped { message: String },
}

/// The content of a `<failure>` or `<error>` element.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    /// The `message` attribute (a summary).
    pub message: String,
    /// The `type` attribute.
    pub kind: String,
    /// The element's text (the details).
    pub text: String,
}

/// What `<testsuites>` and `<testsuite>` count.
#[derive(Default)]
struct Counts {
    tests: usize,
    failures: usize,
    errors: usize,
    skipped: usize,
    time: Duration,
}

impl Counts {
    fn of(cases: &[TestCase]) -> Counts {
        let mut counts = Counts::default();
        for case in cases {
            counts.tests += 1;
            counts.time += case.time;
            match case.result {
                CaseResult::Passed => {}
                CaseResult::Failure(_) => counts.failures += 1,
                CaseResult::Error(_) => counts.errors += 1,
                CaseResult::Skipped { .. } => counts.skipped += 1,
            }
        }
        counts
    }

    fn add(&mut self, other: &Counts) {
        self.tests += other.tests;
        self.failures += other.failures;
        self.errors += other.errors;
        self.skipped += other.skipped;
        self.time += other.time;
    }
}

impl TestSuites {
    /// Writes the document with its XML declaration, two spaces of indentation per level.
    pub fn write(&self, out: &mut dyn Write) -> io::Result<()> {
        let per_suite: Vec<Counts> = self.suites.iter().map(|s| Counts::of(&s.cases)).collect();
        let mut total = Counts::default();
        for counts in &per_suite {
            total.add(counts);
        }
        writeln!(out, r#"<?xml version="1.0" encoding="UTF-8"?>"#)?;
        writeln!(
            out,
            r#"<testsuites name="{}" tests="{}" failures="{}" errors="{}"{}>"#,
            xml::attr(&self.name),
            total.tests,
            total.failures,
            total.errors,
            self.time_attr(total.time),
        )?;
        for (suite, counts) in self.suites.iter().zip(&per_suite) {
            writeln!(
                out,
                r#"  <testsuite name="{}" tests="{}" failures="{}" errors="{}" skipped="{}"{}>"#,
                xml::attr(&suite.name),
                counts.tests,
                counts.failures,
                counts.errors,
                counts.skipped,
                self.time_attr(counts.time),
            )?;
            for case in &suite.cases {
                self.write_case(case, out)?;
            }
            writeln!(out, "  </testsuite>")?;
        }
        writeln!(out, "</testsuites>")
    }

    fn write_case(&self, case: &TestCase, out: &mut dyn Write) -> io::Result<()> {
        write!(
            out,
            r#"    <testcase name="{}" classname="{}" file="{}" line="{}"{}"#,
            xml::attr(&case.name),
            xml::attr(&case.classname),
            xml::attr(&case.file),
            case.line,
            self.time_attr(case.time),
        )?;
        if case.result == CaseResult::Passed && case.system_out.is_none() {
            return writeln!(out, "/>");
        }
        writeln!(out, ">")?;
        let problem = match &case.result {
            CaseResult::Passed => None,
            CaseResult::Failure(problem) => Some(("failure", problem)),
            CaseResult::Error(problem) => Some(("error", problem)),
            CaseResult::Skipped { message } => {
                writeln!(out, r#"      <skipped message="{}"/>"#, xml::attr(message))?;
                None
            }
        };
        if let Some((element, problem)) = problem {
            writeln!(
                out,
                r#"      <{element} message="{}" type="{}">{}</{element}>"#,
                xml::attr(&problem.message),
                xml::attr(&problem.kind),
                xml::text(&problem.text),
            )?;
        }
        if let Some(text) = &case.system_out {
            writeln!(out, "      <system-out>{}</system-out>", xml::text(text))?;
        }
        writeln!(out, "    </testcase>")
    }

    /// ` time="1.250000"` in a timed document, nothing otherwise.
    fn time_attr(&self, time: Duration) -> String {
        if self.timed {
            format!(r#" time="{:.6}""#, time.as_secs_f64())
        } else {
            String::new()
        }
    }
}

/// One checked object or one line of input errors, before it becomes a [`TestCase`].
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
    document(report).write(out)
}

/// The JUnit document of `report` (untimed: a check has no per-object duration).
fn document(report: &Report) -> TestSuites {
    TestSuites {
        name: "regate".to_string(),
        timed: false,
        suites: suites(report)
            .into_iter()
            .map(|(file, cases)| suite(file, &cases))
            .collect(),
    }
}

fn suite(file: &str, cases: &[Case<'_>]) -> TestSuite {
    let mut same_name: HashMap<String, usize> = HashMap::new();
    for case in cases {
        if let Case::Object { object, .. } = case {
            *same_name.entry(object.display()).or_default() += 1;
        }
    }
    let cases = cases
        .iter()
        .map(|case| match case {
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
                object_case(name, file, *line, findings, patches)
            }
            Case::Input { line, messages } => TestCase {
                name: format!("input error at line {line}"),
                classname: file.to_string(),
                file: file.to_string(),
                line: *line,
                time: Duration::ZERO,
                result: CaseResult::Error(Problem {
                    message: messages.first().copied().unwrap_or_default().to_string(),
                    kind: "input".to_string(),
                    text: messages.join("\n"),
                }),
                system_out: None,
            },
        })
        .collect();
    TestSuite {
        name: file.to_string(),
        cases,
    }
}

fn object_case(
    name: String,
    file: &str,
    line: usize,
    findings: &[&Finding],
    patches: &[&Patch],
) -> TestCase {
    let (deny, other): (Vec<&Finding>, Vec<&Finding>) =
        findings.iter().partition(|f| f.action == Action::Deny);
    let result = if deny.is_empty() {
        CaseResult::Passed
    } else {
        let message = match deny.as_slice() {
            [only] => format!("{}: {}", only.policy, only.message),
            many => {
                let mut policies: Vec<&str> = many.iter().map(|f| f.policy.as_str()).collect();
                policies.dedup();
                format!("{} policy violations: {}", many.len(), policies.join(", "))
            }
        };
        let mut text = String::new();
        for f in &deny {
            text.push_str(&describe(f));
            text.push('\n');
            if let Some(fix) = &f.remediation {
                text.push_str("  fix: ");
                text.push_str(fix);
                text.push('\n');
            }
        }
        CaseResult::Failure(Problem {
            message,
            kind: "policy".to_string(),
            text,
        })
    };
    let system_out = (!other.is_empty() || !patches.is_empty()).then(|| {
        let mut text: String = other
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
            text.push_str(&format!("PATCH {}: {}\n", p.policy, p.describe()));
        }
        text
    });
    TestCase {
        name,
        classname: file.to_string(),
        file: file.to_string(),
        line,
        time: Duration::ZERO,
        result,
        system_out,
    }
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

    #[test]
    fn timed_document_counts_and_times_every_kind_of_result() {
        let case =
            |name: &str, millis: u64, result: CaseResult, system_out: Option<&str>| TestCase {
                name: name.to_string(),
                classname: "pkg".to_string(),
                file: "a&b.rego".to_string(),
                line: 3,
                time: Duration::from_millis(millis),
                result,
                system_out: system_out.map(str::to_string),
            };
        let problem = |kind: &str| Problem {
            message: format!("{kind} <summary>"),
            kind: kind.to_string(),
            text: format!("{kind}\ndetails"),
        };
        let doc = TestSuites {
            name: "suite \"x\"".to_string(),
            timed: true,
            suites: vec![
                TestSuite {
                    name: "pkg".to_string(),
                    cases: vec![
                        case("passes", 1, CaseResult::Passed, None),
                        case("fails", 20, CaseResult::Failure(problem("fail")), None),
                        case(
                            "errs",
                            300,
                            CaseResult::Error(problem("error")),
                            Some("out"),
                        ),
                        case(
                            "skipped",
                            0,
                            CaseResult::Skipped {
                                message: "not run".to_string(),
                            },
                            None,
                        ),
                    ],
                },
                TestSuite {
                    name: "empty".to_string(),
                    cases: vec![],
                },
            ],
        };
        let mut out = Vec::new();
        doc.write(&mut out).expect("write");
        let xml = String::from_utf8(out).expect("utf-8");
        assert_eq!(
            xml,
            r#"<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="suite &quot;x&quot;" tests="4" failures="1" errors="1" time="0.321000">
  <testsuite name="pkg" tests="4" failures="1" errors="1" skipped="1" time="0.321000">
    <testcase name="passes" classname="pkg" file="a&amp;b.rego" line="3" time="0.001000"/>
    <testcase name="fails" classname="pkg" file="a&amp;b.rego" line="3" time="0.020000">
      <failure message="fail &lt;summary&gt;" type="fail">fail
details</failure>
    </testcase>
    <testcase name="errs" classname="pkg" file="a&amp;b.rego" line="3" time="0.300000">
      <error message="error &lt;summary&gt;" type="error">error
details</error>
      <system-out>out</system-out>
    </testcase>
    <testcase name="skipped" classname="pkg" file="a&amp;b.rego" line="3" time="0.000000">
      <skipped message="not run"/>
    </testcase>
  </testsuite>
  <testsuite name="empty" tests="0" failures="0" errors="0" skipped="0" time="0.000000">
  </testsuite>
</testsuites>
"#
        );
        Document::parse(&xml).expect("well-formed XML");
    }
}
