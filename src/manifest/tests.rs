//! Tests of the manifest reader: document splitting and line accuracy, List expansion, JSON,
//! error reporting, YAML edge cases, directory walking and the rendered-chart corpus.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use rstest::rstest;
use serde_json::{json, Value};

use super::*;

/// `(line, metadata.name)` of every document.
fn lines_and_names(result: &ReadResult) -> Vec<(usize, String)> {
    result
        .documents
        .iter()
        .map(|d| {
            let name = d.object["metadata"]["name"]
                .as_str()
                .unwrap_or("?")
                .to_owned();
            (d.location.line, name)
        })
        .collect()
}

/// `(line, message)` of every error.
fn errors(result: &ReadResult) -> Vec<(usize, String)> {
    result
        .errors
        .iter()
        .map(|e| (e.location.line, e.message.clone()))
        .collect()
}

fn owned(expected: &[(usize, &str)]) -> Vec<(usize, String)> {
    expected.iter().map(|&(l, s)| (l, s.to_owned())).collect()
}

const HELM: &str = "\
# Test corpus header
# Documents: 2
---
# Source: chart/templates/serviceaccount.yaml
apiVersion: v1
kind: ServiceAccount
metadata:
  name: sa
---
# Source: chart/templates/configmap.yaml
apiVersion: v1
kind: ConfigMap
metadata:
  name: cm
data:
  script: |
    ---
    echo not a separator
";

#[rstest]
#[case::helm_source_comments(HELM, &[(5, "sa"), (11, "cm")])]
#[case::no_leading_separator(
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n",
    &[(1, "a"), (6, "b")]
)]
#[case::leading_separator(
    "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n",
    &[(2, "a")]
)]
#[case::blank_and_null_docs(
    "---\n---\n\n---\n# Source: empty.yaml\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\n\n---\nnull\n---\n~\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: b\n",
    &[(7, "a"), (18, "b")]
)]
#[case::comment_after_separator(
    "--- # first\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---   # second\n\n  # indented comment\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n",
    &[(2, "a"), (9, "b")]
)]
// kubectl splits only on `---`: what follows a `...` line up to the next `---` (object c) is
// never read.
#[case::end_markers(
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n...\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n...\n# trailing\n...\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n",
    &[(1, "a"), (7, "b")]
)]
#[case::crlf(
    "---\r\n# Source: a.yaml\r\napiVersion: v1\r\nkind: ConfigMap\r\nmetadata:\r\n  name: a\r\n---\r\n\r\napiVersion: v1\r\nkind: ConfigMap\r\nmetadata:\r\n  name: b\r\n",
    &[(3, "a"), (9, "b")]
)]
#[case::bom(
    "\u{feff}apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n",
    &[(1, "a"), (6, "b")]
)]
#[case::bom_and_separator(
    "\u{feff}---\n# Source: a.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n",
    &[(3, "a")]
)]
#[case::no_trailing_newline(
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b",
    &[(1, "a"), (6, "b")]
)]
fn document_lines(#[case] text: &str, #[case] expected: &[(usize, &str)]) {
    let result = parse_stream("m.yaml", text);
    assert_eq!(errors(&result), Vec::new());
    assert_eq!(lines_and_names(&result), owned(expected));
    assert!(result.documents.iter().all(|d| d.location.file == "m.yaml"));
}

#[test]
fn block_scalar_separator_lookalike_is_content() {
    let result = parse_stream("m.yaml", HELM);
    assert_eq!(
        result.documents[1].object["data"]["script"],
        json!("---\necho not a separator\n")
    );
}

#[rstest]
#[case::empty("")]
#[case::blank_lines("\n\n  \n")]
#[case::only_comments("# nothing here\n  # still nothing\n")]
#[case::lone_separator("---\n")]
#[case::separators("---\n---\n--- # c\n---\n")]
#[case::bom_only("\u{feff}")]
#[case::null_document("null\n")]
#[case::tilde_document("---\n~\n")]
fn empty_inputs_give_nothing(#[case] text: &str) {
    let result = parse_stream("m.yaml", text);
    assert_eq!(result, ReadResult::default());
}

#[rstest]
#[case::empty_json("m.json", "")]
#[case::whitespace_json("m.json", " \n  \n")]
#[case::empty_json_array("m.json", "[]")]
#[case::json_null("m.json", "null")]
fn empty_json_gives_nothing(#[case] file: &str, #[case] text: &str) {
    assert_eq!(parse_stream(file, text), ReadResult::default());
}

/// Streams kubectl refuses (checked against its decoder in tests/manifest_kubectl_differential.rs):
/// content after `---`, directives (the `---` line that would follow them ends their document),
/// a document that is only `...`, a tab where YAML expects indentation.
#[rstest]
#[case::content_on_separator_line(
    "--- {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}\n--- !!map\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n",
    &[(3, "b")],
    &[
        (1, "invalid document separator \"--- {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}\" at line 1: kubectl accepts only a comment after \"---\" (put the content on the next line)"),
        (2, "invalid document separator \"--- !!map\" at line 2: kubectl accepts only a comment after \"---\" (put the content on the next line)"),
    ]
)]
#[case::four_dashes(
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n----\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n",
    &[(6, "b")],
    &[(5, "invalid document separator \"----\" at line 5: kubectl accepts only a comment after \"---\" (put the content on the next line)")]
)]
#[case::directive(
    "%YAML 1.1\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n",
    &[(3, "a")],
    &[(2, "invalid YAML: did not find expected <document start> at line 2 column 1")]
)]
#[case::end_marker_document(
    "---\n---\n...\n--- # c\n",
    &[],
    &[(3, "invalid YAML: did not find expected node content, while parsing a block node")]
)]
#[case::tab_indentation(
    " \n\t\n",
    &[],
    &[(2, "invalid YAML: found character that cannot start any token at line 2 column 1, while scanning for the next token")]
)]
fn streams_kubectl_refuses(
    #[case] text: &str,
    #[case] docs: &[(usize, &str)],
    #[case] errs: &[(usize, &str)],
) {
    let result = parse_stream("m.yaml", text);
    assert_eq!(lines_and_names(&result), owned(docs));
    assert_eq!(errors(&result), owned(errs));
}

#[test]
fn bad_yaml_in_second_of_three_documents() {
    let text = "\
apiVersion: v1
kind: ConfigMap
metadata:
  name: one
---
# Source: broken.yaml
apiVersion: v1
kind: ConfigMap
metadata:
  name: two: bad
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: three
";
    let expected_error = (
        10,
        "invalid YAML: mapping values are not allowed in this context at line 10 column 12"
            .to_owned(),
    );
    let result = parse_stream("m.yaml", text);
    assert_eq!(
        lines_and_names(&result),
        owned(&[(1, "one"), (12, "three")])
    );
    assert_eq!(errors(&result), vec![expected_error.clone()]);

    let crlf = parse_stream("m.yaml", &text.replace('\n', "\r\n"));
    assert_eq!(lines_and_names(&crlf), owned(&[(1, "one"), (12, "three")]));
    assert_eq!(errors(&crlf), vec![expected_error]);
}

#[test]
fn yaml_error_with_context_position_is_absolute() {
    let text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  labels: {a: 1\n";
    let result = parse_stream("m.yaml", text);
    assert_eq!(lines_and_names(&result), owned(&[(1, "a")]));
    assert_eq!(
        errors(&result),
        owned(&[(
            10,
            "invalid YAML: did not find expected ',' or '}' at line 10 column 1, while parsing a flow mapping at line 9 column 11"
        )])
    );
}

#[rstest]
#[case::missing_kind(
    "apiVersion: v1\nmetadata:\n  name: a\n",
    1,
    "document is not a Kubernetes object: missing \"kind\""
)]
#[case::missing_api_version(
    "# Source: x.yaml\nkind: ConfigMap\n",
    2,
    "document is not a Kubernetes object: missing \"apiVersion\""
)]
#[case::missing_both(
    "metadata: {}\n",
    1,
    "document is not a Kubernetes object: missing \"apiVersion\" and \"kind\""
)]
#[case::empty_kind(
    "apiVersion: v1\nkind: \"\"\n",
    1,
    "document is not a Kubernetes object: missing \"kind\""
)]
#[case::kind_not_string(
    "apiVersion: v1\nkind: 3\n",
    1,
    "document is not a Kubernetes object: \"kind\" must be a string, found a number"
)]
#[case::scalar_document(
    "---\njust a string\n",
    2,
    "document is not a Kubernetes object: expected a mapping, found a string"
)]
#[case::number_document(
    "42\n",
    1,
    "document is not a Kubernetes object: expected a mapping, found a number"
)]
#[case::sequence_document(
    "- apiVersion: v1\n  kind: ConfigMap\n",
    1,
    "document is not a Kubernetes object: expected a mapping, found a sequence"
)]
fn not_kubernetes_objects(#[case] text: &str, #[case] line: usize, #[case] message: &str) {
    let result = parse_stream("m.yaml", text);
    assert_eq!(result.documents, Vec::new());
    assert_eq!(errors(&result), owned(&[(line, message)]));
    assert_eq!(result.errors[0].location.file, "m.yaml");
}

#[test]
fn list_items_get_their_own_lines() {
    let text = "\
apiVersion: v1
items:
- apiVersion: v1
  kind: Pod
  metadata:
    name: p1
    annotations:
      note: |
        - not an entry

        # not a comment
- apiVersion: v1
  kind: Service
  metadata:
    name: s1
kind: List
metadata:
  resourceVersion: \"\"
";
    let result = parse_stream("list.yaml", text);
    assert_eq!(errors(&result), Vec::new());
    assert_eq!(lines_and_names(&result), owned(&[(3, "p1"), (12, "s1")]));
    assert_eq!(result.documents[0].object["kind"], json!("Pod"));
    assert_eq!(result.documents[1].object["kind"], json!("Service"));
}

#[test]
fn indented_list_in_second_document() {
    let text = "\
apiVersion: v1
kind: ConfigMap
metadata:
  name: first
---
# Source: list.yaml
apiVersion: v1
kind: List
items:
  # first item
  - apiVersion: v1
    kind: ConfigMap
    metadata:
      name: a
  -
    apiVersion: v1
    kind: ConfigMap
    metadata:
      name: b
";
    let result = parse_stream("list.yaml", text);
    assert_eq!(errors(&result), Vec::new());
    assert_eq!(
        lines_and_names(&result),
        owned(&[(1, "first"), (11, "a"), (16, "b")])
    );
}

#[test]
fn typed_list_items_inherit_kind_and_api_version() {
    let text = "\
apiVersion: v1
kind: PodList
metadata:
  resourceVersion: \"42\"
items:
- metadata:
    name: p1
- metadata:
    name: p2
  kind: Pod
  apiVersion: v1
";
    let result = parse_stream("pods.yaml", text);
    assert_eq!(errors(&result), Vec::new());
    assert_eq!(lines_and_names(&result), owned(&[(6, "p1"), (8, "p2")]));
    assert_eq!(
        result.documents[0].object,
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p1"}})
    );
}

#[test]
fn bad_list_items_are_errors_at_their_lines() {
    let text = "\
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: ConfigMap
  metadata:
    name: ok
- just a string
- metadata:
    name: nokind
- apiVersion: v1
  kind: Secret
  metadata:
    name: ok2
";
    let result = parse_stream("list.yaml", text);
    assert_eq!(lines_and_names(&result), owned(&[(4, "ok"), (11, "ok2")]));
    assert_eq!(
        errors(&result),
        owned(&[
            (
                8,
                "List items[1] is not a Kubernetes object: expected a mapping, found a string"
            ),
            (
                9,
                "List items[2] is not a Kubernetes object: missing \"apiVersion\" and \"kind\""
            ),
        ])
    );
}

#[rstest]
#[case::flow_items_get_their_line(
    "# c\napiVersion: v1\nkind: List\nitems: [{apiVersion: v1, kind: ConfigMap, metadata: {name: a}},\n  {apiVersion: v1, kind: Secret, metadata: {name: b}}]\n",
    &[(4, "a"), (5, "b")],
    &[]
)]
#[case::empty_items("apiVersion: v1\nkind: List\nitems: []\n", &[], &[])]
#[case::no_items("apiVersion: v1\nkind: List\nmetadata: {}\n", &[], &[])]
#[case::null_items("apiVersion: v1\nkind: List\nitems:\nmetadata: {}\n", &[], &[])]
#[case::items_not_sequence(
    "apiVersion: v1\nkind: List\nitems: nope\n",
    &[],
    &[(1, "List \"items\" must be a sequence, found a string")]
)]
#[case::kind_ending_in_list_without_items_is_an_object(
    "apiVersion: example.com/v1\nkind: AllowList\nmetadata:\n  name: allow\nspec:\n  items: [a]\n",
    &[(1, "allow")],
    &[]
)]
fn list_edge_cases(
    #[case] text: &str,
    #[case] docs: &[(usize, &str)],
    #[case] errs: &[(usize, &str)],
) {
    let result = parse_stream("list.yaml", text);
    assert_eq!(lines_and_names(&result), owned(docs));
    assert_eq!(errors(&result), owned(errs));
}

#[test]
fn json_file_with_one_object() {
    let text = "\n\n{\n  \"apiVersion\": \"v1\",\n  \"kind\": \"ConfigMap\",\n  \"metadata\": {\"name\": \"a\"},\n  \"data\": {\"k\": \"v\"}\n}\n";
    let result = parse_stream("cm.json", text);
    assert_eq!(errors(&result), Vec::new());
    assert_eq!(lines_and_names(&result), owned(&[(3, "a")]));
    assert_eq!(
        result.documents[0].object,
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"k": "v"}})
    );
}

#[test]
fn json_array_of_objects() {
    let text = "[\n  {\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"a\"}},\n\n  {\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":{\"name\":\"b\",\"x\":\"[{,\\\"]\"}},\n  5\n]\n";
    let result = parse_stream("all.json", text);
    assert_eq!(lines_and_names(&result), owned(&[(2, "a"), (4, "b")]));
    assert_eq!(result.documents[1].object["metadata"]["x"], json!("[{,\"]"));
    assert_eq!(
        errors(&result),
        owned(&[(
            5,
            "document is not a Kubernetes object: expected a mapping, found a number"
        )])
    );
}

#[test]
fn json_list_from_kubectl() {
    let text = r#"{
    "apiVersion": "v1",
    "items": [
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "p1", "annotations": {"items": "[1, 2]"}}
        },
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "p2"}
        }
    ],
    "kind": "List",
    "metadata": {"resourceVersion": ""}
}
"#;
    let result = parse_stream("pods.json", text);
    assert_eq!(errors(&result), Vec::new());
    assert_eq!(lines_and_names(&result), owned(&[(4, "p1"), (9, "p2")]));
}

#[test]
fn json_stream_without_extension_is_sniffed() {
    let text = "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"a\"}}\n\n{\"apiVersion\":\"v1\",\n\"kind\":\"Secret\",\"metadata\":{\"name\":\"b\"}}\n";
    let result = parse_stream("-", text);
    assert_eq!(errors(&result), Vec::new());
    assert_eq!(lines_and_names(&result), owned(&[(1, "a"), (3, "b")]));
}

// As kubectl: text that is not JSON is read again as YAML (`"kind": ` is a null kind there), and
// text that does not start with `{` is YAML whatever the file is called.
#[rstest]
#[case::truncated_json_file(
    "bad.json",
    "{\n  \"apiVersion\": \"v1\",\n  \"kind\": \n}\n",
    &[(1, "document is not a Kubernetes object: missing \"kind\"")]
)]
#[case::broken_json_and_yaml(
    "bad.json",
    "{\n  \"apiVersion\": \"v1\",\n  \"kind\": [\n}\n",
    &[(4, "invalid JSON: expected value at line 4 column 1")]
)]
#[case::broken_json_array(
    "bad.yaml",
    "[\n  {\"apiVersion\": \"v1\",, \"kind\": \"Pod\"}\n]\n",
    &[(2, "invalid YAML: did not find expected node content at line 2 column 23, while parsing a flow node")]
)]
fn json_errors(#[case] file: &str, #[case] text: &str, #[case] expected: &[(usize, &str)]) {
    let result = parse_stream(file, text);
    assert_eq!(result.documents, Vec::new());
    assert_eq!(errors(&result), owned(expected));
}

#[test]
fn json_error_keeps_objects_before_it() {
    let text = "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"a\"}}\n{\"apiVersion\":\n";
    let result = parse_stream("s.json", text);
    assert_eq!(lines_and_names(&result), owned(&[(1, "a")]));
    assert_eq!(
        errors(&result),
        owned(&[(
            3,
            "invalid JSON: EOF while parsing a value at line 3 column 0"
        )])
    );
}

#[test]
fn yaml_in_a_json_file_is_yaml() {
    let result = parse_stream(
        "cm.json",
        "apiVersion: v1\nkind: ConfigMap\ndata:\n  a: yes\n",
    );
    assert_eq!(errors(&result), Vec::new());
    assert_eq!(result.documents[0].object["data"], json!({"a": true}));
}

#[test]
fn numbers_end_as_kubectl_objects_hold_them() {
    // A stream starting with `{` is JSON, a JSON array is YAML; either way kubectl's objects hold
    // an integer when it fits 64 signed bits and a float64 otherwise, printed as Go prints it.
    let object = parse_stream(
        "o.json",
        "{\"apiVersion\": \"v1\", \"kind\": \"ConfigMap\", \"x\": [1.0, -0, 1.5, 18446744073709551615]}\n",
    );
    assert_eq!(
        object.documents[0].object["x"],
        json!([1, 0, 1.5, 1.844_674_407_370_955_2e19])
    );
    let array = parse_stream(
        "a.json",
        "[{\"apiVersion\": \"v1\", \"kind\": \"ConfigMap\", \"x\": [1.0, -0.0, 1e3]}]\n",
    );
    assert_eq!(array.documents[0].object["x"], json!([1, 0, 1000]));
    // decode_stream keeps the decoder's view (what `testenv yaml2json` prints).
    let decoded = decode_stream("{\"x\": 1.0}\n");
    assert_eq!(decoded[0].value, Ok(json!({"x": 1.0})));
}

#[test]
fn flow_yaml_that_is_not_json_falls_back_to_yaml() {
    let result = parse_stream(
        "m.yaml",
        "{apiVersion: v1, kind: ConfigMap, metadata: {name: a}}\n",
    );
    assert_eq!(errors(&result), Vec::new());
    assert_eq!(lines_and_names(&result), owned(&[(1, "a")]));
}

#[test]
fn invalid_utf8_names_offset_and_line() {
    let bytes = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: caf\xe9\n";
    let result = read_bytes("bad.yaml", bytes);
    assert_eq!(result.documents, Vec::new());
    assert_eq!(
        errors(&result),
        owned(&[(
            4,
            "file is not valid UTF-8: invalid byte at offset 52 (line 4)"
        )])
    );
    assert_eq!(result.errors[0].location.file, "bad.yaml");

    let mut with_bom = b"\xEF\xBB\xBF".to_vec();
    with_bom.extend_from_slice(bytes);
    assert_eq!(
        errors(&read_bytes("bad.yaml", &with_bom)),
        owned(&[(
            4,
            "file is not valid UTF-8: invalid byte at offset 55 (line 4)"
        )])
    );
}

#[test]
fn utf16_is_named() {
    let result = read_bytes("u16.yaml", b"\xFF\xFEa\x00:\x00");
    assert_eq!(
        errors(&result),
        owned(&[(
            1,
            "file is UTF-16 encoded (it starts with a UTF-16 byte order mark); only UTF-8 is supported"
        )])
    );
}

#[test]
fn read_bytes_strips_bom_and_reads_crlf() {
    let result = read_bytes(
        "b.yaml",
        b"\xEF\xBB\xBF# Source: x\r\napiVersion: v1\r\nkind: ConfigMap\r\nmetadata:\r\n  name: a\r\n",
    );
    assert_eq!(errors(&result), Vec::new());
    assert_eq!(lines_and_names(&result), owned(&[(2, "a")]));
}

/// go-yaml (through sigs.k8s.io/yaml, not strict) keeps the last value of a repeated key, and so
/// does `kubectl apply`: `privileged: true` below reaches the API server.
#[rstest]
#[case::metadata(
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  name: b\n",
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "b"}})
)]
#[case::in_sequence_entry(
    "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - name: a\n    securityContext:\n      privileged: false\n      privileged: true\n",
    json!({"apiVersion": "v1", "kind": "Pod", "spec": {"containers": [{"name": "a", "securityContext": {"privileged": true}}]}})
)]
#[case::top_level_after_nested_block(
    "# c\napiVersion: v1\nkind: ConfigMap\ndata:\n  kind: nested\nkind: Secret\n",
    json!({"apiVersion": "v1", "kind": "Secret", "data": {"kind": "nested"}})
)]
#[case::flow_mapping(
    "apiVersion: v1\nkind: ConfigMap\ndata: {a: 1,\n  a: 2}\n",
    json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"a": 2}})
)]
#[case::same_key_spelled_differently(
    "apiVersion: v1\nkind: ConfigMap\ndata: {on: 1, yes: 2, 0x1: a, 1: b}\n",
    json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"true": 2, "1": "b"}})
)]
fn duplicate_keys_keep_the_last_value(#[case] text: &str, #[case] object: Value) {
    let result = parse_stream("dup.yaml", text);
    assert_eq!(errors(&result), Vec::new());
    assert_eq!(result.documents[0].object, object);
}

#[test]
fn keys_that_collide_after_stringifying_are_errors() {
    // Go keeps one of the two at random; regate refuses to guess.
    let result = parse_stream(
        "dup.yaml",
        "apiVersion: v1\nkind: ConfigMap\ndata:\n  1: a\n  \"1\": b\n",
    );
    assert_eq!(
        errors(&result),
        owned(&[(
            4,
            "cannot convert YAML to JSON at data: mapping keys 1 (an integer) and \"1\" (a string) both become the JSON key \"1\" (kubectl keeps either)"
        )])
    );
}

#[test]
fn billion_laughs_hits_the_repetition_limit() {
    let mut text = String::from(
        "apiVersion: v1\nkind: ConfigMap\ndata:\n  a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i"];
    for pair in names.windows(2) {
        let (prev, next) = (pair[0], pair[1]);
        let refs = vec![format!("*{prev}"); 9].join(",");
        text.push_str(&format!("  {next}: &{next} [{refs}]\n"));
    }
    text.push_str("---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: after\n");
    let started = Instant::now();
    let result = parse_stream("lol.yaml", &text);
    assert_eq!(
        errors(&result),
        owned(&[(
            4,
            "invalid YAML: document contains excessive aliasing at line 4 column 40"
        )])
    );
    assert_eq!(lines_and_names(&result), owned(&[(14, "after")]));
    assert!(started.elapsed().as_secs() < 10);
}

#[test]
fn small_aliases_expand() {
    let text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  labels: &l {app: x}\n  annotations: *l\n";
    let result = parse_stream("alias.yaml", text);
    assert_eq!(errors(&result), Vec::new());
    assert_eq!(
        result.documents[0].object["metadata"]["annotations"],
        json!({"app": "x"})
    );
}

#[rstest]
#[case::flow_within_bracket_limit(
    format!("apiVersion: v1\nkind: ConfigMap\ndata: {}\n", "[".repeat(500)),
    3,
    "invalid YAML: collections nested more than 128 levels deep at line 3 column 134"
)]
#[case::block_sequences(
    format!("apiVersion: v1\nkind: ConfigMap\ndata:\n{}a\n", "- ".repeat(20_000)),
    4,
    "invalid YAML: collections nested more than 128 levels deep at line 4 column 255"
)]
#[case::flow_beyond_bracket_limit(
    format!("apiVersion: v1\nkind: ConfigMap\n# [[[[[[[[\ndata:\n{}", "  [\n".repeat(100_000)),
    1005,
    "invalid YAML: brackets nested more than 1000 levels deep at line 1005"
)]
fn deep_nesting_is_an_error_not_a_crash(
    #[case] text: String,
    #[case] line: usize,
    #[case] message: &str,
) {
    let started = Instant::now();
    let result = parse_stream("deep.yaml", &format!("{text}---\n{}", config_map("after")));
    assert_eq!(errors(&result), owned(&[(line, message)]));
    assert_eq!(lines_and_names(&result).len(), 1);
    assert!(started.elapsed().as_secs() < 10);
}

#[test]
fn merge_keys_are_applied() {
    let text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  labels: &base {app: x, tier: web}\n  annotations:\n    <<: *base\n    tier: api\n";
    let result = parse_stream("merge.yaml", text);
    assert_eq!(errors(&result), Vec::new());
    assert_eq!(
        result.documents[0].object["metadata"]["annotations"],
        json!({"app": "x", "tier": "api"})
    );
}

#[test]
fn scalars_keys_and_tags_convert_like_kubectl() {
    // go-yaml v2 (YAML 1.1), as kubectl: `yes`/`on` are booleans, `017` is octal, tags other than
    // the standard ones are ignored (`!custom 3` is the string "3"), `!!binary` is decoded.
    // Non-string keys become strings.
    let text = "\
apiVersion: v1
kind: ConfigMap
metadata:
  name: a
data:
  a: yes
  b: on
  c: 017
  d: 0o17
  e: !custom 3
  f: !!binary aGk=
  g: 1.5
  h: 1e3
  i: 1:30
  1: int key
  true: bool key
  2.5: float key
";
    let result = parse_stream("scalars.yaml", text);
    assert_eq!(errors(&result), Vec::new());
    assert_eq!(
        result.documents[0].object["data"],
        json!({
            "a": true, "b": true, "c": 15, "d": 15, "e": "3", "f": "hi", "g": 1.5, "h": 1000,
            "i": "1:30", "1": "int key", "true": "bool key", "2.5": "float key"
        })
    );
}

#[rstest]
#[case::null_key(
    "apiVersion: v1\nkind: ConfigMap\ndata:\n  ~: x\n",
    5,
    "cannot convert YAML to JSON at data: a mapping key is null; keys must be strings, numbers or booleans"
)]
#[case::sequence_key(
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  labels:\n    [a, b]: x\n",
    6,
    "invalid YAML: invalid map key: a sequence or mapping cannot be a key at line 6 column 5"
)]
#[case::infinity(
    "apiVersion: v1\nkind: ConfigMap\ndata:\n  list: [1, .inf]\n",
    5,
    "cannot convert YAML to JSON at data.list[1]: .inf cannot be represented in JSON"
)]
#[case::nan(
    "apiVersion: v1\nkind: ConfigMap\nx: .nan\n",
    4,
    "cannot convert YAML to JSON at x: .nan cannot be represented in JSON"
)]
#[case::bad_int_tag(
    "apiVersion: v1\nkind: ConfigMap\nx: !!int abc\n",
    4,
    "invalid YAML: cannot decode !!str `abc` as a !!int at line 4 column 4"
)]
#[case::bad_binary(
    "apiVersion: v1\nkind: ConfigMap\nx: !!binary nope!\n",
    4,
    "invalid YAML: !!binary value contains invalid base64 data at line 4 column 4"
)]
#[case::unknown_anchor(
    "apiVersion: v1\nkind: ConfigMap\nx: *nowhere\n",
    4,
    "invalid YAML: unknown anchor 'nowhere' referenced at line 4 column 4"
)]
#[case::merge_of_a_scalar(
    "apiVersion: v1\nkind: ConfigMap\nx:\n  <<: 1\n",
    5,
    "invalid YAML: map merge requires map or sequence of maps as the value at line 5 column 7"
)]
fn unconvertible_values(#[case] text: &str, #[case] line: usize, #[case] message: &str) {
    let result = parse_stream("m.yaml", &format!("# c\n{text}"));
    assert_eq!(result.documents, Vec::new());
    assert_eq!(errors(&result), owned(&[(line, message)]));
}

#[test]
fn large_configmap_and_list() {
    // ~10 MB ConfigMap: 100,000 keys of ~100 bytes each.
    let mut text = String::from("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: big\ndata:\n");
    for i in 0..100_000 {
        text.push_str(&format!("  key{i:06}: \"{}\"\n", "x".repeat(90)));
    }
    // A List with 20,000 items after it.
    text.push_str("---\napiVersion: v1\nkind: List\nitems:\n");
    for i in 0..20_000 {
        text.push_str(&format!(
            "- apiVersion: v1\n  kind: ConfigMap\n  metadata:\n    name: item{i}\n"
        ));
    }
    assert!(text.len() > 10_000_000);
    let started = Instant::now();
    let result = parse_stream("big.yaml", &text);
    let elapsed = started.elapsed();
    println!(
        "large_configmap_and_list: {} bytes in {elapsed:?}",
        text.len()
    );
    assert_eq!(errors(&result), Vec::new());
    assert_eq!(result.documents.len(), 20_001);
    let data = result.documents[0].object["data"]
        .as_object()
        .map(|m| m.len());
    assert_eq!(data, Some(100_000));
    // Line of the last item: 5 header lines + 100,000 data lines + 4 List lines, then 4 per item.
    let last = result
        .documents
        .last()
        .map(|d| (d.location.line, d.object["metadata"]["name"].clone()));
    assert_eq!(
        last,
        Some((100_005 + 4 + 19_999 * 4 + 1, json!("item19999")))
    );
}

#[test]
fn extend_appends_both_lists() {
    let mut a = parse_stream(
        "a.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n",
    );
    let b = parse_stream(
        "b.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: b\n---\nkind: X\n",
    );
    a.extend(b);
    assert_eq!(lines_and_names(&a), owned(&[(1, "a"), (1, "b")]));
    assert_eq!(
        a.documents
            .iter()
            .map(|d| d.location.file.as_str())
            .collect::<Vec<_>>(),
        vec!["a.yaml", "b.yaml"]
    );
    assert_eq!(
        errors(&a),
        owned(&[(
            6,
            "document is not a Kubernetes object: missing \"apiVersion\""
        )])
    );
}

fn config_map(name: &str) -> String {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n")
}

#[test]
fn directory_walk_order_and_filter() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let write = |rel: &str, body: &[u8]| {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, body).unwrap();
    };
    write("b.yaml", config_map("b").as_bytes());
    write("a.yml", config_map("a").as_bytes());
    write(
        "c.JSON",
        br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"}}"#,
    );
    write("sub/d.yaml", config_map("d").as_bytes());
    write(
        "sub/deeper/e.yaml",
        format!("{}---\n{}", config_map("e1"), config_map("e2")).as_bytes(),
    );
    write("bad.yaml", b"kind: \xc3\x28\n");
    write("notes.txt", config_map("txt").as_bytes());
    write("README.md", b"# readme\n");
    write(".git/config.yaml", config_map("git").as_bytes());
    write(".hidden.yaml", config_map("hidden").as_bytes());
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(root, root.join("sub/loop")).unwrap();
        std::os::unix::fs::symlink(root.join("missing"), root.join("dangling.yaml")).unwrap();
    }

    let result = read_inputs(&[root.to_path_buf()]).unwrap();
    let at = |rel: &str| root.join(rel).display().to_string();
    let got: Vec<(String, usize, String)> = result
        .documents
        .iter()
        .map(|d| {
            (
                d.location.file.clone(),
                d.location.line,
                d.object["metadata"]["name"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (at("a.yml"), 1, "a".to_owned()),
            (at("b.yaml"), 1, "b".to_owned()),
            (at("c.JSON"), 1, "c".to_owned()),
            (at("sub/d.yaml"), 1, "d".to_owned()),
            (at("sub/deeper/e.yaml"), 1, "e1".to_owned()),
            (at("sub/deeper/e.yaml"), 6, "e2".to_owned()),
        ]
    );
    let errs: Vec<(String, usize, String)> = result
        .errors
        .iter()
        .map(|e| (e.location.file.clone(), e.location.line, e.message.clone()))
        .collect();
    let mut expected_errors = vec![(
        at("bad.yaml"),
        1,
        "file is not valid UTF-8: invalid byte at offset 6 (line 1)".to_owned(),
    )];
    if cfg!(unix) {
        expected_errors.push((
            at("dangling.yaml"),
            1,
            "cannot read file: No such file or directory (os error 2)".to_owned(),
        ));
    }
    assert_eq!(errs, expected_errors);
}

#[test]
fn named_inputs_keep_their_order_and_any_extension() {
    let dir = tempfile::tempdir().unwrap();
    let txt = dir.path().join("notes.txt");
    let yaml = dir.path().join("a.yaml");
    std::fs::write(&txt, config_map("txt")).unwrap();
    std::fs::write(&yaml, config_map("a")).unwrap();
    let result = read_inputs(&[txt.clone(), yaml.clone()]).unwrap();
    assert_eq!(errors(&result), Vec::new());
    let got: Vec<(String, String)> = result
        .documents
        .iter()
        .map(|d| {
            (
                d.location.file.clone(),
                d.object["metadata"]["name"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (txt.display().to_string(), "txt".to_owned()),
            (yaml.display().to_string(), "a".to_owned()),
        ]
    );
}

#[test]
fn nonexistent_path_is_a_manifest_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.yaml");
    let err = read_inputs(std::slice::from_ref(&missing)).unwrap_err();
    assert!(matches!(&err, ManifestError::NotFound { path } if path == &missing));
    assert_eq!(
        err.to_string(),
        format!("{}: no such file or directory", missing.display())
    );
}

#[test]
fn manifest_error_messages_name_the_input() {
    let io = ManifestError::Io {
        path: PathBuf::from("charts/private"),
        source: std::io::Error::new(std::io::ErrorKind::PermissionDenied, "permission denied"),
    };
    assert_eq!(
        io.to_string(),
        "cannot read charts/private: permission denied"
    );
    let stdin = ManifestError::Stdin {
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, "broken pipe"),
    };
    assert_eq!(
        stdin.to_string(),
        "cannot read standard input (-): broken pipe"
    );
}

/// The rendered Helm charts in `shared/corpus/charts`: every object in `index.json` is read, and
/// there are no errors; per file, object and kind counts match the index. (The kube-prometheus-stack
/// chart writes `logFormat` twice into its Alertmanager and Prometheus specs; like kubectl and
/// PyYAML, which counted `index.json`, the reader keeps the last value.)
#[test]
fn rendered_chart_corpus() {
    let dir = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/corpus/charts"
    ));
    if !dir.is_dir() {
        println!(
            "skipping rendered_chart_corpus: {} not found",
            dir.display()
        );
        return;
    }
    let index: Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let charts = index["charts"].as_array().unwrap();
    let started = Instant::now();
    let mut total = 0;
    let mut all_errors = Vec::new();
    let mut mismatches = Vec::new();
    for chart in charts {
        // `file` is relative to the corpus folder's parent, e.g. `charts/extra/x.yaml`.
        let rel = chart["file"].as_str().unwrap();
        let path = dir.join(rel.strip_prefix("charts/").unwrap());
        let result = read_inputs(std::slice::from_ref(&path)).unwrap();
        total += result.documents.len();
        let mut kinds: BTreeMap<String, u64> = BTreeMap::new();
        for d in &result.documents {
            *kinds
                .entry(d.object["kind"].as_str().unwrap().to_owned())
                .or_default() += 1;
        }
        for e in result.errors {
            assert_eq!(e.location.file, path.display().to_string());
            let name = path.file_name().unwrap().to_str().unwrap().to_owned();
            all_errors.push((name, e.location.line, e.message));
        }
        let want: BTreeMap<String, u64> = chart["kinds"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
            .collect();
        let want_documents = chart["documents"].as_u64().unwrap();
        if result.documents.len() as u64 != want_documents || kinds != want {
            mismatches.push(format!("{rel}: read {kinds:?}, index {want:?}"));
        }
    }
    println!(
        "rendered_chart_corpus: {} files, {total} objects, {} errors in {:?}",
        charts.len(),
        all_errors.len(),
        started.elapsed()
    );
    assert_eq!(mismatches, Vec::<String>::new());
    assert_eq!(charts.len(), 192);
    assert_eq!(index["totals"]["documents"], json!(3050));
    assert_eq!(total, 3050);
    assert_eq!(all_errors, Vec::new());
}

#[test]
fn corpus_document_lines_point_at_api_version() {
    let path = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/corpus/charts/harbor.yaml"
    ));
    let Ok(text) = std::fs::read_to_string(path) else {
        println!(
            "skipping corpus_document_lines_point_at_api_version: {} not found",
            path.display()
        );
        return;
    };
    let result = parse_stream("harbor.yaml", &text);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(result.documents.len(), 35);
    for d in &result.documents {
        let line = lines[d.location.line - 1];
        assert!(
            line.starts_with("apiVersion:") || line.starts_with("kind:"),
            "{line}"
        );
    }
}
