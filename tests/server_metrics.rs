//! `/metrics` keeps what dashboards and alerts query: after the same requests, the exposition has the same
//! metric names, types, help texts, series and label names and values as
//! `tests/server_metrics_exposition.txt`, which the hand-written exposition of 5d7fb0c produced (sample
//! values and the bundle digest left out), plus the in-server audit's metrics added since. To record it
//! from a given build:
//! `REGATE_TEST_BINARY=path/to/regate REGATE_WRITE_EXPOSITION=1 cargo test --test server_metrics`.

mod server_common;

use std::collections::BTreeSet;

use server_common::{basic_args, pod_request, review, tls_dir, Server};

const RECORDED: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/server_metrics_exposition.txt"
);

/// The exposition without its values: `#` lines as they are, each sample as its series (name and
/// labels), the bundle digest masked.
fn shape(exposition: &str) -> BTreeSet<String> {
    let digest = regex::Regex::new(r#"digest="[^"]*""#).unwrap();
    exposition
        .lines()
        .filter(|line| !line.is_empty())
        .map(|line| {
            if line.starts_with('#') {
                return line.to_string();
            }
            let series = line.rsplit_once(' ').map_or(line, |(series, _)| series);
            digest.replace_all(series, r#"digest="*""#).into_owned()
        })
        .collect()
}

#[test]
fn the_exposition_keeps_every_family_series_and_label() {
    let (dir, ca, _) = tls_dir("regate-test");
    let server = Server::start(&basic_args(dir.path()), &ca.pem());
    let mut client = server.client();
    let deny = client.post_json("/validate", &review(pod_request("u1", "nginx:latest")));
    assert_eq!(deny.json()["response"]["allowed"], false);
    let allow = client.post_json("/validate", &review(pod_request("u2", "nginx:1.27")));
    assert_eq!(allow.json()["response"]["allowed"], true);
    let mutate = client.post_json("/mutate", &review(pod_request("u3", "nginx:1.27")));
    assert_eq!(mutate.json()["response"]["allowed"], true);
    let not_json = client.post_json("/validate", b"{");
    assert_eq!(not_json.status, 400);
    assert_eq!(server.client().get("/validate").status, 405);
    let not_found = server.client().request("POST", "/admit", &[], b"");
    assert_eq!(not_found.status, 404);

    let scrape = client.get("/metrics");
    assert_eq!(scrape.status, 200);
    assert_eq!(
        scrape.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let shape = shape(&scrape.text());
    if std::env::var_os("REGATE_WRITE_EXPOSITION").is_some() {
        let lines: Vec<&str> = shape.iter().map(String::as_str).collect();
        std::fs::write(RECORDED, lines.join("\n") + "\n").unwrap();
        return;
    }
    let recorded: BTreeSet<String> = std::fs::read_to_string(RECORDED)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let missing: Vec<&String> = recorded.difference(&shape).collect();
    let added: Vec<&String> = shape.difference(&recorded).collect();
    assert!(
        missing.is_empty() && added.is_empty(),
        "missing from /metrics: {missing:#?}\nnew in /metrics: {added:#?}"
    );
}
