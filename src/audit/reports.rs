//! Policy reports in the cluster: one report per audited object, in the object's namespace (or a
//! cluster report for a cluster-scoped object), named after the object's uid and owned by it, so the
//! garbage collector removes the report with the object. Two report APIs are written, the same shape
//! under two groups: `openreports.io/v1alpha1` `Report` / `ClusterReport` (the default) and
//! `wgpolicyk8s.io/v1alpha2` `PolicyReport` / `ClusterPolicyReport` (what Kyverno 1.x and older Policy
//! Reporter releases read).
//!
//! Reports are written by server-side apply with the field manager `regate`. A report whose content
//! (everything but the results' timestamps) has not changed since the last audit is not written again:
//! its digest is kept in the `regate.dev/results-digest` annotation and the digests of every existing
//! report are listed once, page by page, before an audit writes. A result filter (`--report-results
//! fail,warn`) bounds what is stored; an object left with no result after it gets no report, and its
//! old report is deleted. After an audit that listed every kind completely, reports of objects it did
//! not see (no policy applies to them any more) are deleted.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::Client;
use serde_json::{json, Map, Value as Json};
use sha2::{Digest, Sha256};
use tokio::task::JoinSet;

use super::outcome::{ObjectAudit, Outcome, PolicyResult};
use super::pace::{retrying, Pacer};
use crate::policy::Severity;

/// The field manager of regate's server-side applies.
pub const FIELD_MANAGER: &str = "regate";
/// Label on every report regate writes.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "regate");
/// Annotation holding the digest of a report's content.
pub const DIGEST_ANNOTATION: &str = "regate.dev/results-digest";
/// Reports applied at once.
const CONCURRENT_WRITES: usize = 4;

/// Which report API is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ReportApi {
    /// `openreports.io/v1alpha1` `Report` and `ClusterReport`.
    #[default]
    #[value(name = "openreports")]
    OpenReports,
    /// `wgpolicyk8s.io/v1alpha2` `PolicyReport` and `ClusterPolicyReport`.
    #[value(name = "wgpolicyk8s")]
    WgPolicy,
}

impl ReportApi {
    /// The report resource for namespaced objects (`namespaced`) or cluster-scoped ones.
    pub fn resource(self, namespaced: bool) -> ApiResource {
        let (group, version, kind, plural) = match (self, namespaced) {
            (ReportApi::OpenReports, true) => ("openreports.io", "v1alpha1", "Report", "reports"),
            (ReportApi::OpenReports, false) => (
                "openreports.io",
                "v1alpha1",
                "ClusterReport",
                "clusterreports",
            ),
            (ReportApi::WgPolicy, true) => (
                "wgpolicyk8s.io",
                "v1alpha2",
                "PolicyReport",
                "policyreports",
            ),
            (ReportApi::WgPolicy, false) => (
                "wgpolicyk8s.io",
                "v1alpha2",
                "ClusterPolicyReport",
                "clusterpolicyreports",
            ),
        };
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
    }
}

/// The outcomes a report keeps (`--report-results`); by default all of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultFilter(BTreeSet<Outcome>);

impl Default for ResultFilter {
    fn default() -> ResultFilter {
        ResultFilter(Outcome::ALL.into_iter().collect())
    }
}

impl ResultFilter {
    pub fn keeps(&self, outcome: Outcome) -> bool {
        self.0.contains(&outcome)
    }
}

impl std::str::FromStr for ResultFilter {
    type Err = String;

    /// `fail,warn`.
    fn from_str(s: &str) -> Result<ResultFilter, String> {
        let outcomes = s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::parse)
            .collect::<Result<BTreeSet<Outcome>, String>>()?;
        if outcomes.is_empty() {
            return Err("name at least one result (pass, fail, warn, error, skip)".into());
        }
        Ok(ResultFilter(outcomes))
    }
}

/// How reports are written.
#[derive(Debug, Clone, Default)]
pub struct ReportOptions {
    pub api: ReportApi,
    pub filter: ResultFilter,
}

/// A report ready to apply: its resource, namespace, name, digest and body.
#[derive(Debug, Clone, PartialEq)]
pub struct BuiltReport {
    pub namespace: Option<String>,
    pub name: String,
    pub digest: String,
    pub body: Json,
}

/// Seconds and nanoseconds since the epoch, as the report CRDs' `timestamp`.
fn timestamp(now: SystemTime) -> Json {
    let since = now.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    json!({"seconds": since.as_secs(), "nanos": 0})
}

/// One report result (without its timestamp). The published `wgpolicyk8s.io/v1alpha2` schema is
/// narrower than openreports': a result has no `source` (the field came in a later revision, and
/// server-side apply refuses a field the installed CRD does not declare) and `severity` is `high`,
/// `medium` or `low` (critical is written as high and info as low, the policy's own severity kept in
/// `properties.severity`).
fn result_entry(result: &PolicyResult, api: ReportApi) -> Json {
    let mut properties = Map::new();
    let severity = match (api, result.severity) {
        (ReportApi::WgPolicy, Severity::Critical) => "high",
        (ReportApi::WgPolicy, Severity::Info) => "low",
        (_, severity) => severity.as_str(),
    };
    if severity != result.severity.as_str() {
        properties.insert("severity".into(), result.severity.as_str().into());
    }
    properties.insert("enforcement".into(), result.enforcement.as_str().into());
    if let Some(field) = &result.field {
        properties.insert("field".into(), field.clone().into());
    }
    if !result.controls.is_empty() {
        properties.insert("controls".into(), result.controls.join("; ").into());
    }
    let mut entry = json!({
        "policy": result.policy,
        "result": result.outcome.as_str(),
        "severity": severity,
        "message": result.message,
        "scored": true,
        "properties": properties,
    });
    if !result.title.is_empty() {
        entry["category"] = result.title.clone().into();
    }
    if !result.rule.is_empty() {
        entry["rule"] = result.rule.clone().into();
    }
    if api == ReportApi::OpenReports {
        entry["source"] = FIELD_MANAGER.into();
    }
    entry
}

/// The hex SHA-256 of `value`'s JSON text (keys in order: `serde_json` maps are sorted).
fn digest(value: &Json) -> String {
    let hash = Sha256::digest(value.to_string().as_bytes());
    hash.iter().map(|b| format!("{b:02x}")).collect()
}

/// The report of `audit` under `options`, stamped `now`; `None` when no policy judged the object
/// (every result a skip: a report would only say that nothing was judged, for every object of the
/// cluster) or the filter leaves no result.
pub fn build(audit: &ObjectAudit, options: &ReportOptions, now: SystemTime) -> Option<BuiltReport> {
    if audit.results.iter().all(|r| r.outcome == Outcome::Skip) {
        return None;
    }
    let kept: Vec<&PolicyResult> = audit
        .results
        .iter()
        .filter(|r| options.filter.keeps(r.outcome))
        .collect();
    if kept.is_empty() {
        return None;
    }
    let owner = &audit.owner;
    let resource = options.api.resource(owner.namespace.is_some());
    let mut summary = Map::new();
    for outcome in Outcome::ALL {
        let n = kept.iter().filter(|r| r.outcome == outcome).count();
        summary.insert(outcome.as_str().into(), n.into());
    }
    let mut scope = json!({"apiVersion": owner.api_version, "kind": owner.kind,
                           "name": owner.name, "uid": owner.uid});
    if let Some(ns) = &owner.namespace {
        scope["namespace"] = ns.clone().into();
    }
    let mut metadata = json!({
        "name": owner.uid,
        "labels": {MANAGED_BY.0: MANAGED_BY.1},
        "ownerReferences": [{"apiVersion": owner.api_version, "kind": owner.kind,
                             "name": owner.name, "uid": owner.uid}],
    });
    if let Some(ns) = &owner.namespace {
        metadata["namespace"] = ns.clone().into();
    }
    let mut body = json!({
        "apiVersion": resource.api_version,
        "kind": resource.kind,
        "metadata": metadata,
        "scope": scope,
        "results": kept.iter().map(|r| result_entry(r, options.api)).collect::<Vec<_>>(),
        "summary": summary,
    });
    if options.api == ReportApi::OpenReports {
        body["source"] = FIELD_MANAGER.into();
    }
    let digest = digest(&body);
    body["metadata"]["annotations"] = json!({ DIGEST_ANNOTATION: digest });
    let stamp = timestamp(now);
    for result in body["results"].as_array_mut().into_iter().flatten() {
        result["timestamp"] = stamp.clone();
    }
    Some(BuiltReport {
        namespace: owner.namespace.clone(),
        name: owner.uid.clone(),
        digest,
        body,
    })
}

/// What one audit did to the reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct WriteStats {
    pub written: usize,
    pub unchanged: usize,
    pub deleted: usize,
    pub failed: usize,
}

/// (namespace, name) of a report; the namespace is empty for cluster reports.
type ReportKey = (String, String);

/// Writes the reports of one audit.
pub struct ReportWriter {
    client: Client,
    options: ReportOptions,
    /// Digest of every report regate had written before this audit.
    existing: HashMap<ReportKey, String>,
    /// Reports this audit wrote or found unchanged.
    kept: HashSet<ReportKey>,
    stats: WriteStats,
    /// Failures, for the audit's error list (first few only).
    errors: Vec<String>,
}

/// The namespaces an audit covers (`None`: all, cluster-scoped objects included).
pub type Scope = Option<BTreeSet<String>>;

impl ReportWriter {
    /// Lists the digests of the reports regate has written (both scopes), page by page.
    pub async fn new(
        client: Client,
        options: ReportOptions,
        page_size: u32,
        pacer: &mut Pacer,
    ) -> anyhow::Result<ReportWriter> {
        let mut existing = HashMap::new();
        for namespaced in [true, false] {
            let resource = options.api.resource(namespaced);
            let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
            let mut token: Option<String> = None;
            loop {
                let mut params = ListParams::default()
                    .labels(&format!("{}={}", MANAGED_BY.0, MANAGED_BY.1))
                    .limit(page_size);
                if let Some(token) = &token {
                    params = params.continue_token(token);
                }
                pacer.wait().await;
                let page = retrying(|| api.list_metadata(&params)).await.map_err(|e| {
                    anyhow::anyhow!(
                        "cannot list {} {} (is its CRD installed? see docs/audit.md): {e}",
                        resource.api_version,
                        resource.kind
                    )
                })?;
                for item in page.items {
                    let digest = item
                        .metadata
                        .annotations
                        .as_ref()
                        .and_then(|a| a.get(DIGEST_ANNOTATION))
                        .cloned()
                        .unwrap_or_default();
                    let key = (
                        item.metadata.namespace.unwrap_or_default(),
                        item.metadata.name.unwrap_or_default(),
                    );
                    existing.insert(key, digest);
                }
                token = page.metadata.continue_.filter(|t| !t.is_empty());
                if token.is_none() {
                    break;
                }
            }
        }
        Ok(ReportWriter {
            client,
            options,
            existing,
            kept: HashSet::new(),
            stats: WriteStats::default(),
            errors: Vec::new(),
        })
    }

    fn api(&self, namespace: Option<&str>) -> Api<DynamicObject> {
        let resource = self.options.api.resource(namespace.is_some());
        match namespace {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, &resource),
            None => Api::all_with(self.client.clone(), &resource),
        }
    }

    fn failed(&mut self, what: String) {
        self.stats.failed += 1;
        if self.errors.len() < 20 {
            self.errors.push(what);
        }
    }

    /// Writes the reports of one page of audited objects whose content changed.
    pub async fn write(&mut self, audits: &[ObjectAudit], pacer: &mut Pacer) {
        let now = SystemTime::now();
        let mut changed = Vec::new();
        for audit in audits {
            let Some(report) = build(audit, &self.options, now) else {
                continue;
            };
            let key = (
                report.namespace.clone().unwrap_or_default(),
                report.name.clone(),
            );
            if self.existing.get(&key) == Some(&report.digest) {
                self.stats.unchanged += 1;
                self.kept.insert(key);
            } else {
                changed.push((key, report));
            }
        }
        // Each write is its own task, so writes in flight progress while the next one waits for its
        // turn; at most CONCURRENT_WRITES at once, each started at the pacer's pace.
        let mut writes = JoinSet::new();
        for (key, report) in changed {
            while writes.len() >= CONCURRENT_WRITES {
                if let Some(done) = writes.join_next().await {
                    self.written(done);
                }
            }
            pacer.wait().await;
            let api = self.api(report.namespace.as_deref());
            writes.spawn(async move {
                let params = PatchParams::apply(FIELD_MANAGER).force();
                let patch = Patch::Apply(&report.body);
                let result = retrying(|| api.patch(&report.name, &params, &patch))
                    .await
                    .map(|_| report.digest.clone());
                (key, result)
            });
        }
        while let Some(done) = writes.join_next().await {
            self.written(done);
        }
    }

    /// Records the end of one report write.
    fn written(&mut self, done: Result<(ReportKey, kube::Result<String>), tokio::task::JoinError>) {
        match done {
            Ok((key, Ok(digest))) => {
                self.stats.written += 1;
                // A list that starts again after its token expired may meet the object again.
                self.existing.insert(key.clone(), digest);
                self.kept.insert(key);
            }
            Ok((key, Err(e))) => self.failed(format!("report {}/{}: {e}", key.0, key.1)),
            Err(e) => self.failed(format!("report write task: {e}")),
        }
    }

    /// Deletes the reports of objects this audit did not report on, within `scope`; only after an
    /// audit that listed every kind completely (`complete`), since an object of a kind that could not
    /// be listed was not seen. Returns what was done and the first failures.
    pub async fn finish(
        mut self,
        complete: bool,
        scope: &Scope,
        pacer: &mut Pacer,
    ) -> (WriteStats, Vec<String>) {
        if complete {
            let stale: Vec<ReportKey> = self
                .existing
                .keys()
                .filter(|key| !self.kept.contains(*key))
                .filter(|(ns, _)| match scope {
                    None => true,
                    Some(namespaces) => !ns.is_empty() && namespaces.contains(ns),
                })
                .cloned()
                .collect();
            for (ns, name) in stale {
                pacer.wait().await;
                let api = self.api((!ns.is_empty()).then_some(ns.as_str()));
                let params = DeleteParams::default();
                match retrying(|| api.delete(&name, &params)).await {
                    Ok(_) => self.stats.deleted += 1,
                    Err(kube::Error::Api(e)) if e.code == 404 => {}
                    Err(e) => self.failed(format!("deleting report {ns}/{name}: {e}")),
                }
            }
        }
        (self.stats, self.errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::outcome::Owner;
    use crate::policy::Action;

    fn result(policy: &str, outcome: Outcome, message: &str) -> PolicyResult {
        PolicyResult {
            policy: policy.into(),
            title: format!("{policy} title"),
            rule: match outcome {
                Outcome::Pass => String::new(),
                Outcome::Warn => "warn".into(),
                _ => "deny".into(),
            },
            outcome,
            severity: Severity::High,
            enforcement: Action::Deny,
            message: message.into(),
            field: (outcome == Outcome::Fail).then(|| "spec.containers[0]".to_string()),
            controls: vec!["NIS-2 Art. 21(2)(e)".into(), "DORA Art. 9".into()],
        }
    }

    fn audit(namespace: Option<&str>, results: Vec<PolicyResult>) -> ObjectAudit {
        ObjectAudit {
            owner: Owner {
                api_version: "v1".into(),
                kind: "Pod".into(),
                namespace: namespace.map(str::to_string),
                name: "web".into(),
                uid: "0b9f3c1e-uid".into(),
            },
            results,
        }
    }

    fn at(seconds: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(seconds)
    }

    #[test]
    fn a_namespaced_object_gets_a_report_owned_by_it_with_scope_results_and_summary() {
        let audit = audit(
            Some("shop"),
            vec![
                result("pod-security", Outcome::Fail, "privileged"),
                result("resource-limits", Outcome::Pass, "no violation"),
                result("tenant-isolation", Outcome::Skip, "not judged"),
            ],
        );
        let report = build(&audit, &ReportOptions::default(), at(1_700_000_000)).unwrap();
        let body = &report.body;
        assert_eq!(body["apiVersion"], "openreports.io/v1alpha1");
        assert_eq!(body["kind"], "Report");
        assert_eq!(body["source"], "regate");
        assert_eq!(body["metadata"]["name"], "0b9f3c1e-uid");
        assert_eq!(body["metadata"]["namespace"], "shop");
        assert_eq!(body["metadata"]["labels"][MANAGED_BY.0], "regate");
        assert_eq!(
            body["metadata"]["ownerReferences"],
            json!([{"apiVersion": "v1", "kind": "Pod", "name": "web", "uid": "0b9f3c1e-uid"}])
        );
        assert_eq!(
            body["scope"],
            json!({"apiVersion": "v1", "kind": "Pod", "name": "web", "namespace": "shop",
                   "uid": "0b9f3c1e-uid"})
        );
        assert_eq!(
            body["summary"],
            json!({"pass": 1, "fail": 1, "warn": 0, "error": 0, "skip": 1})
        );
        let fail = &body["results"][0];
        assert_eq!(fail["policy"], "pod-security");
        assert_eq!(fail["result"], "fail");
        assert_eq!(fail["rule"], "deny");
        assert_eq!(fail["severity"], "high");
        assert_eq!(fail["category"], "pod-security title");
        assert_eq!(fail["source"], "regate");
        assert_eq!(
            fail["timestamp"],
            json!({"seconds": 1_700_000_000u64, "nanos": 0})
        );
        assert_eq!(
            fail["properties"],
            json!({"enforcement": "deny", "field": "spec.containers[0]",
                   "controls": "NIS-2 Art. 21(2)(e); DORA Art. 9"})
        );
        assert!(body["results"][1].get("rule").is_none());
        assert_eq!(
            body["metadata"]["annotations"][DIGEST_ANNOTATION],
            report.digest.as_str()
        );
    }

    #[test]
    fn cluster_scoped_objects_get_cluster_reports_and_the_wg_policy_api_is_spelled_its_way() {
        let audit = audit(None, vec![result("p", Outcome::Warn, "w")]);
        let open = build(&audit, &ReportOptions::default(), at(1)).unwrap();
        assert_eq!(open.body["kind"], "ClusterReport");
        assert!(open.body["metadata"].get("namespace").is_none());
        assert!(open.body["scope"].get("namespace").is_none());
        let options = ReportOptions {
            api: ReportApi::WgPolicy,
            ..ReportOptions::default()
        };
        let wg = build(&audit, &options, at(1)).unwrap();
        assert_eq!(wg.body["apiVersion"], "wgpolicyk8s.io/v1alpha2");
        assert_eq!(wg.body["kind"], "ClusterPolicyReport");
        assert!(wg.body.get("source").is_none());
        assert!(wg.body["results"][0].get("source").is_none());
        let critical = PolicyResult {
            severity: Severity::Critical,
            ..result("p", Outcome::Fail, "f")
        };
        let wg = build(
            &self::audit(Some("a"), vec![critical.clone()]),
            &options,
            at(1),
        )
        .unwrap();
        assert_eq!(wg.body["results"][0]["severity"], "high");
        assert_eq!(wg.body["results"][0]["properties"]["severity"], "critical");
        let open = build(
            &self::audit(Some("a"), vec![critical]),
            &ReportOptions::default(),
            at(1),
        );
        assert_eq!(open.unwrap().body["results"][0]["severity"], "critical");
        let namespaced = build(
            &self::audit(Some("a"), audit.results.clone()),
            &options,
            at(1),
        );
        assert_eq!(namespaced.unwrap().body["kind"], "PolicyReport");
    }

    #[test]
    fn the_digest_ignores_timestamps_and_follows_the_content() {
        let one = audit(Some("shop"), vec![result("p", Outcome::Fail, "bad")]);
        let options = ReportOptions::default();
        let first = build(&one, &options, at(1)).unwrap();
        let later = build(&one, &options, at(99)).unwrap();
        assert_eq!(first.digest, later.digest);
        assert_ne!(first.body, later.body);
        let fixed = audit(
            Some("shop"),
            vec![result("p", Outcome::Pass, "no violation")],
        );
        assert_ne!(build(&fixed, &options, at(1)).unwrap().digest, first.digest);
    }

    #[test]
    fn the_result_filter_keeps_only_the_outcomes_named_and_drops_empty_reports() {
        let filter: ResultFilter = "fail, warn".parse().unwrap();
        let options = ReportOptions {
            filter,
            ..ReportOptions::default()
        };
        let mixed = audit(
            Some("shop"),
            vec![
                result("a", Outcome::Fail, "bad"),
                result("b", Outcome::Pass, "ok"),
            ],
        );
        let report = build(&mixed, &options, at(1)).unwrap();
        assert_eq!(report.body["results"].as_array().unwrap().len(), 1);
        assert_eq!(report.body["summary"]["pass"], 0);
        let clean = audit(Some("shop"), vec![result("b", Outcome::Pass, "ok")]);
        assert_eq!(build(&clean, &options, at(1)), None);
        // An object no policy judged gets no report, whatever the filter.
        let unjudged = audit(Some("shop"), vec![result("c", Outcome::Skip, "not judged")]);
        assert_eq!(build(&unjudged, &ReportOptions::default(), at(1)), None);
        assert!("fail,nope"
            .parse::<ResultFilter>()
            .unwrap_err()
            .contains("nope"));
        assert!(",".parse::<ResultFilter>().is_err());
    }
}
