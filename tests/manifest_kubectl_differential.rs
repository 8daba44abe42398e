//! regate's manifest reader against the decoder kubectl, Helm and ArgoCD use.
//!
//! The oracle is `testenv yaml2json` (tests/e2e/decode.go): k8s.io/apimachinery's
//! `YAMLOrJSONDecoder` over sigs.k8s.io/yaml and go-yaml v2, from the Kubernetes v1.37.2 modules
//! pinned in tests/e2e/go.mod. It prints each document of a file as kubectl decodes it, one JSON
//! per line, and `{"error":...}` (exit status 1) for the first document it cannot decode, where
//! kubectl stops the file.
//!
//! For every file of `testdata/yaml11` (cases for YAML 1.1 scalars, merge keys, `!!binary`, keys,
//! duplicates, separators, JSON streams, ...) and every YAML file of the shared rendered-chart
//! corpus, `regate::manifest::decode_stream` must give the same documents: the same JSON (compared
//! as `serde_json::Value`, so key order does not matter but `1` and `1.0` differ) for each document
//! kubectl accepts, and an input error with a line where kubectl fails.
//!
//! A third test goes one step further for the case files: the objects `kubectl annotate --local -o json`
//! (kubectl's own file reading, offline) prints must be the objects `regate check` checks.
//!
//! The binary is `target/e2e/testenv`, used as it is when it is newer than the Go sources, built
//! with `tests/e2e/build.sh` otherwise (the first build of the Kubernetes modules takes minutes). Without Go,
//! or when the build fails, the test prints why and passes, unless `REGATE_REQUIRE_TOOLS=1` (CI):
//! then it fails.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::SystemTime;

use serde_json::Value;

/// Skips (`None`) or, with `REGATE_REQUIRE_TOOLS=1`, fails.
fn unavailable<T>(why: &str) -> Option<T> {
    if std::env::var("REGATE_REQUIRE_TOOLS").as_deref() == Ok("1") {
        panic!("{why}, and REGATE_REQUIRE_TOOLS=1 requires the kubectl decoder (install Go, see tests/e2e)");
    }
    eprintln!(
        "skipping kubectl differential test: {why} (set REGATE_REQUIRE_TOOLS=1 to fail instead)"
    );
    None
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// `target/e2e/testenv`, built when missing or older than the Go sources (once per test process:
/// the tests run in parallel and must not start several builds of the same binary).
fn testenv() -> Option<PathBuf> {
    static BUILT: Mutex<Option<PathBuf>> = Mutex::new(None);
    let mut built = BUILT
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if built.is_none() {
        *built = Some(locate_or_build()?);
    }
    built.clone()
}

fn locate_or_build() -> Option<PathBuf> {
    let dir = common::path("tests/e2e");
    let binary = common::path("target/e2e/testenv");
    let newest_source = std::fs::read_dir(&dir)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "go" || e == "sh")
                || p.file_name()
                    .is_some_and(|n| n == "go.mod" || n == "go.sum")
        })
        .filter_map(|p| modified(&p))
        .max();
    let fresh = match (modified(&binary), newest_source) {
        (Some(built), Some(source)) => built >= source,
        (Some(_), None) => true,
        (None, _) => false,
    };
    if fresh {
        return Some(binary);
    }
    // The same build as .ci/run's and the e2e tests' (tests/e2e/build.sh: same flags, same Go cache).
    eprintln!("building {} (tests/e2e/build.sh)", binary.display());
    let status = Command::new("bash")
        .arg(dir.join("build.sh"))
        .arg(&binary)
        .status();
    match status {
        Ok(s) if s.success() => Some(binary),
        Ok(s) => unavailable(&format!(
            "tests/e2e/build.sh failed ({s}); it needs Go 1.26 and the Go module proxy"
        )),
        Err(err) => unavailable(&format!("cannot run tests/e2e/build.sh ({err})")),
    }
}

/// What kubectl's decoder made of one file: the documents up to the first failure, and that
/// failure's message.
struct Kubectl {
    documents: Vec<Value>,
    error: Option<String>,
}

fn kubectl_decode(testenv: &Path, file: &Path) -> Kubectl {
    let out = Command::new(testenv)
        .arg("yaml2json")
        .arg(file)
        .output()
        .expect("run testenv yaml2json");
    let code = out.status.code();
    assert!(
        matches!(code, Some(0 | 1)),
        "testenv yaml2json {}: {:?}\n{}",
        file.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("yaml2json prints UTF-8");
    // One value per document; a JSON document is printed as written, possibly over several lines.
    let mut documents: Vec<Value> = serde_json::Deserializer::from_str(&text)
        .into_iter::<Value>()
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("{}: bad yaml2json output: {e}\n{text}", file.display()));
    let mut error = None;
    if code == Some(1) {
        let last = documents.pop().expect("an error line");
        error = Some(
            last.get("error")
                .and_then(Value::as_str)
                .expect("last line is the error")
                .to_owned(),
        );
    }
    Kubectl { documents, error }
}

/// Compares one file; returns the number of documents compared, or the differences.
fn compare(testenv: &Path, file: &Path) -> Result<usize, String> {
    let kubectl = kubectl_decode(testenv, file);
    let bytes = std::fs::read(file).expect("read file");
    let text =
        String::from_utf8(bytes).map_err(|e| format!("{}: not UTF-8: {e}", file.display()))?;
    let regate = regate::manifest::decode_stream(&text);
    let lines = text.lines().count().max(1);
    let mut problems = Vec::new();
    for (i, want) in kubectl.documents.iter().enumerate() {
        match regate.get(i) {
            Some(got) if got.value.as_ref() == Ok(want) => {}
            Some(got) => problems.push(format!(
                "document {} (regate line {}):\n  kubectl: {want}\n  regate:  {}",
                i + 1,
                got.line,
                match &got.value {
                    Ok(v) => v.to_string(),
                    Err(e) => format!("error: {e}"),
                }
            )),
            None => problems.push(format!(
                "document {}: regate has no such document; kubectl: {want}",
                i + 1
            )),
        }
    }
    let n = kubectl.documents.len();
    match (&kubectl.error, regate.get(n)) {
        (Some(_), Some(got)) if got.value.is_err() => {
            if got.line == 0 || got.line > lines + 1 {
                problems.push(format!("error at line {} outside the file", got.line));
            }
        }
        (Some(why), got) => problems.push(format!(
            "document {}: kubectl fails ({why}), regate gives {:?}",
            n + 1,
            got.map(|g| &g.value)
        )),
        (None, Some(extra)) => problems.push(format!(
            "regate has more documents than kubectl: {:?} at line {}",
            extra.value, extra.line
        )),
        (None, None) => {}
    }
    if problems.is_empty() {
        Ok(n + usize::from(kubectl.error.is_some()))
    } else {
        Err(format!("{}:\n{}", file.display(), problems.join("\n")))
    }
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            files_under(&path, out);
        } else if path
            .extension()
            .is_some_and(|e| e == "yaml" || e == "yml" || e == "json")
        {
            out.push(path);
        }
    }
}

/// Runs `compare` over `files` on both cores; returns (documents compared, failures).
fn compare_all(testenv: &Path, files: &[PathBuf]) -> (usize, Vec<String>) {
    let half = files.len().div_ceil(2).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = files
            .chunks(half)
            .map(|chunk| {
                scope.spawn(move || {
                    let mut compared = 0;
                    let mut failures = Vec::new();
                    for file in chunk {
                        match compare(testenv, file) {
                            Ok(n) => compared += n,
                            Err(why) => failures.push(why),
                        }
                    }
                    (compared, failures)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("compare thread"))
            .fold((0, Vec::new()), |(n, mut f), (m, g)| {
                f.extend(g);
                (n + m, f)
            })
    })
}

#[test]
fn yaml11_cases_decode_as_kubectl_decodes_them() {
    let Some(testenv) = testenv() else { return };
    let mut files = Vec::new();
    files_under(&common::path("testdata/yaml11"), &mut files);
    assert!(files.len() >= 50, "{} case files", files.len());
    let (compared, failures) = compare_all(&testenv, &files);
    println!(
        "yaml11 cases: {} files, {compared} documents compared with kubectl's decoder",
        files.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    // Every `error-*` file must hold a document kubectl rejects, and no other file may.
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy();
        let kubectl = kubectl_decode(&testenv, file);
        assert_eq!(
            kubectl.error.is_some(),
            name.starts_with("error-"),
            "{name}: kubectl error {:?}",
            kubectl.error
        );
    }
}

#[test]
fn rendered_chart_corpus_decodes_as_kubectl_decodes_it() {
    let Some(testenv) = testenv() else { return };
    let Some(dir) = common::corpus("charts") else {
        return;
    };
    let mut files = Vec::new();
    files_under(&dir, &mut files);
    files.retain(|f| f.extension().is_some_and(|e| e == "yaml" || e == "yml"));
    let (compared, failures) = compare_all(&testenv, &files);
    println!(
        "rendered chart corpus: {} files, {compared} documents compared with kubectl's decoder",
        files.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert_eq!(files.len(), 192);
    assert_eq!(compared, 3050);
}

/// The objects of `file` as real kubectl reads them (offline), or `None` when kubectl refuses the
/// file (a broken document, or an object its typed decoding rejects).
fn kubectl_objects(testenv: &Path, file: &Path) -> Option<Vec<Value>> {
    let out = Command::new(testenv)
        .args(["kubectl", "annotate", "--local", "-o", "json", "-f"])
        .arg(file)
        .arg("regate-differential-test-")
        .output()
        .expect("run testenv kubectl");
    if !out.status.success() {
        return None;
    }
    serde_json::Deserializer::from_slice(&out.stdout)
        .into_iter::<Value>()
        .collect::<Result<Vec<_>, _>>()
        .ok()
}

/// The first place where two values differ, as a JSON pointer with both sides.
fn first_difference(a: &Value, b: &Value, path: &str) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for key in x.keys().chain(y.keys()) {
                let (Some(v), Some(w)) = (x.get(key), y.get(key)) else {
                    return Some(format!(
                        "{path}/{key}: {:?} vs {:?}",
                        x.get(key),
                        y.get(key)
                    ));
                };
                if let Some(d) = first_difference(v, w, &format!("{path}/{key}")) {
                    return Some(d);
                }
            }
            None
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (v, w))| first_difference(v, w, &format!("{path}/{i}"))),
        _ => (a != b).then(|| format!("{path}: {a} vs {b}")),
    }
}

/// Drops the `metadata.annotations` that `kubectl annotate` rewrites when it is empty or null
/// (and then an empty `metadata`).
fn without_empty_annotations(mut object: Value) -> Value {
    if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        if matches!(metadata.get("annotations"), Some(Value::Null))
            || metadata.get("annotations") == Some(&Value::Object(Default::default()))
        {
            metadata.remove("annotations");
        }
        if metadata.is_empty() {
            object.as_object_mut().map(|o| o.remove("metadata"));
        }
    }
    object
}

/// Compares `regate::manifest::parse_stream`'s objects with real kubectl's for every file kubectl
/// accepts; returns (objects compared, files kubectl refused, differences).
fn compare_objects(testenv: &Path, files: &[PathBuf]) -> (usize, usize, Vec<String>) {
    let mut compared = 0;
    let mut refused = 0;
    let mut problems = Vec::new();
    for file in files {
        let Some(kubectl) = kubectl_objects(testenv, file) else {
            refused += 1;
            continue;
        };
        let text = std::fs::read_to_string(file).expect("read file");
        let name = file.display().to_string();
        let regate = regate::manifest::parse_stream(&name, &text);
        let ours: Vec<Value> = regate
            .documents
            .into_iter()
            .map(|d| without_empty_annotations(d.object))
            .collect();
        let theirs: Vec<Value> = kubectl.into_iter().map(without_empty_annotations).collect();
        if ours != theirs || !regate.errors.is_empty() {
            let difference =
                first_difference(&Value::Array(theirs.clone()), &Value::Array(ours), "");
            problems.push(format!(
                "{name}: kubectl {} objects, regate errors {:?}, first difference (kubectl vs regate): {difference:?}",
                theirs.len(),
                regate.errors
            ));
        }
        compared += theirs.len();
    }
    (compared, refused, problems)
}

#[test]
fn objects_are_the_ones_real_kubectl_reads() {
    let Some(testenv) = testenv() else { return };
    let mut files = Vec::new();
    files_under(&common::path("testdata/yaml11"), &mut files);
    let (compared, refused, problems) = compare_objects(&testenv, &files);
    println!(
        "kubectl annotate --local, yaml11 cases: {compared} objects compared, {refused} of {} files refused by kubectl",
        files.len()
    );
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
    assert!(compared >= 30, "only {compared} objects compared");
}

#[test]
fn corpus_objects_are_the_ones_real_kubectl_reads() {
    let Some(testenv) = testenv() else { return };
    let Some(dir) = common::corpus("charts") else {
        return;
    };
    let mut files = Vec::new();
    files_under(&dir, &mut files);
    files.retain(|f| f.extension().is_some_and(|e| e == "yaml" || e == "yml"));
    let (compared, refused, problems) = compare_objects(&testenv, &files);
    println!(
        "kubectl annotate --local, chart corpus: {compared} objects compared, {refused} of {} files refused by kubectl",
        files.len()
    );
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
    assert_eq!((compared, refused), (3050, 0));
}
