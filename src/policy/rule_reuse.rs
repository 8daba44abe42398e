//! Which rules may be reused across the policies of one request. regate evaluates every policy of a
//! request on one compiled program, one policy after another; the only part of the input that differs
//! between two policies is `input.parameters`. A rule whose value cannot depend on `input.parameters`
//! (directly, through an import alias, or through any rule or function it refers to) computes the same
//! value for every policy, so its value is carried from one policy to the next instead of being
//! recomputed (`RegoVM::execute_entry_point_by_name_retaining` in the patched regorus).
//!
//! A second analysis finds the rules whose value is the same for every request: they read no input
//! but `input.parameters` (fixed per policy) and the data document (fixed for the life of an
//! evaluator, which is bound to one inventory snapshot), and call no builtin whose result can change
//! between calls (clock, randomness, network). The evaluator records their values per policy after a
//! first evaluation and seeds them into every later one (`request_independent_rules`).
//!
//! Two more masks come from the same graph: the rules that call no such builtin (`stable`; within one
//! evaluation a function among them returns the same result for the same arguments, so each VM
//! memoizes its calls for the length of one execution), and the rules in both earlier sets, which read
//! no input at all (a function among them is memoized across requests; `load::VmProgram::input_free`).
//!
//! The analysis reads each rule's AST (head, value, bodies, `else` values, `with` modifiers; through
//! [`super::visit`]) and is conservative: a reference is classified by its static prefix (the name and
//! the `.field`s before the first `[`), so any use of `input` other than `input.review…` /
//! `input.images…` (`input`, `input[x]`, `input["review"]`, the target of `with input as …`), any
//! dynamic `data[…]` reference (it refers to every rule below its static prefix) and any
//! `import input…` count as depending on the parameters, and a name that might name a rule of the
//! package is assumed to (only a function's own arguments shadow one). A false "depends" only costs a
//! recomputation; a rule is marked reusable only when no path to the parameters exists.

use std::collections::{BTreeMap, BTreeSet};

use regorus::unstable::{Expr, Module, Rule, RuleHead};
use regorus::Engine;

use super::ast::{head_components, head_ref, import_aliases};
use super::visit::{pattern_vars, walk_expr, walk_rule, Visitor};

/// Both analyses for the rules of one compiled program, indexed like `rule_names` (`data.pkg.rule`).
pub struct RuleReuse {
    /// True when the rule cannot read `input.parameters` (its value carries from one policy of a
    /// request to the next).
    pub across_policies: Vec<bool>,
    /// True when the rule's value cannot change between two requests evaluated for the same policy
    /// with the same data: it reads no input but `input.parameters` and calls no builtin that is not
    /// a function of its arguments.
    pub across_requests: Vec<bool>,
    /// True when the rule calls no builtin whose result can change between calls, directly or through
    /// any rule it refers to (a dynamic `data[…]` reference refers to every rule): within
    /// one evaluation (fixed input and data) a function marked so returns the same result for the same
    /// arguments.
    pub stable: Vec<bool>,
}

/// Runs both analyses over the engine's modules.
pub fn analyse(engine: &mut Engine, rule_names: &[String]) -> RuleReuse {
    let modules = engine.get_modules().clone();
    let graph = Graph::build(modules.iter().map(|m| &**m));
    let mask = |direct: &BTreeSet<String>| -> Vec<bool> {
        let dependent = graph.dependent(direct);
        rule_names
            .iter()
            .map(|name| graph.rules.contains_key(name) && !dependent.contains(name))
            .collect()
    };
    RuleReuse {
        across_policies: mask(&graph.direct),
        across_requests: mask(&graph.request),
        stable: mask(&graph.volatile),
    }
}

/// Rules by path, what each one refers to, and which read the parameters themselves.
#[derive(Default)]
struct Graph {
    /// Rule path -> referenced rule paths.
    rules: BTreeMap<String, BTreeSet<String>>,
    /// Rules that read the parameters (or anything of the input that may differ) directly.
    direct: BTreeSet<String>,
    /// Rules that read the request (any input but `input.parameters`) or call a builtin whose result
    /// can change between calls, directly.
    request: BTreeSet<String>,
    /// Rules that call a builtin whose result can change between calls, directly (a dynamic `data[…]`
    /// reference refers to every rule, so it reaches them too).
    volatile: BTreeSet<String>,
}

/// A reference found in a rule, before it is resolved against the rules.
enum Reference {
    /// Reads part of the input that differs between policies, or cannot be resolved statically.
    Parameters,
    /// Reads the request (`input.review…`, `input.images…`).
    Request,
    /// Reads `input.parameters…` and nothing else of the input.
    ParametersOnly,
    /// Calls a builtin whose result can change between calls with the same arguments.
    Volatile,
    /// `data.a.b.c`: every rule at, below or above this path.
    Data(Vec<String>),
    /// A bare name of the rule's own package.
    Local(String),
}

impl Graph {
    fn build<'a>(modules: impl Iterator<Item = &'a Module>) -> Graph {
        let mut graph = Graph::default();
        // Rules and the bare names of each package first, so local names can be resolved.
        let mut found: Vec<(String, String, &'a Module, &'a Rule, BTreeSet<String>)> = Vec::new();
        let mut locals: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
        for module in modules {
            let package = format!("data.{}", module.package.refr.span().text().trim());
            for rule in module.policy.iter() {
                let Some(components) = head_components(rule) else {
                    continue;
                };
                let path = format!("{package}.{}", components.join("."));
                graph.rules.entry(path.clone()).or_default();
                if let Some(first) = components.first() {
                    locals
                        .entry((package.clone(), first.clone()))
                        .or_default()
                        .insert(path.clone());
                }
                found.push((
                    path,
                    package.clone(),
                    module,
                    rule,
                    function_arguments(rule),
                ));
            }
        }
        for (path, package, module, rule, arguments) in &found {
            let aliases = import_aliases(module);
            let imports_input = module
                .imports
                .iter()
                .any(|i| i.refr.span().text().trim_start().starts_with("input"));
            if imports_input {
                graph.direct.insert(path.clone());
                graph.request.insert(path.clone());
            }
            let mut refs = BTreeSet::new();
            for reference in references(rule, &aliases) {
                match reference {
                    Reference::Parameters => {
                        graph.direct.insert(path.clone());
                        graph.request.insert(path.clone());
                    }
                    Reference::ParametersOnly => {
                        graph.direct.insert(path.clone());
                    }
                    Reference::Request => {
                        graph.request.insert(path.clone());
                    }
                    Reference::Volatile => {
                        graph.request.insert(path.clone());
                        graph.volatile.insert(path.clone());
                    }
                    Reference::Data(target) => {
                        refs.extend(
                            graph
                                .rules
                                .keys()
                                .filter(|candidate| overlaps(candidate, &target))
                                .cloned(),
                        );
                    }
                    // A function's argument shadows a rule of the same name inside the function.
                    Reference::Local(name) if arguments.contains(&name) => {}
                    Reference::Local(name) => {
                        if let Some(paths) = locals.get(&(package.clone(), name)) {
                            refs.extend(paths.iter().cloned());
                        }
                    }
                }
            }
            if let Some(entry) = graph.rules.get_mut(path) {
                entry.extend(refs);
            }
        }
        graph
    }

    /// Every rule from which one of `direct` can be reached.
    fn dependent(&self, direct: &BTreeSet<String>) -> BTreeSet<String> {
        let mut dependent = direct.clone();
        loop {
            let before = dependent.len();
            for (rule, refs) in &self.rules {
                if !dependent.contains(rule) && refs.iter().any(|r| dependent.contains(r)) {
                    dependent.insert(rule.clone());
                }
            }
            if dependent.len() == before {
                return dependent;
            }
        }
    }
}

/// The variables a function rule binds in its head (`f(x, [y, z])` gives x, y, z); empty for other rules.
fn function_arguments(rule: &Rule) -> BTreeSet<String> {
    match rule {
        Rule::Spec {
            head: RuleHead::Func { args, .. },
            ..
        } => args.iter().flat_map(|arg| pattern_vars(arg)).collect(),
        _ => BTreeSet::new(),
    }
}

/// True when the rule at `rule` (`data.a.b.c`) is, contains or lies within the path `target`.
fn overlaps(rule: &str, target: &[String]) -> bool {
    let rule: Vec<&str> = rule.split('.').collect();
    rule.iter().zip(target).all(|(a, b)| *a == b.as_str())
}

/// The references of one rule: every chain of names (`a.b.c`) its head, value and bodies read.
fn references(rule: &Rule, aliases: &BTreeMap<String, String>) -> Vec<Reference> {
    let mut found = References {
        aliases,
        found: Vec::new(),
    };
    found.visit_rule(rule);
    found.found
}

/// Collects [`Reference`]s: each reference (a variable, or a variable followed by `.field`s and
/// `[index]`es) is classified by its static prefix, the variable and the `.field`s up to the first
/// `[`; bracket indices are references of their own.
struct References<'a> {
    aliases: &'a BTreeMap<String, String>,
    found: Vec<Reference>,
}

impl Visitor for References<'_> {
    fn visit_rule(&mut self, rule: &Rule) {
        // The head's own name: `a.b := …` refers to the other rules named `a.…` of its package.
        if let Some(head) = head_ref(rule) {
            self.visit_expr(head);
        }
        walk_rule(self, rule);
    }

    fn visit_expr(&mut self, expr: &Expr) {
        match expr {
            Expr::Var { .. } | Expr::RefDot { .. } | Expr::RefBrack { .. } => self.reference(expr),
            _ => walk_expr(self, expr),
        }
    }
}

impl References<'_> {
    /// Records the reference `expr` (a variable, `.field`s, `[index]`es) by its static prefix, then
    /// visits its bracket indices.
    fn reference(&mut self, expr: &Expr) {
        // Collected from the outermost `.field` inwards, reversed into the chain below.
        let mut fields_after_root: Vec<&str> = Vec::new();
        let mut indices: Vec<&Expr> = Vec::new();
        let mut node = expr;
        loop {
            match node {
                Expr::RefDot { refr, field, .. } => {
                    fields_after_root.push(field.0.text());
                    node = refr;
                }
                Expr::RefBrack { refr, index, .. } => {
                    // The static prefix ends before the first `[`.
                    fields_after_root.clear();
                    indices.push(index);
                    node = refr;
                }
                Expr::Var { span, .. } => {
                    let chain = std::iter::once(span.text())
                        .chain(fields_after_root.iter().rev().copied())
                        .map(str::to_string)
                        .collect();
                    self.found.extend(classify(chain, self.aliases));
                    break;
                }
                // A reference into a value that is not a name (`f(x).y`, `[1, 2][i]`).
                other => {
                    self.visit_expr(other);
                    break;
                }
            }
        }
        for index in indices.into_iter().rev() {
            self.visit_expr(index);
        }
    }
}

/// What the chain `a.b.c` reads or refers to, after expanding a leading import alias.
fn classify(mut chain: Vec<String>, aliases: &BTreeMap<String, String>) -> Option<Reference> {
    if let Some(path) = chain.first().and_then(|first| aliases.get(first)) {
        let mut expanded: Vec<String> = path.split('.').map(str::to_string).collect();
        expanded.extend(chain.drain(1..));
        chain = expanded;
    }
    match chain.first().map(String::as_str) {
        Some("input") => {
            let same_for_every_policy =
                chain.len() >= 2 && matches!(chain[1].as_str(), "review" | "images");
            let parameters = chain.len() >= 2 && chain[1] == "parameters";
            Some(if same_for_every_policy {
                Reference::Request
            } else if parameters {
                // Only the parameters: fixed for a policy, so not request-dependent; but `input`
                // alone (`chain.len() == 1`) is both.
                Reference::ParametersOnly
            } else {
                Reference::Parameters
            })
        }
        Some(first) if VOLATILE_BUILTIN_ROOTS.contains(&first) => Some(Reference::Volatile),
        // `data` alone, or `data[x]`, refers to every rule.
        Some("data") => Some(Reference::Data(chain)),
        Some(_) => Some(Reference::Local(chain.swap_remove(0))),
        None => None,
    }
}

/// Namespaces of builtins whose result can change between two calls with the same arguments (the
/// clock, randomness, the network, the runtime), or that are side effects. A rule of the bundle
/// named like one of them is treated the same way, which only costs a recomputation.
const VOLATILE_BUILTIN_ROOTS: &[&str] = &[
    "time", "rand", "http", "uuid", "opa", "net", "io", "crypto", "trace", "print",
];

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    /// Both analyses of `rules` over a bundle of `files`.
    fn analysed(files: &[(&str, &str)], rules: &[&str]) -> RuleReuse {
        let mut engine = Engine::new();
        for (name, text) in files {
            engine
                .add_policy(name.to_string(), text.to_string())
                .expect("test module parses");
        }
        let names: Vec<String> = rules.iter().map(|r| r.to_string()).collect();
        analyse(&mut engine, &names)
    }

    const LIB: &str = r#"package lib
import rego.v1

containers contains c if some c in input.review.object.spec.containers
names := {c.name | some c in containers}
param(name, default_value) := object.get(input.parameters, name, default_value)
strict := param("strict", false)
via_strict if strict
images contains i if some i in input.images
"#;

    const POLICY: &str = r#"package p
import rego.v1
import data.lib

limit := lib.param("limit", 3)
own := {1 | lib.names["x"]} # input.parameters in a comment does not count
msg := "input.parameters in a string does not count"
deny contains m if {
    count(lib.containers) > limit
    m := msg
}
uses_own if own
dynamic := data[x]
whole_input := input
"#;

    #[rstest]
    #[case::reads_review("data.lib.containers", true)]
    #[case::through_a_rule("data.lib.names", true)]
    #[case::images("data.lib.images", true)]
    #[case::reads_parameters_through_a_function("data.lib.strict", false)]
    #[case::transitively("data.lib.via_strict", false)]
    #[case::alias_call_to_parameters("data.p.limit", false)]
    #[case::comments_and_strings_ignored("data.p.own", true)]
    #[case::string_literal("data.p.msg", true)]
    #[case::deny_uses_limit("data.p.deny", false)]
    #[case::local_reference("data.p.uses_own", true)]
    #[case::dynamic_data("data.p.dynamic", false)]
    #[case::whole_input("data.p.whole_input", false)]
    #[case::unknown_name("data.p.nothing", false)]
    fn classifies_rules(#[case] rule: &str, #[case] reusable: bool) {
        let reuse = analysed(&[("lib.rego", LIB), ("p.rego", POLICY)], &[rule]);
        assert_eq!(reuse.across_policies, vec![reusable], "{rule}");
    }

    const CONSTANTS: &str = r#"package c
import rego.v1
import data.lib

kinds := {"Pod", "Deployment"}
param(name, default_value) := v if {
    v := input.parameters[name]
    v != null
} else := default_value
limit := param("limit", 3)
limits := {"cpu": param("cpu", "1"), "memory": param("memory", "1Gi")}
from_data := data.settings.x
now := time.now_ns()
later := now + 1
random := rand.intn("x", 10)
review_kind := input.review.kind.kind
via_review if review_kind == "Pod"
images := input.images
whole := input
uses_lib_param := lib.strict
uses_lib_review := lib.names
name := input.review.name
by_name(name) := input.parameters[name]
by_name_limit := by_name("limit")
uses_rule_name := name
"#;

    /// Per rule: whether it is request-independent (`across_requests`), and whether it calls no
    /// volatile builtin (`stable`).
    #[rstest]
    #[case::literal_set("data.c.kinds", true, true)]
    #[case::parameter_through_a_function("data.c.limit", true, true)]
    #[case::parameters_in_an_object("data.c.limits", true, true)]
    #[case::data_document("data.c.from_data", true, true)]
    #[case::clock("data.c.now", false, false)]
    #[case::clock_transitively("data.c.later", false, false)]
    #[case::randomness("data.c.random", false, false)]
    #[case::review("data.c.review_kind", false, true)]
    #[case::review_transitively("data.c.via_review", false, true)]
    #[case::images("data.c.images", false, true)]
    #[case::whole_input("data.c.whole", false, true)]
    #[case::library_parameter("data.c.uses_lib_param", true, true)]
    #[case::library_review("data.c.uses_lib_review", false, true)]
    #[case::argument_shadows_a_rule("data.c.by_name_limit", true, true)]
    #[case::rule_of_that_name("data.c.uses_rule_name", false, true)]
    fn finds_request_independent_and_stable_rules(
        #[case] rule: &str,
        #[case] independent: bool,
        #[case] stable: bool,
    ) {
        let reuse = analysed(&[("lib.rego", LIB), ("c.rego", CONSTANTS)], &[rule]);
        assert_eq!(reuse.across_requests, vec![independent], "{rule}");
        assert_eq!(reuse.stable, vec![stable], "{rule}");
    }

    #[test]
    fn a_dynamic_data_reference_may_reach_a_volatile_rule() {
        let reuse = analysed(
            &[(
                "d.rego",
                "package d\nimport rego.v1\nnow := time.now_ns()\nany(x) := data.d[x]\nfixed := 1\n",
            )],
            &["data.d.any", "data.d.fixed"],
        );
        assert_eq!(reuse.stable, vec![false, true]);
    }

    #[test]
    fn importing_input_makes_every_rule_of_the_module_dependent() {
        let reuse = analysed(
            &[(
                "q.rego",
                "package q\nimport rego.v1\nimport input.parameters as params\nx := params.limit\ny := 1\n",
            )],
            &["data.q.x", "data.q.y"],
        );
        assert_eq!(reuse.across_policies, vec![false, false]);
        assert_eq!(reuse.across_requests, vec![false, false]);
    }

    const TRICKY: &str = r#"package t
import rego.v1
import data.lib as l
import data.lib

alias_call := l.param("limit", 3)
alias_review := l.names
full_path_call := data.lib.param("limit", 3)
input_variable_index(k) := input[k]
input_string_index := input["review"]
review_then_index(i) := input.review.object.spec.containers[i].parameters
data_variable_index(k) := data[k]
library_variable_index(k) := data.lib[k]
with_input if { lib.names with input as {} }
with_review if { lib.names with input.review as {} }
with_clock if { lib.names with time.now_ns as 1 }
pattern_argument([strict, y]) := [strict, y]
pattern_argument_use := pattern_argument([1, 2])
else_value := 1 if { false } else := input.parameters.x
every_value if { every c in input.review.containers { c.name != input.parameters.name } }
comprehension := {k: v | some k, v in input.parameters}
review_comprehension := [c | some c in input.review.object.spec.containers]
negated if { not input.parameters.x }
object_key := {strict: 1}
field_named_input := {"input": 1}.input
call_result_field := object.union({}, {"a": input.review.kind}).a
strict := lib.strict
a.b := input.parameters.x
a.c := 1
uuid_value := uuid.rfc4122("x")
network := http.send({"method": "get", "url": "http://x"})
printing if { print("x") }
"#;

    /// Per rule of `TRICKY`: (`across_policies`, `across_requests`, `stable`).
    #[rstest]
    #[case::alias_call_to_parameters("alias_call", false, true, true)]
    #[case::alias_to_a_review_rule("alias_review", true, false, true)]
    #[case::full_path_call("full_path_call", false, true, true)]
    #[case::input_with_a_variable_index("input_variable_index", false, false, true)]
    #[case::input_with_a_string_index_counts_as_all_input("input_string_index", false, false, true)]
    #[case::static_prefix_ends_at_the_first_bracket("review_then_index", true, false, true)]
    #[case::data_with_a_variable_index("data_variable_index", false, false, false)]
    #[case::library_with_a_variable_index("library_variable_index", false, false, true)]
    #[case::with_input_as("with_input", false, false, true)]
    #[case::with_review_as("with_review", true, false, true)]
    #[case::with_a_volatile_builtin_as("with_clock", true, false, false)]
    #[case::pattern_arguments_shadow_rules("pattern_argument_use", true, true, true)]
    #[case::else_value("else_value", false, true, true)]
    #[case::every("every_value", false, false, true)]
    #[case::comprehension("comprehension", false, true, true)]
    #[case::comprehension_over_the_review("review_comprehension", true, false, true)]
    #[case::negation("negated", false, true, true)]
    #[case::object_key_names_a_rule("object_key", false, true, true)]
    #[case::a_field_named_input_is_not_input("field_named_input", true, true, true)]
    #[case::field_of_a_call_result("call_result_field", true, false, true)]
    #[case::head_name_refers_to_rules_of_the_same_first_name("a.c", false, true, true)]
    #[case::uuid("uuid_value", true, false, false)]
    #[case::network("network", true, false, false)]
    #[case::print("printing", true, false, false)]
    fn pins_tricky_references(
        #[case] rule: &str,
        #[case] across_policies: bool,
        #[case] across_requests: bool,
        #[case] stable: bool,
    ) {
        let name = format!("data.t.{rule}");
        let reuse = analysed(&[("lib.rego", LIB), ("t.rego", TRICKY)], &[&name]);
        assert_eq!(
            (
                reuse.across_policies[0],
                reuse.across_requests[0],
                reuse.stable[0]
            ),
            (across_policies, across_requests, stable),
            "{rule}"
        );
    }
    /// The rules of the bundled library that may read the parameters (directly or through what they
    /// refer to): `package: rule rule …`, packages below `data.regate`.
    const BUNDLED_PARAMETER_READERS: &str = "
    lib.k8s: param
    policies.ingress_tls: _by_solver deny http01_solver
    policies.no_plaintext_secrets: credential_name deny env_finding exempt high_entropy
    policies.pod_security: _rorfs deny warn
    policies.resource_limits: defaults deny fill max_for max_ratio max_units patch
    policies.tenant_isolation: deny
    policies.trusted_images: deny
    policies.workload_hygiene: deny
";

    /// The rules of the bundled library that may read the request, or call a volatile builtin.
    const BUNDLED_REQUEST_READERS: &str = "
    lib.k8s: _meta_path annotations containers group groups images is_main_resource
        is_namespaced is_workload kind labels missing_images name namespace new_pod_spec obj
        old_obj old_pod_spec operation pod_spec_unchanged pod_specs spec_path sub_resource
        username
    lib.tenancy: is_platform is_tenant_identity tenant user_tenants
    policies.ingress_tls: _by_solver _from_cluster_issuer _has_issuer _in_domains
        _issuer_field _issuer_group _issuer_kind _issuer_name _parent _ref_issuer
        _ref_issuer_group _ref_issuer_kind _ref_ns _route_protocol _same_tenant
        _tenant_domains_text _tls_covers annotation_hosts deny domains foreign hosts
        http01_solver is_certificate_resource is_certificate_source is_ingress is_listenerset
        is_route obj spec tls_hosts
    policies.network_policy_required: _self _still_denies _verb affected deny is_policy_kind
    policies.no_plaintext_secrets: _type _type_hint _user cert_manager_marked deny eso_marked
        exempt helm_release_storage is_configmap is_secret material secret
    policies.pod_security: _container_contexts _csc _effective_seccomp _non_root _pod_contexts
        _psc _rorfs_violations deny warn
    policies.resource_limits: _units deny fill patch subjects units
    policies.tenant_isolation: _has_string_label _ns_new_tenant _ns_old_tenant
        _user_tenants_text _who _writes_object deny is_namespace_kind ns patch
    policies.trusted_images: _accepted _checked _has_verdict _invalid _judged _own_keys
        _parsed _previous_images _registry_errors _tenant_keys _tenant_text _trusted _verdict
        allowed_projects deny patch tenant_projects warn
    policies.workload_hygiene: _has_label _runs_to_completion deny
";

    /// The rule paths listed in a `package: rule rule …` text.
    fn listed(text: &str) -> BTreeSet<String> {
        let mut package = "";
        let mut out = BTreeSet::new();
        for word in text.split_whitespace() {
            match word.strip_suffix(':') {
                Some(name) => package = name,
                None => {
                    out.insert(format!("data.regate.{package}.{word}"));
                }
            }
        }
        out
    }

    #[test]
    fn masks_of_the_bundled_library_are_pinned() {
        let set = crate::policy::load(&Default::default()).expect("bundled library loads");
        let mut engine = match set.template.lock() {
            Ok(engine) => engine.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        let modules = engine.get_modules().clone();
        let names: Vec<String> = Graph::build(modules.iter().map(|m| &**m))
            .rules
            .into_keys()
            .collect();
        assert_eq!(names.len(), 270);
        let reuse = analyse(&mut engine, &names);
        let unmarked = |mask: &[bool]| -> BTreeSet<String> {
            names
                .iter()
                .zip(mask)
                .filter(|(_, marked)| !**marked)
                .map(|(name, _)| name.clone())
                .collect()
        };
        assert_eq!(
            unmarked(&reuse.across_policies),
            listed(BUNDLED_PARAMETER_READERS)
        );
        assert_eq!(
            unmarked(&reuse.across_requests),
            listed(BUNDLED_REQUEST_READERS)
        );
        assert_eq!(unmarked(&reuse.stable), BTreeSet::new());
    }
}
