//! `regate verify-image IMAGE... [--key FILE]...`: resolves each image at its registry, finds its cosign
//! signatures (legacy `.sig` tag and sigstore-bundle referrers) and says whether it is trusted and why.
//!
//! A valid signature is not admission: the policies decide which signers a tenant or Harbor project
//! accepts. So, with the configured keys, every image is also put, as a Pod, through the webhook's own
//! evaluation path (mutate, then validate, as `check` does) and the results about the image are shown:
//! with `--tenant T` or `--namespace NS` for that one scope, which then decides the exit code; without
//! them for every configured tenant, one `admission:` line each.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use serde_json::{json, Value as Json};

use super::PolicyArgs;
use crate::admission::synthesize::{create_request, Requester};
use crate::cluster::Inventory;
use crate::images::config::NamedKey;
use crate::images::signature::PublicKey;
use crate::images::verify::{self, Verdict, Verifier};
use crate::policy::matcher::glob_match;
use crate::policy::Action;
use crate::policy::{self, Evaluator, Extras, PolicySet, RuleKind};

/// Arguments of `regate verify-image`.
#[derive(Debug, Args)]
pub struct VerifyImageArgs {
    /// Image references, as written in a pod spec.
    #[arg(value_name = "IMAGE", required = true)]
    pub images: Vec<String>,
    /// Public key (cosign.pub PEM) to verify with, repeatable; named after the file. Without `--key`,
    /// the keys of `imageVerification.keys` in the configuration are used. Admission always verifies
    /// with the configured keys, so with `--key` what admission would decide is not shown.
    #[arg(long = "key", value_name = "FILE", conflicts_with_all = ["tenant", "namespace"])]
    pub keys: Vec<PathBuf>,
    /// Answer as admission would for a Pod of this tenant (in a namespace labelled for it); the exit
    /// code is then admission's answer.
    #[arg(long, value_name = "TENANT")]
    pub tenant: Option<String>,
    /// Answer as admission would for a Pod in this namespace (its tenant from `--inventory`, or from
    /// `--tenant`); the exit code is then admission's answer.
    #[arg(short, long, value_name = "NAMESPACE")]
    pub namespace: Option<String>,
    /// Cluster state as manifests (Namespaces with their tenant labels), repeatable.
    #[arg(long, value_name = "FILE")]
    pub inventory: Vec<PathBuf>,
    /// Print JSON (one object per image) instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub policy: PolicyArgs,
}

/// Runs `regate verify-image`: with `--tenant`/`--namespace`, 0 when admission would admit every image
/// there; otherwise 0 when every image's signature verified; 1 otherwise, 2 on errors.
pub fn run(args: &VerifyImageArgs) -> anyhow::Result<i32> {
    let set = Arc::new(policy::load(&args.policy.load_options())?);
    let config = &set.config.image_verification;
    let verifier = if args.keys.is_empty() {
        Verifier::new(config, None)?
    } else {
        let keys = args
            .keys
            .iter()
            .map(|path| {
                let pem = std::fs::read_to_string(path)
                    .with_context(|| format!("{}: cannot read", path.display()))?;
                let key =
                    PublicKey::from_pem(&pem).with_context(|| format!("{}", path.display()))?;
                let name = path
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_else(|| path.display().to_string());
                Ok(NamedKey { name, key })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Verifier::with_keys(config, keys, None)?
    };
    if verifier.key_names().is_empty() {
        anyhow::bail!("no keys: pass --key FILE or configure imageVerification.keys");
    }
    // Scopes are checked before any registry is asked, so that a mistyped tenant fails at once.
    let scoped = args.tenant.is_some() || args.namespace.is_some();
    let admission = if args.keys.is_empty() {
        Some(AdmissionCheck::new(&set, args)?)
    } else {
        None
    };
    let verdicts = verify::verify_all_blocking(
        &verifier,
        &args.images,
        Instant::now() + verify::CLI_DEADLINE,
    )
    .context("starting the registry client runtime")?;
    let mut all_verified = true;
    let mut all_admitted = true;
    for image in &args.images {
        let Some(v) = verdicts.get(image) else {
            continue;
        };
        all_verified &= v.verified;
        let answers = admission
            .as_ref()
            .map(|a| a.answers(image, &verdicts))
            .unwrap_or_default();
        all_admitted &= answers.iter().all(|a| a.admitted);
        if args.json {
            let mut j = v.to_json();
            j["image"] = image.clone().into();
            j["details"] = v.details.clone().into();
            if admission.is_some() {
                j["admission"] = answers.iter().map(Answer::to_json).collect();
            }
            println!("{j}");
        } else {
            print_verdict(image, v, &answers, scoped, admission.is_none());
        }
    }
    let ok = if scoped { all_admitted } else { all_verified };
    Ok(if ok { 0 } else { 1 })
}

/// The signature status: a fact about the keys, not an admission decision.
fn signature_status(v: &Verdict) -> String {
    if v.verified {
        format!("TRUSTED (signed by {})", v.signers.join(", "))
    } else if v.registry_error {
        "UNKNOWN (registry error)".to_string()
    } else {
        "NOT TRUSTED".to_string()
    }
}

fn print_verdict(image: &str, v: &Verdict, answers: &[Answer], scoped: bool, own_keys: bool) {
    match answers {
        [only] if scoped => {
            println!("{image}: {}", only.headline());
            println!("  signature: {}", signature_status(v));
            for line in only.lines() {
                println!("  - {line}");
            }
        }
        _ => {
            println!("{image}: {}", signature_status(v));
            for a in answers {
                println!("  admission: {}", a.headline());
                for line in a.lines() {
                    println!("    - {line}");
                }
            }
            if own_keys && v.verified {
                println!(
                    "  admission: not evaluated (admission verifies with the configured keys, not --key)"
                );
            }
        }
    }
    if !v.digest.is_empty() {
        println!("  digest:  {}", v.digest);
    }
    if !v.signers.is_empty() {
        println!("  signers: {}", v.signers.join(", "));
    }
    for d in &v.details {
        println!("  - {d}");
    }
    println!("  reason:  {}", v.reason);
}

/// Where an image is judged: a tenant's namespace or a given namespace.
#[derive(Debug, Clone)]
struct Scope {
    /// `tenant "shop"`, `namespace "web"`, or `namespace "web" (tenant "shop")`.
    label: String,
    namespace: String,
    tenant: Option<String>,
}

/// What admission would decide about one image in one scope.
#[derive(Debug, Clone)]
struct Answer {
    scope: Scope,
    admitted: bool,
    /// No policy applies to a Pod there (a system namespace, say).
    exempt: bool,
    /// Admission does not verify signatures (`imageVerification.enabled` is false): the answer is
    /// given without them, as the webhook would.
    unverified: bool,
    /// Deny-level results about the image (and policy failures), as admission words them.
    refusals: Vec<String>,
    warnings: Vec<String>,
}

impl Answer {
    fn headline(&self) -> String {
        let verdict = if self.admitted { "ADMITTED" } else { "REFUSED" };
        format!("{verdict} for {}", self.scope.label)
    }

    fn lines(&self) -> Vec<String> {
        let mut lines: Vec<String> = self.refusals.clone();
        lines.extend(self.warnings.iter().map(|w| format!("warning: {w}")));
        if self.exempt {
            lines.push(format!(
                "no policy applies to a Pod in namespace {:?}",
                self.scope.namespace
            ));
        }
        if self.unverified {
            lines.push(
                "signatures are not checked at admission: imageVerification.enabled is false"
                    .to_string(),
            );
        }
        lines
    }

    fn to_json(&self) -> Json {
        json!({
            "scope": self.scope.label,
            "namespace": self.scope.namespace,
            "tenant": self.scope.tenant,
            "admitted": self.admitted,
            "exempt": self.exempt,
            "signaturesChecked": !self.unverified,
            "refusals": self.refusals,
            "warnings": self.warnings,
        })
    }
}

/// The webhook's evaluation, set up for synthetic Pods in the scopes to answer for.
struct AdmissionCheck {
    evaluator: Evaluator,
    set: Arc<PolicySet>,
    scopes: Vec<Scope>,
}

/// The container name of the synthetic Pod (messages read `container image: ...`).
const CONTAINER: &str = "image";

impl AdmissionCheck {
    fn new(set: &Arc<PolicySet>, args: &VerifyImageArgs) -> anyhow::Result<AdmissionCheck> {
        let tenancy = &set.config.tenancy;
        let label_key = tenancy
            .get("labelKey")
            .and_then(Json::as_str)
            .unwrap_or("regate.dev/tenant");
        let tenants: Vec<String> = tenancy
            .get("tenants")
            .and_then(Json::as_object)
            .map(|t| t.keys().cloned().collect())
            .unwrap_or_default();
        let mut inventory = Inventory::new();
        inventory.add_manifest_files(&args.inventory, "default")?;
        let known_tenant = |inventory: &Inventory, ns: &str| -> Option<String> {
            inventory
                .to_json()
                .pointer(&format!("/cluster/v1/Namespace/{ns}/metadata/labels"))
                .and_then(|labels| labels.get(label_key))
                .and_then(Json::as_str)
                .filter(|t| !t.is_empty())
                .map(str::to_string)
        };
        if let Some(t) = &args.tenant {
            if !tenants.contains(t) {
                anyhow::bail!(
                    "tenant {t:?} is not configured (tenancy.tenants: {})",
                    if tenants.is_empty() {
                        "none".to_string()
                    } else {
                        tenants.join(", ")
                    }
                );
            }
        }
        let scopes = match (&args.namespace, &args.tenant) {
            (Some(ns), Some(t)) => vec![Scope {
                label: format!("namespace {ns:?} (tenant {t:?})"),
                namespace: ns.clone(),
                tenant: Some(t.clone()),
            }],
            (Some(ns), None) => {
                let tenant = known_tenant(&inventory, ns);
                let label = match &tenant {
                    Some(t) => format!("namespace {ns:?} (tenant {t:?})"),
                    None => format!("namespace {ns:?} (no tenant known; see --inventory)"),
                };
                vec![Scope {
                    label,
                    namespace: ns.clone(),
                    tenant,
                }]
            }
            (None, Some(t)) => vec![tenant_scope(set, t)?],
            (None, None) if tenants.is_empty() => vec![Scope {
                label: "namespace \"default\" (no tenants are configured)".to_string(),
                namespace: "default".to_string(),
                tenant: None,
            }],
            (None, None) => tenants
                .iter()
                .map(|t| tenant_scope(set, t))
                .collect::<anyhow::Result<_>>()?,
        };
        // A scope's tenant is its namespace's label, as in the cluster.
        for scope in &scopes {
            if let Some(t) = &scope.tenant {
                let namespace = json!({"apiVersion": "v1", "kind": "Namespace",
                    "metadata": {"name": scope.namespace, "labels": {label_key: t}}});
                inventory.add(&namespace, &scope.namespace);
            }
        }
        Ok(AdmissionCheck {
            evaluator: Evaluator::new(set.clone(), inventory.to_json())?,
            set: set.clone(),
            scopes,
        })
    }

    /// Admission's answer for `image` in every scope, from the verdicts already looked up.
    fn answers(&self, image: &str, verdicts: &BTreeMap<String, Verdict>) -> Vec<Answer> {
        self.scopes
            .iter()
            .map(|scope| self.answer(image, scope, verdicts))
            .collect()
    }

    fn answer(&self, image: &str, scope: &Scope, verdicts: &BTreeMap<String, Verdict>) -> Answer {
        let pod = json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "regate-verify-image", "namespace": scope.namespace},
            "spec": {"containers": [{"name": CONTAINER, "image": image}]},
        });
        let requester = Requester {
            username: "regate-verify-image".into(),
            ..Requester::default()
        };
        let request = create_request(&pod, &scope.namespace, &requester);
        // The webhook hands the policies signature verdicts only when verification is enabled.
        let enabled = self.set.config.image_verification.enabled;
        let images = verify::verdicts_for(&verify::request_images(&request), verdicts);
        let extras = Extras {
            images: enabled.then_some(&images),
            object_only: true,
            ..Extras::default()
        };
        let timeout = Duration::from_millis(self.set.config.limits.request_timeout_ms);
        let decision = self
            .evaluator
            .admit_with(&request, extras, Instant::now() + timeout);
        // Only what concerns the image: results on its field, and policies that failed (which refuse
        // per onError whatever the object). The rest is about the made-up Pod, not the image.
        let about_image = |r: &&policy::PolicyResult| {
            r.field.as_deref() == Some("spec.containers[0].image") || r.rule == RuleKind::Error
        };
        let text = |r: &policy::PolicyResult| format!("[{}] {}", r.policy, r.message);
        let relevant: Vec<&policy::PolicyResult> =
            decision.results.iter().filter(about_image).collect();
        let refusals: Vec<String> = relevant
            .iter()
            .filter(|r| r.action == Action::Deny)
            .map(|r| text(r))
            .collect();
        let warnings = relevant
            .iter()
            .filter(|r| r.action == Action::Warn)
            .map(|r| text(r))
            .collect();
        Answer {
            scope: scope.clone(),
            admitted: refusals.is_empty(),
            exempt: decision.evaluated.is_empty(),
            unverified: !enabled,
            refusals,
            warnings,
        }
    }
}

/// The scope of tenant `t`: a namespace of its own, named so that it is no system namespace.
fn tenant_scope(set: &PolicySet, t: &str) -> anyhow::Result<Scope> {
    let namespace = format!("verify-image-tenant-{t}");
    if set
        .config
        .system_namespaces
        .iter()
        .any(|p| glob_match(p, &namespace))
    {
        anyhow::bail!(
            "namespace {namespace:?} for tenant {t:?} is a system namespace in this configuration; \
             pass --namespace with one of the tenant's namespaces and --tenant {t}"
        );
    }
    Ok(Scope {
        label: format!("tenant {t:?}"),
        namespace,
        tenant: Some(t.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{BackendChoice, LoadOptions};
    use rstest::rstest;

    const DIGEST: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

    /// The bundled library under a configuration with two tenants, each accepting its own CI key for
    /// its own Harbor project, and a shared `library` project whose images the platform key signs.
    fn set() -> Arc<PolicySet> {
        set_with(true)
    }

    fn set_with(verification: bool) -> Arc<PolicySet> {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("regate.yaml");
        std::fs::write(
            &config,
            r#"
registries: {harbor: [harbor.example.eu], sharedProjects: [library]}
tenancy:
  tenants:
    shop: {groups: [tenant:shop], harborProjects: [shop], domains: [], signingKeys: [shop-ci]}
    billing: {groups: [tenant:billing], harborProjects: [billing], domains: [], signingKeys: [billing-ci]}
imageVerification:
  enabled: ENABLED
  projectKeys: {library: [platform]}
"#
            .replace("ENABLED", &verification.to_string()),
        )
        .expect("write config");
        let set = policy::load(&LoadOptions {
            embedded: true,
            policy_dirs: vec![],
            config_files: vec![config],
            backend: BackendChoice::Auto,
        })
        .expect("bundle loads");
        Arc::new(set)
    }

    fn args(
        tenant: Option<&str>,
        namespace: Option<&str>,
        inventory: Vec<PathBuf>,
    ) -> VerifyImageArgs {
        VerifyImageArgs {
            images: vec![],
            keys: vec![],
            tenant: tenant.map(str::to_string),
            namespace: namespace.map(str::to_string),
            inventory,
            json: false,
            policy: PolicyArgs {
                policies: vec![],
                config: vec![],
                no_bundled: false,
                interpreter: false,
            },
        }
    }

    /// Verdicts as the verifier reports them: the reference, and its pinned form when it has no digest.
    fn signed(image: &str, signers: &[&str]) -> BTreeMap<String, Verdict> {
        let verdict = Verdict {
            verified: !signers.is_empty(),
            digest: DIGEST.into(),
            signers: signers.iter().map(|s| s.to_string()).collect(),
            reason: if signers.is_empty() {
                "no cosign signature found".into()
            } else {
                format!("signed by {}", signers.join(", "))
            },
            ..Verdict::default()
        };
        let mut all = BTreeMap::from([(image.to_string(), verdict.clone())]);
        if !image.contains('@') && verdict.verified {
            all.insert(format!("{image}@{DIGEST}"), verdict);
        }
        all
    }

    /// (scope label, admitted, refusals) for `image` in every scope of `args`.
    fn decide(
        args: &VerifyImageArgs,
        image: &str,
        signers: &[&str],
    ) -> Vec<(String, bool, Vec<String>)> {
        let check = AdmissionCheck::new(&set(), args).expect("scopes");
        check
            .answers(image, &signed(image, signers))
            .into_iter()
            .map(|a| (a.scope.label, a.admitted, a.refusals))
            .collect()
    }

    fn pinned(repo: &str) -> String {
        format!("harbor.example.eu/{repo}:1.0@{DIGEST}")
    }

    #[test]
    fn without_a_scope_every_tenant_is_answered_for() {
        let got = decide(&args(None, None, vec![]), &pinned("shop/app"), &["shop-ci"]);
        assert_eq!(
            got,
            [
                (
                    "tenant \"billing\"".to_string(),
                    false,
                    vec!["[trusted-images] container image: Harbor project \"shop\" is not allowed for tenant \"billing\"".to_string()]
                ),
                ("tenant \"shop\"".to_string(), true, vec![]),
            ]
        );
    }

    #[test]
    fn a_valid_signature_by_a_key_the_tenant_does_not_accept_is_refused() {
        let got = decide(
            &args(Some("shop"), None, vec![]),
            &pinned("shop/app"),
            &["billing-ci"],
        );
        assert_eq!(
            got,
            [(
                "tenant \"shop\"".to_string(),
                false,
                vec!["[trusted-images] container image: image signed by [billing-ci], but tenant \"shop\" accepts [shop-ci] for project \"shop\"".to_string()]
            )]
        );
    }

    #[rstest]
    #[case::own_key_own_project("shop/app", &["shop-ci"], true)]
    #[case::shared_project_platform_key("library/base", &["platform"], true)]
    #[case::shared_project_tenant_key("library/base", &["shop-ci"], false)]
    #[case::unsigned("shop/app", &[], false)]
    #[case::two_signers_one_accepted("shop/app", &["billing-ci", "shop-ci"], true)]
    fn a_tenant_scope_answers_as_admission(
        #[case] repo: &str,
        #[case] signers: &[&str],
        #[case] admitted: bool,
    ) {
        let got = decide(&args(Some("shop"), None, vec![]), &pinned(repo), signers);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].1, admitted, "{got:?}");
        assert_eq!(got[0].2.is_empty(), admitted, "{got:?}");
    }

    #[test]
    fn a_verified_tag_is_pinned_by_the_mutation_before_validation() {
        // requireDigest would refuse the tag alone; the trusted-images patch pins it first.
        let image = "harbor.example.eu/shop/app:1.0";
        let got = decide(&args(Some("shop"), None, vec![]), image, &["shop-ci"]);
        assert!(got[0].1, "{got:?}");
        let got = decide(&args(Some("shop"), None, vec![]), image, &[]);
        assert!(
            got[0].2.iter().any(|r| r.contains("not pinned by digest")),
            "{got:?}"
        );
    }

    #[test]
    fn a_namespace_takes_its_tenant_from_the_inventory_or_from_tenant() {
        let dir = tempfile::tempdir().expect("tempdir");
        let inventory = dir.path().join("ns.yaml");
        std::fs::write(
            &inventory,
            "apiVersion: v1\nkind: Namespace\nmetadata: {name: web, labels: {regate.dev/tenant: shop}}\n",
        )
        .expect("write");
        let image = pinned("shop/app");
        let got = decide(
            &args(None, Some("web"), vec![inventory.clone()]),
            &image,
            &["shop-ci"],
        );
        assert_eq!(
            got,
            [(
                "namespace \"web\" (tenant \"shop\")".to_string(),
                true,
                vec![]
            )]
        );
        // --tenant overrides what the inventory says.
        let got = decide(
            &args(Some("billing"), Some("web"), vec![inventory]),
            &image,
            &["shop-ci"],
        );
        assert_eq!(got[0].0, "namespace \"web\" (tenant \"billing\")");
        assert!(!got[0].1);
        // Unknown namespace: no tenant, so no project of a tenant is allowed.
        let got = decide(&args(None, Some("elsewhere"), vec![]), &image, &["shop-ci"]);
        assert_eq!(
            got[0].0,
            "namespace \"elsewhere\" (no tenant known; see --inventory)"
        );
        assert!(!got[0].1, "{got:?}");
    }

    #[test]
    fn a_system_namespace_is_exempt_as_in_admission() {
        let check =
            AdmissionCheck::new(&set(), &args(None, Some("kube-system"), vec![])).expect("scope");
        let image = "docker.io/library/nginx:latest";
        let answers = check.answers(image, &signed(image, &[]));
        assert!(answers[0].admitted && answers[0].exempt, "{answers:?}");
        assert_eq!(
            answers[0].lines(),
            ["no policy applies to a Pod in namespace \"kube-system\""]
        );
    }

    #[test]
    fn without_verification_enabled_admission_does_not_judge_signatures() {
        let set = set_with(false);
        let check = AdmissionCheck::new(&set, &args(Some("shop"), None, vec![])).expect("scope");
        let image = pinned("shop/app");
        let answers = check.answers(&image, &signed(&image, &["billing-ci"]));
        assert!(answers[0].admitted, "{answers:?}");
        assert_eq!(
            answers[0].lines(),
            ["signatures are not checked at admission: imageVerification.enabled is false"]
        );
        assert_eq!(answers[0].to_json()["signaturesChecked"], false);
    }

    #[test]
    fn an_unknown_tenant_is_an_error_naming_the_configured_ones() {
        let err = AdmissionCheck::new(&set(), &args(Some("shpo"), None, vec![]))
            .err()
            .expect("refused");
        assert_eq!(
            err.to_string(),
            "tenant \"shpo\" is not configured (tenancy.tenants: billing, shop)"
        );
    }
}
