//! The audit's summary: findings and objects counted per policy, per namespace and per tenant (the
//! namespace's tenant label, see [`crate::cluster::inventory::namespace_tenant`]), written after the
//! report (text) or inside it (json, under `audit`).

use std::collections::BTreeMap;
use std::io::{self, Write};

use serde::Serialize;

use crate::report::model::{Action, Finding, ObjectRef};

/// The `rule` of a finding that reports a policy not judged on an object (see
/// [`crate::policy::request_dependence`]).
pub const SKIP_RULE: &str = "skip";

/// Where cluster-scoped objects are counted in the namespace and tenant tables.
pub const CLUSTER_SCOPED: &str = "(cluster-scoped)";

/// Where objects of a namespace without a tenant are counted in the tenant table.
pub const NO_TENANT: &str = "(no tenant)";

/// Counts of one row of a summary table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Objects counted in this row (per policy: objects with a finding of the policy).
    pub objects: usize,
    /// Objects with at least one deny finding.
    pub denied_objects: usize,
    pub deny: usize,
    pub warn: usize,
    pub dryrun: usize,
    /// Policy × object pairs not judged (the policy needs an admission request).
    pub skip: usize,
}

impl Counts {
    fn add(&mut self, findings: &[&Finding]) {
        self.objects += 1;
        if findings
            .iter()
            .any(|f| is_judged(f) && f.action == Action::Deny)
        {
            self.denied_objects += 1;
        }
        for finding in findings {
            match (is_judged(finding), finding.action) {
                (false, _) => self.skip += 1,
                (true, Action::Deny) => self.deny += 1,
                (true, Action::Warn) => self.warn += 1,
                (true, Action::Dryrun) => self.dryrun += 1,
            }
        }
    }
}

fn is_judged(finding: &Finding) -> bool {
    finding.rule != SKIP_RULE
}

/// Per-policy, per-namespace and per-tenant counts of one audit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub objects: usize,
    pub policies: BTreeMap<String, Counts>,
    pub namespaces: BTreeMap<String, Counts>,
    pub tenants: BTreeMap<String, Counts>,
    /// Judged findings (deny, warn, dryrun) per (policy, namespace; empty for cluster-scoped
    /// objects): the in-server audit's `regate_audit_violations` gauge.
    #[serde(skip)]
    pub violations: BTreeMap<(String, String), usize>,
}

impl Summary {
    /// Counts one audited object with its findings; `tenant` is its namespace's tenant.
    pub fn record(&mut self, object: &ObjectRef, tenant: Option<&str>, findings: &[Finding]) {
        let all: Vec<&Finding> = findings.iter().collect();
        self.objects += 1;
        let namespace = object.namespace.as_deref().unwrap_or(CLUSTER_SCOPED);
        let tenant = match (&object.namespace, tenant) {
            (None, _) => CLUSTER_SCOPED,
            (Some(_), Some(t)) => t,
            (Some(_), None) => NO_TENANT,
        };
        self.namespaces
            .entry(namespace.to_string())
            .or_default()
            .add(&all);
        self.tenants
            .entry(tenant.to_string())
            .or_default()
            .add(&all);
        for finding in findings.iter().filter(|f| is_judged(f)) {
            let key = (
                finding.policy.clone(),
                object.namespace.clone().unwrap_or_default(),
            );
            *self.violations.entry(key).or_default() += 1;
        }
        let mut by_policy: BTreeMap<&str, Vec<&Finding>> = BTreeMap::new();
        for finding in findings {
            by_policy.entry(&finding.policy).or_default().push(finding);
        }
        for (policy, findings) in by_policy {
            self.policies
                .entry(policy.to_string())
                .or_default()
                .add(&findings);
        }
    }

    /// The three tables, as text.
    pub fn write_text(&self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(out, "\nAudit summary: {} objects", self.objects)?;
        write_table(out, "policy", &self.policies)?;
        write_table(out, "namespace", &self.namespaces)?;
        write_table(out, "tenant", &self.tenants)
    }
}

fn write_table(out: &mut dyn Write, name: &str, rows: &BTreeMap<String, Counts>) -> io::Result<()> {
    let width = rows
        .keys()
        .map(String::len)
        .chain([name.len()])
        .max()
        .unwrap_or(0);
    writeln!(
        out,
        "\n  {name:<width$}  objects  denied  deny  warn  dryrun  skip"
    )?;
    for (key, c) in rows {
        writeln!(
            out,
            "  {key:<width$}  {:>7}  {:>6}  {:>4}  {:>4}  {:>6}  {:>4}",
            c.objects, c.denied_objects, c.deny, c.warn, c.dryrun, c.skip
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::model::{Location, Severity};

    fn object(namespace: Option<&str>, name: &str) -> ObjectRef {
        ObjectRef {
            api_version: "v1".into(),
            kind: "Pod".into(),
            namespace: namespace.map(str::to_string),
            name: name.into(),
        }
    }

    fn finding(policy: &str, action: Action, rule: &str) -> Finding {
        Finding {
            location: Location {
                file: "x".into(),
                line: 1,
            },
            object: object(Some("shop"), "web"),
            policy: policy.into(),
            title: String::new(),
            severity: Severity::High,
            action,
            rule: rule.into(),
            message: "m".into(),
            field: None,
            remediation: None,
            controls: vec![],
        }
    }

    #[test]
    fn counts_per_policy_namespace_and_tenant() {
        let mut summary = Summary::default();
        summary.record(
            &object(Some("shop"), "web"),
            Some("shop"),
            &[
                finding("pod-security", Action::Deny, "deny"),
                finding("pod-security", Action::Deny, "deny"),
                finding("tenant-isolation", Action::Dryrun, SKIP_RULE),
            ],
        );
        summary.record(&object(Some("shop"), "ok"), Some("shop"), &[]);
        summary.record(
            &object(Some("tmp"), "x"),
            None,
            &[finding("hygiene", Action::Warn, "warn")],
        );
        summary.record(&object(None, "node"), None, &[]);
        assert_eq!(summary.objects, 4);
        let pod_security = &summary.policies["pod-security"];
        assert_eq!(
            (
                pod_security.objects,
                pod_security.denied_objects,
                pod_security.deny
            ),
            (1, 1, 2)
        );
        assert_eq!(summary.policies["tenant-isolation"].skip, 1);
        assert_eq!(summary.policies["tenant-isolation"].denied_objects, 0);
        let shop = &summary.namespaces["shop"];
        assert_eq!(
            (shop.objects, shop.denied_objects, shop.deny, shop.skip),
            (2, 1, 2, 1)
        );
        assert_eq!(summary.tenants["shop"].objects, 2);
        assert_eq!(summary.tenants[NO_TENANT].warn, 1);
        assert_eq!(summary.tenants[CLUSTER_SCOPED].objects, 1);
        assert_eq!(summary.namespaces[CLUSTER_SCOPED].objects, 1);
        let violations: Vec<(&str, &str, usize)> = summary
            .violations
            .iter()
            .map(|((p, ns), n)| (p.as_str(), ns.as_str(), *n))
            .collect();
        assert_eq!(
            violations,
            [("hygiene", "tmp", 1), ("pod-security", "shop", 2)]
        );
        let mut text = Vec::new();
        summary.write_text(&mut text).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(text.contains("Audit summary: 4 objects"), "{text}");
        let row: Vec<&str> = text
            .lines()
            .find(|l| l.trim_start().starts_with("pod-security"))
            .unwrap()
            .split_whitespace()
            .collect();
        assert_eq!(
            row,
            ["pod-security", "1", "1", "2", "0", "0", "0"],
            "{text}"
        );
    }
}
