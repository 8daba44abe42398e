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
//! The analysis reads each rule's source text and is conservative: any use of `input` other than
//! `input.review…` / `input.images…`, any dynamic `data[…]` reference and any `import input…` count as
//! depending on the parameters, and a reference that might name a rule is assumed to. A false
//! "depends" only costs a recomputation; a rule is marked reusable only when no path to the
//! parameters exists.

use std::collections::{BTreeMap, BTreeSet};

use regorus::unstable::{Module, Rule, RuleHead};
use regorus::Engine;

use super::ast::{head_components, import_aliases};

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

/// A reference found in a rule's text, before it is resolved against the rules.
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
        // Rules, their texts and the bare names of each package first, so local names can be resolved.
        let mut texts: Vec<(String, String, &'a Module, String, BTreeSet<String>)> = Vec::new();
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
                texts.push((
                    path,
                    package.clone(),
                    module,
                    rule.span().text().to_string(),
                    function_arguments(rule),
                ));
            }
        }
        for (path, package, module, text, arguments) in &texts {
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
            for reference in references(text, &aliases) {
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
                                .filter(|rule| overlaps(rule, &target))
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
    let Rule::Spec {
        head: RuleHead::Func { args, .. },
        ..
    } = rule
    else {
        return BTreeSet::new();
    };
    let mut names = BTreeSet::new();
    for arg in args {
        let chars: Vec<char> = arg.span().text().chars().collect();
        let mut i = 0;
        while i < chars.len() {
            match chars[i] {
                '"' => {
                    i += 1;
                    while i < chars.len() && chars[i] != '"' {
                        i += if chars[i] == '\\' { 2 } else { 1 };
                    }
                    i += 1;
                }
                c if is_ident_start(c) => {
                    let start = i;
                    while i < chars.len() && is_ident_char(chars[i]) {
                        i += 1;
                    }
                    names.insert(chars[start..i].iter().collect());
                }
                _ => i += 1,
            }
        }
    }
    names
}

/// True when the rule at `rule` (`data.a.b.c`) is, contains or lies within the path `target`.
fn overlaps(rule: &str, target: &[String]) -> bool {
    let rule: Vec<&str> = rule.split('.').collect();
    rule.iter().zip(target).all(|(a, b)| *a == b.as_str())
}

/// The references of one rule's text: chains of names (`a.b.c`), with strings and comments skipped.
fn references(text: &str, aliases: &BTreeMap<String, String>) -> Vec<Reference> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let mut previous_significant = ' ';
    while i < chars.len() {
        let c = chars[i];
        match c {
            '#' => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
                continue;
            }
            '"' => {
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    i += if chars[i] == '\\' { 2 } else { 1 };
                }
                i += 1;
                previous_significant = '"';
                continue;
            }
            '`' => {
                i += 1;
                while i < chars.len() && chars[i] != '`' {
                    i += 1;
                }
                i += 1;
                previous_significant = '`';
                continue;
            }
            _ if is_ident_start(c) => {
                let mut chain = Vec::new();
                let mut j = i;
                loop {
                    let start = j;
                    while j < chars.len() && is_ident_char(chars[j]) {
                        j += 1;
                    }
                    chain.push(chars[start..j].iter().collect::<String>());
                    if j + 1 < chars.len() && chars[j] == '.' && is_ident_start(chars[j + 1]) {
                        j += 1;
                    } else {
                        break;
                    }
                }
                // A name after a `.` continues an expression (`x.input`), it does not start a reference.
                if previous_significant != '.' {
                    if let Some(r) = classify(chain, aliases) {
                        out.push(r);
                    }
                }
                previous_significant = 'a';
                i = j;
                continue;
            }
            _ => {
                if !c.is_whitespace() {
                    previous_significant = c;
                }
            }
        }
        i += 1;
    }
    out
}

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

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

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
}
