//! Loading a policy set: layered bundle sources and configuration are parsed, every module compiled once,
//! unknown functions rejected, policies discovered under `data.regate.policies.*` with their metadata and
//! settings, and the policies regorus's VM compiler accepts compiled into one shared program (the others
//! run on the interpreter). Every error names file, line and column; all errors of a bundle are reported
//! together.

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use regorus::languages::rego::compiler::Compiler;
use regorus::utils::limits::ExecutionTimerConfig;
use regorus::{Engine, Rc, Value};
use serde_json::Value as Json;

use super::ast::{self, ModuleInfo};
use super::bundle::{BundleSources, FileKind, SourceError};
use super::config::{self, Config, OnError};
use super::enforcement::Action;
use super::import_alias;
use super::matcher::MatchSpec;
use super::metadata::{self, PolicyMetadata};

/// Package prefix under which policies live; the policy id is the next component with `_` as `-`.
pub const POLICY_PREFIX: &str = "data.regate.policies.";

/// Where the configuration view is placed in `data`.
pub const CONFIG_DATA_PATH: [&str; 2] = ["regate", "config"];

/// Where to load a policy set from.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Start from the embedded library (the default of every entry point).
    pub embedded: bool,
    /// Bundle directories layered on top, in order.
    pub policy_dirs: Vec<PathBuf>,
    /// `regate.yaml` files layered last, in order.
    pub config_files: Vec<PathBuf>,
    /// Which evaluator policies run on.
    pub backend: BackendChoice,
}

/// Which evaluator to use for policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BackendChoice {
    /// The compiled VM where a policy compiles to it, the interpreter otherwise.
    #[default]
    Auto,
    /// The interpreter for every policy (for comparisons and benchmarks).
    Interpreter,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            embedded: true,
            policy_dirs: Vec::new(),
            config_files: Vec::new(),
            backend: BackendChoice::Auto,
        }
    }
}

/// A bundle that cannot be used. `Display` lists every problem, one per line, each starting `file:line:col:`.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Sources(#[from] SourceError),
    #[error("{}", .0.join("\n"))]
    Invalid(Vec<String>),
}

/// How a policy is evaluated.
pub(crate) enum Backend {
    /// regorus's compiled VM, on the policy set's shared [`VmProgram`].
    Rvm,
    /// The tree-walking interpreter, for policies the VM compiler rejects (e.g. `with`).
    Interpreter { reason: String },
}

/// One compiled-VM program holding the `deny`, `warn` and `patch` entry points of every VM policy, so a
/// request evaluates all its policies on one VM and rules they share are computed once (see
/// [`super::rule_reuse`]).
pub(crate) struct VmProgram {
    pub(crate) program: Arc<regorus::rvm::program::Program>,
    pub(crate) compiled: regorus::CompiledPolicy,
    /// Indexed like the program's rules: true when the rule's value may be carried from one policy of a
    /// request to the next.
    pub(crate) reusable: Arc<[bool]>,
    /// All true: between entry points of one policy (same input) every computed rule is reused.
    pub(crate) every_rule: Arc<[bool]>,
    /// Indexed like the program's rules: true when the rule's value is the same for every request of
    /// one policy (the evaluator records these values once per policy and seeds them into later
    /// requests).
    pub(crate) request_independent: Arc<[bool]>,
    /// Indexed like the program's rules: true when the rule reads no input at all and calls no builtin
    /// whose result can change between calls, so a function's result depends only on its arguments
    /// and the data (each VM memoizes such calls, `RegoVM::set_function_memo`).
    pub(crate) input_free: Arc<[bool]>,
    /// Indexed like the program's rules: true when the rule calls no builtin whose result can change
    /// between calls, so a function's result within one evaluation depends only on its arguments (each
    /// VM memoizes such calls for the length of one execution).
    pub(crate) stable: Arc<[bool]>,
}

/// One loaded policy with everything the engine applies outside Rego.
pub struct Policy {
    /// `pod-security`.
    pub id: String,
    /// `data.regate.policies.pod_security`.
    pub package: String,
    /// The file holding the `# METADATA` annotation.
    pub file: String,
    pub metadata: PolicyMetadata,
    pub enforcement: Action,
    pub match_spec: MatchSpec,
    pub exclude: Vec<MatchSpec>,
    pub on_error: OnError,
    /// `input.parameters`.
    pub parameters: Json,
    pub(crate) parameters_value: Value,
    /// Rule paths for `deny`, `warn` and `patch`, where defined.
    pub deny_rule: Option<String>,
    pub warn_rule: Option<String>,
    pub patch_rule: Option<String>,
    pub(crate) backend: Backend,
}

impl Policy {
    /// `rvm` or `interpreter`.
    pub fn backend_name(&self) -> &'static str {
        match self.backend {
            Backend::Rvm => "rvm",
            Backend::Interpreter { .. } => "interpreter",
        }
    }

    /// Why the interpreter is used, when it is.
    pub fn interpreter_reason(&self) -> Option<&str> {
        match &self.backend {
            Backend::Interpreter { reason } => Some(reason),
            Backend::Rvm => None,
        }
    }
}

/// A compiled, immutable policy set. Share it behind an `Arc`; evaluate through [`super::Evaluator`].
pub struct PolicySet {
    /// Content digest of the bundle files and `--config` layers.
    pub digest: String,
    /// What loading left out without failing, for the user to read (a Gatekeeper template's CEL
    /// entry, a constraint that can never apply), as `file:line: ...`.
    pub notes: Vec<String>,
    pub config: Config,
    /// The merged configuration tree (what `data.regate.config` shows, plus `policies`).
    pub config_tree: Json,
    pub policies: Vec<Policy>,
    pub sources: BundleSources,
    pub modules: Vec<ModuleInfo>,
    /// Base `data`: configuration view and data documents (without the inventory).
    pub(crate) base_data: Json,
    /// All non-test modules with base data, warmed by one evaluation; cloned per interpreted evaluation
    /// (and by the test runner). Emptied by [`PolicySet::release_unused_template`] in a set whose
    /// policies all run on the VM.
    pub(crate) template: Mutex<Engine>,
    /// Policy id → why it cannot be judged without an admission request
    /// ([`super::request_dependence`]); read from the template's modules, so worked out before
    /// [`PolicySet::release_unused_template`] empties it.
    pub(crate) request_dependence: std::sync::OnceLock<std::collections::BTreeMap<String, String>>,
    /// The program of every policy on the compiled VM, when there is one.
    pub(crate) vm: Option<VmProgram>,
}

impl PolicySet {
    /// Replaces the interpreter template by an empty engine when no policy runs on the interpreter: the
    /// evaluator only clones the template for interpreted policies, and the template is the last holder
    /// of the engine's own evaluation state (prepared analysis, loop tables, caches). For long-lived
    /// sets that are only evaluated (`regate serve`); not for a set that is given to the test runner.
    pub fn release_unused_template(&mut self) {
        let all_vm = self
            .policies
            .iter()
            .all(|p| matches!(p.backend, Backend::Rvm));
        if all_vm {
            // The analysis reads the template's modules: keep its result (the in-server audit uses it).
            self.request_dependence();
            self.template = Mutex::new(Engine::new());
        }
    }

    /// Policy id → why it cannot be judged without an admission request (an audit reports it as
    /// `skip`); see [`super::request_dependence`].
    pub fn request_dependence(&self) -> &std::collections::BTreeMap<String, String> {
        self.request_dependence.get_or_init(|| {
            let graph = super::request_dependence::RuleGraph::of(self);
            self.policies
                .iter()
                .filter_map(|p| Some((p.id.clone(), graph.policy_dependence(p)?.reason)))
                .collect()
        })
    }
}

impl std::fmt::Debug for PolicySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicySet")
            .field("digest", &self.digest)
            .field(
                "policies",
                &self.policies.iter().map(|p| &p.id).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// Turns a regorus error (`\n--> file:line:col\n  | snippet\nerror: message`) into
/// `file:line:col: message` followed by the snippet.
pub fn format_rego_error(err: &anyhow::Error) -> String {
    let text = err.to_string();
    let mut location = None;
    let mut message = None;
    let mut snippet = Vec::new();
    for line in text.lines() {
        let trimmed = line.trim_start();
        if let Some(loc) = trimmed.strip_prefix("--> ") {
            location = Some(loc.trim().to_string());
        } else if let Some(msg) = trimmed.strip_prefix("error: ") {
            message = Some(msg.to_string());
        } else if !trimmed.is_empty() && trimmed != "|" {
            snippet.push(format!("    {line}"));
        }
    }
    match (location, message) {
        (Some(loc), Some(msg)) => {
            let mut out = format!("{loc}: {msg}");
            for s in snippet {
                out.push('\n');
                out.push_str(&s);
            }
            out
        }
        _ => text.trim().to_string(),
    }
}

/// Compiles `sources` (and extra `regate.yaml` layers given as `(name, text)`). With `include_tests`,
/// `*_test.rego` modules are loaded too (for `regate test`).
pub fn compile(
    sources: BundleSources,
    extra_config: &[(String, String)],
    include_tests: bool,
) -> Result<PolicySet, LoadError> {
    compile_with(sources, extra_config, include_tests, BackendChoice::Auto)
}

/// [`compile`] with an explicit backend choice.
pub fn compile_with(
    sources: BundleSources,
    extra_config: &[(String, String)],
    include_tests: bool,
    backend: BackendChoice,
) -> Result<PolicySet, LoadError> {
    let mut errors = Vec::new();

    // Gatekeeper templates and constraints: generated modules, and the constraints' parameters as the
    // first configuration layer (a bundle's regate.yaml may override them like any policy's).
    let gatekeeper =
        match crate::gatekeeper::translate(&gatekeeper_documents(&sources, &mut errors)) {
            Ok(t) => t,
            Err(e) => {
                errors.extend(e);
                Default::default()
            }
        };
    // Configuration layers: bundle files in layer order, then --config files.
    let mut merged = Json::Object(Default::default());
    if gatekeeper.config_layer.is_object() {
        config::merge(&mut merged, gatekeeper.config_layer.clone());
    }
    let mut config_files: Vec<_> = sources.of_kind(FileKind::Config).collect();
    config_files.sort_by_key(|f| (f.layer, f.rel.clone()));
    let mut origins = Vec::new();
    let layers = config_files
        .iter()
        .map(|f| (f.display.clone(), f.text.clone()))
        .chain(extra_config.iter().cloned());
    let mut digest_extra = String::new();
    for (name, text) in layers {
        match config::parse_layer(&name, &text) {
            Ok(layer) => config::merge(&mut merged, layer),
            Err(err) => errors.push(err.to_string()),
        }
        digest_extra.push_str(&text);
        origins.push(name);
    }
    let config = match config::finish(&merged, &origins.join(", ")) {
        Ok(c) => c,
        Err(err) => {
            errors.push(err.to_string());
            Config::default()
        }
    };
    // Signing keys are read now, so a missing or malformed key fails the load (and a hot reload keeps
    // the last good bundle) instead of denying at the first admission.
    if config.image_verification.enabled || !config.image_verification.keys.is_empty() {
        if let Err(err) = config.image_verification.load_keys() {
            errors.push(err.to_string());
        }
    }

    // Data documents, placed at their directory path like an OPA bundle.
    let mut data = Json::Object(Default::default());
    for file in sources.of_kind(FileKind::Data) {
        let parsed: Result<Json, String> = if file.rel.ends_with(".json") {
            serde_json::from_str(&file.text)
                .map_err(|e| format!("{}:{}:{}: {e}", file.display, e.line(), e.column()))
        } else {
            yaml_serde::from_str(&file.text).map_err(|e| {
                let (l, c) = e
                    .location()
                    .map(|l| (l.line(), l.column()))
                    .unwrap_or((1, 1));
                format!("{}:{l}:{c}: {e}", file.display)
            })
        };
        match parsed {
            Ok(doc) => {
                let dir: Vec<&str> = file.rel.split('/').collect();
                let mut wrapped = doc;
                for component in dir[..dir.len().saturating_sub(1)].iter().rev() {
                    let mut m = serde_json::Map::new();
                    m.insert((*component).to_string(), wrapped);
                    wrapped = Json::Object(m);
                }
                config::merge(&mut data, wrapped);
            }
            Err(e) => errors.push(e),
        }
    }
    let mut config_view = config::rego_view(&merged);
    for key in CONFIG_DATA_PATH.iter().rev() {
        let mut m = serde_json::Map::new();
        m.insert((*key).to_string(), config_view);
        config_view = Json::Object(m);
    }
    config::merge(&mut data, config_view);

    // Modules.
    let mut engine = Engine::new();
    // Tests always run strict so authors see builtin errors; production follows the configuration.
    let strict = include_tests || config.limits.strict_builtin_errors;
    engine.set_strict_builtin_errors(strict);
    let backend = if config.limits.strict_builtin_errors {
        BackendChoice::Interpreter
    } else {
        backend
    };
    for file in sources.files.values() {
        let wanted =
            file.kind == FileKind::Module || (include_tests && file.kind == FileKind::Test);
        if !wanted {
            continue;
        }
        // References through import aliases are spelled out (see import_alias for why and measurements).
        let text =
            import_alias::expand(&file.display, &file.text).unwrap_or_else(|| file.text.clone());
        if let Err(err) = engine.add_policy(file.display.clone(), text) {
            errors.push(format_rego_error(&err));
        }
    }
    for module in &gatekeeper.modules {
        engine.set_rego_v0(module.rego_v0);
        if let Err(err) = engine.add_policy(module.display.clone(), module.text.clone()) {
            errors.push(format_rego_error(&err));
        }
        engine.set_rego_v0(false);
    }
    if let Err(err) = engine.add_data(Value::from(data.clone())) {
        errors.push(format!("data documents: {err}"));
    }
    if !errors.is_empty() {
        return Err(LoadError::Invalid(errors));
    }
    let (modules, unknown) = ast::inspect(&mut engine);
    errors.extend(unknown.iter().map(ToString::to_string));

    let generated: Vec<(&str, &str)> = gatekeeper
        .modules
        .iter()
        .map(|m| (m.display.as_str(), m.text.as_str()))
        .collect();
    let mut policies = discover(
        &sources,
        &generated,
        &modules,
        &config,
        backend,
        &mut errors,
    );
    if !errors.is_empty() {
        return Err(LoadError::Invalid(errors));
    }
    let vm = compile_vm_program(&mut engine, &mut policies);

    // Warm the template: the first evaluation prepares the engine; clones then start warm. The warm-up is
    // bounded like any evaluation, so a policy that loops without input cannot hang loading.
    engine.set_execution_timer_config(ExecutionTimerConfig {
        limit: Duration::from_millis(config.limits.policy_timeout_ms),
        check_interval: NonZeroU32::MIN,
    });
    engine.set_input(Value::new_object());
    for policy in &policies {
        if let Some(rule) = policy.deny_rule.as_ref().or(policy.warn_rule.as_ref()) {
            let _ = engine.eval_rule(rule.clone());
            break;
        }
    }

    let mut digest_sources = sources.clone();
    if !digest_extra.is_empty() {
        digest_sources.files.insert(
            "\0--config".into(),
            super::bundle::SourceFile {
                display: "--config".into(),
                rel: "\0--config".into(),
                kind: FileKind::Config,
                text: digest_extra,
                layer: usize::MAX,
            },
        );
    }
    Ok(PolicySet {
        notes: gatekeeper.notes,
        digest: digest_sources.digest(),
        config,
        config_tree: merged,
        policies,
        sources,
        modules,
        base_data: data,
        template: Mutex::new(engine),
        request_dependence: std::sync::OnceLock::new(),
        vm,
    })
}

/// The documents of the bundle's manifest files that may be Gatekeeper objects. A file that mentions no
/// `gatekeeper.sh` API group is not decoded; one that does must decode.
fn gatekeeper_documents(
    sources: &BundleSources,
    errors: &mut Vec<String>,
) -> Vec<crate::gatekeeper::ManifestDocument> {
    let mut documents = Vec::new();
    for file in sources.of_kind(FileKind::Manifest) {
        if !file.text.contains("gatekeeper.sh") {
            continue;
        }
        for doc in crate::manifest::decode_stream(&file.text) {
            match doc.value.map(|v| serde_json::to_value(&v)) {
                Ok(Ok(object)) => documents.push(crate::gatekeeper::ManifestDocument {
                    file: file.display.clone(),
                    line: doc.line,
                    object,
                }),
                Ok(Err(e)) => errors.push(format!("{}:{}: {e}", file.display, doc.line)),
                Err(e) => errors.push(format!("{}:{}: {e}", file.display, doc.line)),
            }
        }
    }
    documents
}

/// `generated`: (display, text) of the modules made from Gatekeeper constraints, which carry their
/// own `# METADATA`.
fn discover(
    sources: &BundleSources,
    generated: &[(&str, &str)],
    modules: &[ModuleInfo],
    config: &Config,
    backend_choice: BackendChoice,
    errors: &mut Vec<String>,
) -> Vec<Policy> {
    // Group modules by package; a package may span several files.
    let mut packages: BTreeMap<&str, Vec<&ModuleInfo>> = BTreeMap::new();
    for module in modules {
        if module.package.starts_with(POLICY_PREFIX) && !module.file.ends_with("_test.rego") {
            packages
                .entry(module.package.as_str())
                .or_default()
                .push(module);
        }
    }
    let by_display: BTreeMap<&str, &str> = sources
        .files
        .values()
        .map(|f| (f.display.as_str(), f.text.as_str()))
        .chain(generated.iter().copied())
        .collect();
    let mut policies = Vec::new();
    for (package, files) in packages {
        let rest = &package[POLICY_PREFIX.len()..];
        if rest.contains('.') {
            continue; // helpers nested below a policy package
        }
        let is_generated = |m: &ModuleInfo| generated.iter().any(|(d, _)| *d == m.file);
        if let (Some(constraint), Some(module)) = (
            files.iter().find(|m| is_generated(m)),
            files.iter().find(|m| !is_generated(m)),
        ) {
            errors.push(format!(
                "{}: the constraint's policy id {} is already the id of the policy in {}; rename the constraint",
                constraint.file,
                rest.replace('_', "-"),
                module.file
            ));
            continue;
        }
        let has = |name: &str| files.iter().any(|m| m.rules.iter().any(|r| r.name == name));
        let rule = |name: &str| has(name).then(|| format!("{package}.{name}"));
        let (deny_rule, warn_rule, patch_rule) = (rule("deny"), rule("warn"), rule("patch"));
        if deny_rule.is_none() && warn_rule.is_none() && patch_rule.is_none() {
            continue;
        }
        let id = rest.replace('_', "-");
        let mut found = None;
        for m in &files {
            let text = by_display.get(m.file.as_str()).copied().unwrap_or_default();
            match metadata::parse_package_annotation(&m.file, text) {
                Ok(Some(md)) => found = Some((m.file.clone(), md)),
                Ok(None) => {}
                Err(err) => errors.push(err.to_string()),
            }
        }
        let Some((file, md)) = found else {
            errors.push(format!(
                "{}:1:1: policy {id} has no `# METADATA` annotation above its package line (title, severity, ... are required)",
                files[0].file
            ));
            continue;
        };
        let settings = config.policies.get(&id).cloned().unwrap_or_default();
        if settings.enabled == Some(false) {
            continue;
        }
        let mut match_spec = settings
            .match_spec
            .clone()
            .unwrap_or_else(|| md.match_spec.clone());
        if match_spec.operations.is_empty() {
            match_spec.operations = vec!["CREATE".into(), "UPDATE".into()];
        }
        let mut exclude: Vec<MatchSpec> = md
            .exclude
            .iter()
            .cloned()
            .chain(settings.exclude.clone())
            .collect();
        exclude.retain(|e| *e != MatchSpec::default());
        for e in &exclude {
            if e.label_selector.is_some() {
                errors.push(format!(
                    "{file}:{}:1: policy {id}: exclude.labelSelector is not allowed: tenants can set labels, so a label must never exempt an object; exclude by namespace name instead",
                    md.line
                ));
            }
        }
        let parameters = settings
            .parameters
            .clone()
            .unwrap_or(Json::Object(Default::default()));
        let entries: Vec<&String> = [&deny_rule, &warn_rule, &patch_rule]
            .into_iter()
            .flatten()
            .collect();
        // Provisional: `compile_vm_program` moves the policies the VM compiler rejects to the interpreter.
        let backend = match backend_choice {
            BackendChoice::Auto if entries.is_empty() => Backend::Interpreter {
                reason: "no entry points".into(),
            },
            BackendChoice::Auto => Backend::Rvm,
            BackendChoice::Interpreter => Backend::Interpreter {
                reason: "interpreter requested".into(),
            },
        };
        policies.push(Policy {
            id,
            package: package.to_string(),
            file,
            enforcement: settings
                .enforcement
                .or(config.enforcement)
                .unwrap_or(md.enforcement),
            on_error: settings.on_error.unwrap_or(config.on_error),
            metadata: md,
            match_spec,
            exclude,
            parameters_value: Value::from(parameters.clone()),
            parameters,
            deny_rule,
            warn_rule,
            patch_rule,
            backend,
        });
    }
    let known: Vec<&str> = policies.iter().map(|p| p.id.as_str()).collect();
    for id in config.policies.keys() {
        let disabled = config.policies.get(id).and_then(|s| s.enabled) == Some(false);
        if !known.contains(&id.as_str()) && !disabled {
            errors.push(format!(
                "regate.yaml: policies.{id}: no such policy (known: {})",
                known.join(", ")
            ));
        }
    }
    policies
}

fn entry_points(policy: &Policy) -> impl Iterator<Item = &str> {
    [&policy.deny_rule, &policy.warn_rule, &policy.patch_rule]
        .into_iter()
        .flatten()
        .map(String::as_str)
}

/// Compiles the entry points of every policy marked [`Backend::Rvm`] into one program. A policy the VM
/// compiler rejects on its own moves to the interpreter, with the compiler's reason; the rest are
/// compiled together.
fn compile_vm_program(engine: &mut Engine, policies: &mut [Policy]) -> Option<VmProgram> {
    // Compiling is what decides whether policies run on the VM; the reuse analysis is only done for the
    // program that is kept.
    let compile = |engine: &mut Engine, names: &[&str]| -> Result<_, String> {
        let first = names.first().ok_or("no entry points")?;
        let rule: Rc<str> = (*first).into();
        let compiled = engine
            .compile_with_entrypoint(&rule)
            .map_err(|e| format_rego_error(&e))?;
        let program = Compiler::compile_from_policy(&compiled, names)
            .map_err(|e| e.to_string().trim().to_string())?;
        Ok((program, compiled))
    };
    let keep = |engine: &mut Engine,
                (program, compiled): (
        Arc<regorus::rvm::program::Program>,
        regorus::CompiledPolicy,
    )| {
        let rule_names: Vec<String> = program.rule_infos.iter().map(|r| r.name.clone()).collect();
        let reuse = super::rule_reuse::analyse(engine, &rule_names);
        let every_rule = vec![true; rule_names.len()].into();
        let input_free = reuse
            .across_policies
            .iter()
            .zip(&reuse.across_requests)
            .map(|(policies, requests)| *policies && *requests)
            .collect();
        VmProgram {
            program,
            compiled,
            reusable: reuse.across_policies.into(),
            every_rule,
            request_independent: reuse.across_requests.into(),
            input_free,
            stable: reuse.stable.into(),
        }
    };
    let on_vm = |policies: &[Policy]| -> Vec<String> {
        policies
            .iter()
            .filter(|p| matches!(p.backend, Backend::Rvm))
            .flat_map(|p| entry_points(p).map(str::to_string).collect::<Vec<_>>())
            .collect()
    };
    let names = on_vm(policies);
    if names.is_empty() {
        return None;
    }
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    if let Ok(compiled) = compile(engine, &refs) {
        return Some(keep(engine, compiled));
    }
    // Some policy cannot run on the VM: find which on their own, then compile the others together.
    for policy in policies.iter_mut() {
        if !matches!(policy.backend, Backend::Rvm) {
            continue;
        }
        let own: Vec<&str> = entry_points(policy).collect();
        if let Err(reason) = compile(engine, &own) {
            policy.backend = Backend::Interpreter { reason };
        }
    }
    let names = on_vm(policies);
    if names.is_empty() {
        return None;
    }
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    match compile(engine, &refs) {
        Ok(compiled) => Some(keep(engine, compiled)),
        Err(reason) => {
            for policy in policies.iter_mut() {
                if matches!(policy.backend, Backend::Rvm) {
                    policy.backend = Backend::Interpreter {
                        reason: format!("compiled together with the other policies: {reason}"),
                    };
                }
            }
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_with(dir_config: &str, extra: &str) -> PolicySet {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("regate.yaml"), dir_config).expect("write");
        let mut sources = BundleSources::embedded();
        sources.add_dir(dir.path()).expect("add dir");
        compile(sources, &[("extra.yaml".into(), extra.into())], false).expect("compile")
    }

    #[test]
    fn a_policy_directory_config_merges_over_the_bundled_one() {
        let set = load_with("tenancy: {labelKey: example.com/team}\n", "{}");
        assert_eq!(set.config.tenancy["labelKey"], "example.com/team");
        // The bundled registries survive a layer that does not mention them.
        assert_eq!(set.config.registries["harbor"][0], "harbor.example.eu");
    }

    #[test]
    fn global_enforcement_replaces_metadata_but_not_per_policy_settings() {
        let set = load_with(
            "enforcement: warn\n",
            "policies: {trusted-images: {enforcement: deny}}\n",
        );
        for p in &set.policies {
            let expected = if p.id == "trusted-images" {
                Action::Deny
            } else {
                Action::Warn
            };
            assert_eq!(p.enforcement, expected, "{}", p.id);
        }
    }
}
