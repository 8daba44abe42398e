//! The decision log: one JSON line per answered review, on stdout or appended to a file, written by a
//! dedicated thread behind a bounded queue (a slow disk never blocks admission; lines that do not fit
//! are counted in `regate_decision_log_dropped_total`). A line carries who asked for what and what was
//! decided, never object contents or secret values:
//!
//! ```json
//! {"time":"2025-01-31T12:00:00.123Z","uid":"…","endpoint":"validate","operation":"CREATE",
//!  "kind":"apps/v1/Deployment","namespace":"shop","name":"web","user":"alice","tenant":"shop",
//!  "allowed":false,"dryRun":false,"bundle":"sha256:…","latency_ms":1.8,
//!  "results":[{"policy":"no-latest","enforcement":"deny","rule":"deny","message":"…","field":"…"}],
//!  "evaluated":["no-latest","hygiene"],"patch_ops":0}
//! ```

use std::io::Write;
use std::path::PathBuf;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use serde::Serialize;

use super::metrics::Metrics;
use crate::admission::RequestFacts;
use crate::policy::Decision;

/// Lines queued before new ones are dropped.
pub const QUEUE_LINES: usize = 8192;

/// Where decision lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecisionLogTarget {
    Stdout,
    File(PathBuf),
    Off,
}

/// Handle to the writer thread.
pub struct DecisionLog {
    sender: Mutex<Option<SyncSender<String>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    metrics: Arc<Metrics>,
}

fn writer_loop(rx: Receiver<String>, mut out: Box<dyn Write + Send>) {
    while let Ok(line) = rx.recv() {
        let _ = out.write_all(line.as_bytes());
        let _ = out.write_all(b"\n");
        // Flush when the queue is drained, so a tail sees complete lines without a flush per line
        // under load.
        while let Ok(line) = rx.try_recv() {
            let _ = out.write_all(line.as_bytes());
            let _ = out.write_all(b"\n");
        }
        let _ = out.flush();
    }
    let _ = out.flush();
}

impl DecisionLog {
    /// Opens the target and starts the writer thread.
    pub fn start(
        target: &DecisionLogTarget,
        metrics: Arc<Metrics>,
    ) -> std::io::Result<DecisionLog> {
        let out: Option<Box<dyn Write + Send>> = match target {
            DecisionLogTarget::Off => None,
            DecisionLogTarget::Stdout => Some(Box::new(std::io::BufWriter::new(std::io::stdout()))),
            DecisionLogTarget::File(path) => {
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| {
                        std::io::Error::new(
                            e.kind(),
                            format!("decision log {}: {e}", path.display()),
                        )
                    })?;
                Some(Box::new(std::io::BufWriter::new(file)))
            }
        };
        let (sender, thread) = match out {
            Some(out) => {
                let (tx, rx) = sync_channel::<String>(QUEUE_LINES);
                let thread = std::thread::Builder::new()
                    .name("regate-decision-log".into())
                    .spawn(move || writer_loop(rx, out))?;
                (Some(tx), Some(thread))
            }
            None => (None, None),
        };
        Ok(DecisionLog {
            sender: Mutex::new(sender),
            thread: Mutex::new(thread),
            metrics,
        })
    }

    /// Whether lines are written at all (`--decision-log off` turns them off); callers skip building
    /// a line when not.
    pub fn enabled(&self) -> bool {
        self.sender
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
    }

    /// Queues one line; drops it (and counts) when the queue is full.
    pub fn write(&self, line: String) {
        let sender = self.sender.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = sender.as_ref() {
            match tx.try_send(line) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                    self.metrics.decision_log_dropped.inc();
                }
            }
        }
    }

    /// Writes what is queued and stops the thread.
    pub fn close(&self) {
        self.sender.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(thread) = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = thread.join();
        }
    }
}

/// What a decision line says besides the decision itself.
pub struct Entry<'a> {
    pub time_millis: i64,
    pub endpoint: &'static str,
    pub facts: &'a RequestFacts<'a>,
    pub tenant: Option<&'a str>,
    pub allowed: bool,
    pub bundle: &'a str,
    pub latency_ms: f64,
    /// Why the normal evaluation did not run or was replaced (deadline, cluster state), if so.
    pub failure: Option<&'a str>,
}

/// One result in a decision line. Fields in alphabetical order, as the line has always been written.
#[derive(Serialize)]
struct LineResult<'a> {
    enforcement: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
    message: &'a str,
    policy: &'a str,
    rule: &'static str,
}

/// A decision line, serialised straight from borrowed fields (no intermediate JSON tree). Fields in
/// alphabetical order, as the line has always been written.
#[derive(Serialize)]
struct Line<'a> {
    allowed: bool,
    bundle: &'a str,
    #[serde(rename = "dryRun")]
    dry_run: bool,
    endpoint: &'a str,
    evaluated: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    failure: Option<&'a str>,
    kind: String,
    latency_ms: f64,
    name: &'a str,
    namespace: &'a str,
    operation: &'a str,
    patch_ops: usize,
    resource: &'a str,
    results: Vec<LineResult<'a>>,
    #[serde(rename = "subResource")]
    sub_resource: &'a str,
    tenant: Option<&'a str>,
    time: String,
    uid: &'a str,
    user: &'a str,
}

/// The JSON line for one decision (no object contents: only request facts, policy ids and messages).
pub fn line(entry: &Entry<'_>, decision: &Decision) -> String {
    let f = entry.facts;
    let kind = if f.group.is_empty() {
        format!("{}/{}", f.version, f.kind)
    } else {
        format!("{}/{}/{}", f.group, f.version, f.kind)
    };
    let line = Line {
        allowed: entry.allowed,
        bundle: entry.bundle,
        dry_run: f.dry_run,
        endpoint: entry.endpoint,
        evaluated: &decision.evaluated,
        failure: entry.failure,
        kind,
        latency_ms: (entry.latency_ms * 1000.0).round() / 1000.0,
        name: f.name,
        namespace: f.namespace,
        operation: f.operation,
        patch_ops: decision.patch.len(),
        resource: f.resource,
        results: decision
            .results
            .iter()
            .map(|r| LineResult {
                enforcement: r.action.as_str(),
                field: r.field.as_deref(),
                message: &r.message,
                policy: &r.policy,
                rule: r.rule.as_str(),
            })
            .collect(),
        sub_resource: f.sub_resource,
        tenant: entry.tenant,
        time: super::clock::rfc3339_millis(entry.time_millis),
        uid: f.uid,
        user: f.username,
    };
    // Serialising borrowed strings, numbers and bools cannot fail; a failure would be a bug, and an
    // empty line is better than a panic on the request path.
    serde_json::to_string(&line).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::decision::{PolicyResult, RuleKind};
    use crate::policy::{Action, Severity};
    use serde_json::{json, Value as Json};

    #[test]
    fn line_has_the_fields_and_no_object() {
        let request = json!({"uid": "u1", "operation": "CREATE", "namespace": "shop",
            "kind": {"group": "", "version": "v1", "kind": "Secret"},
            "userInfo": {"username": "alice"},
            "object": {"metadata": {"name": "s"}, "data": {"password": "c2VjcmV0"}}});
        let facts = RequestFacts::from_request(&request);
        let decision = Decision {
            results: vec![PolicyResult {
                policy: "p".into(),
                title: "T".into(),
                severity: Severity::High,
                action: Action::Deny,
                rule: RuleKind::Deny,
                message: "no".into(),
                field: Some("data".into()),
            }],
            evaluated: vec!["p".into()],
            ..Default::default()
        };
        let text = line(
            &Entry {
                time_millis: 0,
                endpoint: "validate",
                facts: &facts,
                tenant: Some("shop"),
                allowed: false,
                bundle: "sha256:x",
                latency_ms: 1.23456,
                failure: None,
            },
            &decision,
        );
        assert!(!text.contains("c2VjcmV0"), "{text}");
        let v: Json = serde_json::from_str(&text).unwrap();
        assert_eq!(v["time"], "1970-01-01T00:00:00.000Z");
        assert_eq!(v["kind"], "v1/Secret");
        assert_eq!(v["name"], "s");
        assert_eq!(v["user"], "alice");
        assert_eq!(v["tenant"], "shop");
        assert_eq!(v["results"][0]["enforcement"], "deny");
        assert_eq!(v["latency_ms"], 1.235);
    }
}
