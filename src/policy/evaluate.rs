//! Evaluating requests: an [`Evaluator`] binds a compiled [`PolicySet`] to one cluster-state snapshot
//! (`data.inventory`) and decides requests on warm evaluators (pooled VMs, or clones of the warm
//! interpreter). Every evaluation is bounded (regorus execution timer, VM instruction limit, and a request
//! deadline checked between policies); errors, timeouts, panics and malformed rule values all become
//! results enforced per `onError`, never a silent allow.

use std::num::NonZeroU32;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use regorus::rvm::vm::RegoVM;
use regorus::utils::limits::ExecutionTimerConfig;
use regorus::{Engine, Value};
use serde_json::Value as Json;

use super::config::OnError;
use super::decision::{read_messages, Decision, PolicyResult, RuleKind};
use super::enforcement::Action;
use super::load::{Backend, Policy, PolicySet};
use super::matcher::{glob_match, NamespaceLabels};
use crate::admission::patch;
pub use crate::admission::value_json::to_value;
use crate::admission::RequestFacts;
use crate::engine_compat;
use std::collections::BTreeMap;

/// A policy set bound to one snapshot of cluster state.
pub struct Evaluator {
    set: Arc<PolicySet>,
    data: Value,
    interpreter: Mutex<Engine>,
    /// Idle VMs loaded with the policy set's shared program.
    vms: Mutex<Vec<RegoVM>>,
    /// Per policy (indexed like the set's policies): the values of its request-independent rules
    /// (`rule_reuse::RuleReuse::across_requests`), recorded after its first successful evaluation on
    /// the VM and seeded into every later one. Valid for this evaluator's life: its data (the bundle's
    /// data and one inventory snapshot) and each policy's parameters never change.
    constants: Vec<OnceLock<Vec<(usize, Value)>>>,
    /// The keys of `input` (`images`, `parameters`, `review`), made once: a string value is an
    /// allocation, and every policy of every request builds an input object.
    input_keys: [Value; 3],
    /// Namespace labels from the inventory, for `namespaceSelector`.
    namespaces: InventoryNamespaces,
    /// The inventory's Namespace objects by name, for Gatekeeper's `namespaceObject` (undefined when no
    /// policy is a Gatekeeper constraint).
    namespace_objects: Value,
}

/// The labels of the Namespaces in an inventory snapshot (`cluster.v1.Namespace`).
#[derive(Default)]
struct InventoryNamespaces(std::collections::HashMap<String, BTreeMap<String, String>>);

impl InventoryNamespaces {
    fn from_inventory(inventory: &Json) -> InventoryNamespaces {
        let namespaces = inventory
            .pointer("/cluster/v1/Namespace")
            .and_then(Json::as_object);
        InventoryNamespaces(
            namespaces
                .into_iter()
                .flatten()
                .map(|(name, ns)| {
                    let labels = ns
                        .pointer("/metadata/labels")
                        .and_then(Json::as_object)
                        .into_iter()
                        .flatten()
                        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                        .collect();
                    (name.clone(), labels)
                })
                .collect(),
        )
    }
}

impl NamespaceLabels for InventoryNamespaces {
    fn labels_of(&self, namespace: &str) -> Option<BTreeMap<String, String>> {
        self.0.get(namespace).cloned()
    }
}

/// The VM of one pass over a request's policies (validate, or mutate) and what it last ran.
#[derive(Default)]
struct Pass {
    vm: Option<RegoVM>,
    /// The policy whose entry point the VM ran last, when it succeeded.
    last_policy: Option<usize>,
    /// Whether the policy before saw Gatekeeper's review (rule values computed on one review are not
    /// carried to a policy that sees the other).
    last_gatekeeper: bool,
}

/// The request as a regorus value, converted on first use (requests no policy applies to are never
/// converted) and shared by every policy of the request.
struct LazyValue<'a> {
    /// The request as JSON, converted on first use; `None` when the value was given.
    json: Option<&'a Json>,
    value: Option<Value>,
    /// Image signature verdicts (`input.images`), when the entry point verified images.
    images: Option<Value>,
    skip_inventory: bool,
    /// See [`Extras::object_only`].
    object_only: bool,
    /// The review as Gatekeeper shapes it, made on first use by a Gatekeeper constraint.
    gatekeeper: Option<Value>,
}

/// What an entry point adds to the evaluation of a request besides the request itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct Extras<'a> {
    /// Image signature verdicts, given to policies as `input.images` (see [`crate::images::verify`]);
    /// for [`Evaluator::admit_with`], verdicts for the pinned references too.
    pub images: Option<&'a Json>,
    /// Leave out every `requiresInventory` policy (cluster state cannot be used; the caller adds their
    /// failure-mode results).
    pub skip_inventory: bool,
    /// The request was synthesized for an object that came from no admission request (`regate check`,
    /// an audit, a gator case): Gatekeeper constraints then see the review Gatekeeper's audit and gator
    /// give them, of the object alone (no operation, no user; see `object_review`).
    pub object_only: bool,
}

impl<'a> LazyValue<'a> {
    fn new(json: &'a Json, extras: Extras) -> LazyValue<'a> {
        LazyValue {
            json: Some(json),
            value: None,
            images: extras.images.map(to_value),
            skip_inventory: extras.skip_inventory,
            object_only: extras.object_only,
            gatekeeper: None,
        }
    }

    /// For a request already held as the engine's value.
    fn from_value(value: &Value, extras: Extras) -> LazyValue<'static> {
        LazyValue {
            json: None,
            value: Some(value.clone()),
            images: extras.images.map(to_value),
            skip_inventory: extras.skip_inventory,
            object_only: extras.object_only,
            gatekeeper: None,
        }
    }

    fn get(&mut self) -> &Value {
        let json = self.json;
        self.value
            .get_or_insert_with(|| json.map_or(Value::Null, to_value))
    }

    /// The review as Gatekeeper gives it to templates: on DELETE, `object` is the old object; for an
    /// object in a namespace, `namespaceObject` is that Namespace when cluster state has it; for an
    /// object that came from no admission request, the review of the object alone (`object_review`).
    /// `namespaces` maps Namespace names to objects.
    fn get_gatekeeper(&mut self, namespaces: &Value) -> &Value {
        if self.gatekeeper.is_none() {
            let object_only = self.object_only;
            let mut review = self.get().clone();
            if object_only {
                review = object_review(&review);
            }
            let delete = review["operation"] == Value::from("DELETE");
            let old_object = review["oldObject"].clone();
            let namespace = &namespaces[&review["namespace"]];
            let namespace = (*namespace != Value::Undefined).then(|| namespace.clone());
            if let Ok(fields) = review.as_object_mut() {
                if delete && old_object != Value::Undefined && old_object != Value::Null {
                    fields.insert(Value::from("object"), old_object);
                }
                if let Some(namespace) = namespace {
                    fields.insert(Value::from("namespaceObject"), namespace);
                }
            }
            self.gatekeeper = Some(review);
        }
        self.gatekeeper.as_ref().unwrap_or(&Value::Undefined)
    }
}

/// The review Gatekeeper's audit (and gator) build for an object that came from no admission request:
/// the AdmissionRequest Go encodes for an object alone, so `kind`, `object`, `name` and `namespace`
/// (when set), and the fields Go writes even when empty: `uid` and `operation` are `""`, `userInfo` is
/// `{}`, `resource` is the empty group/version/resource, `oldObject` and `options` are `null`.
fn object_review(request: &Value) -> Value {
    let empty = || Value::from("");
    let mut entries = vec![
        (Value::from("uid"), empty()),
        (Value::from("kind"), request["kind"].clone()),
        (
            Value::from("resource"),
            Value::from(engine_compat::object_from_entries(
                ["group", "version", "resource"]
                    .into_iter()
                    .map(|k| (Value::from(k), empty()))
                    .collect(),
            )),
        ),
        (Value::from("operation"), empty()),
        (Value::from("userInfo"), Value::new_object()),
        (Value::from("object"), request["object"].clone()),
        (Value::from("oldObject"), Value::Null),
        (Value::from("options"), Value::Null),
    ];
    for key in ["name", "namespace"] {
        if matches!(&request[key], Value::String(s) if !s.is_empty()) {
            entries.push((Value::from(key), request[key].clone()));
        }
    }
    Value::from(engine_compat::object_from_entries(entries))
}

/// How many units of work the evaluators do between two looks at the clock.
const TIMER_CHECK_INTERVAL: u32 = 512;

/// Why one policy could not produce a value.
#[derive(Debug, Clone)]
struct EvalFailure(String);

impl Evaluator {
    /// Binds `set` to `inventory` (Gatekeeper layout: `{"cluster": ..., "namespace": ...}`).
    pub fn new(set: Arc<PolicySet>, inventory: Json) -> anyhow::Result<Evaluator> {
        let needs_namespaces = set.policies.iter().any(|p| {
            p.match_spec.namespace_selector.is_some()
                || p.exclude.iter().any(|e| e.namespace_selector.is_some())
        });
        let namespace_objects = if set.policies.iter().any(|p| p.metadata.gatekeeper) {
            inventory
                .pointer("/cluster/v1/Namespace")
                .map_or(Value::Undefined, to_value)
        } else {
            Value::Undefined
        };
        // Only a set with a namespaceSelector reads them.
        let namespaces = if needs_namespaces {
            InventoryNamespaces::from_inventory(&inventory)
        } else {
            InventoryNamespaces::default()
        };
        let mut data = set.base_data.clone();
        if let Json::Object(m) = &mut data {
            m.insert("inventory".to_string(), inventory.clone());
        }
        // The interpreter (a clone of the template with the inventory, warmed once) only exists when some
        // policy runs on it: warming prepares a second copy of the whole bundle's analysis, several MiB
        // that an all-VM bundle never uses.
        let needs_interpreter = set
            .policies
            .iter()
            .any(|p| matches!(p.backend, Backend::Interpreter { .. }));
        let engine = if needs_interpreter {
            let mut engine = set
                .template
                .lock()
                .map_err(|_| anyhow::anyhow!("policy template lock poisoned"))?
                .clone();
            let mut inv = serde_json::Map::new();
            inv.insert("inventory".to_string(), inventory);
            engine.add_data(to_value(&Json::Object(inv)))?;
            // Adding data un-prepares the engine; prepare it again once so every clone starts warm.
            engine.set_input(Value::new_object());
            engine.set_execution_timer_config(ExecutionTimerConfig {
                limit: Duration::from_millis(set.config.limits.policy_timeout_ms),
                check_interval: NonZeroU32::new(TIMER_CHECK_INTERVAL).unwrap_or(NonZeroU32::MIN),
            });
            if let Some(rule) = set
                .policies
                .iter()
                .find_map(|p| p.deny_rule.as_ref().or(p.warn_rule.as_ref()))
            {
                let _ = engine.eval_rule(rule.clone());
            }
            engine
        } else {
            Engine::new()
        };
        Ok(Evaluator {
            data: to_value(&data),
            interpreter: Mutex::new(engine),
            vms: Mutex::new(Vec::new()),
            constants: set.policies.iter().map(|_| OnceLock::new()).collect(),
            input_keys: ["images", "parameters", "review"].map(Value::from),
            namespaces,
            namespace_objects,
            set,
        })
    }

    /// The policy set this evaluator decides with.
    pub fn policy_set(&self) -> &Arc<PolicySet> {
        &self.set
    }

    /// The `data` document every policy sees: the bundle's data documents, the configuration view
    /// (`data.regate.config`) and the inventory (`data.inventory`).
    pub fn data(&self) -> &Value {
        &self.data
    }

    /// True when `policy` applies to the request (match, exclusions, system namespaces).
    pub fn applies(&self, policy: &Policy, facts: &RequestFacts) -> bool {
        if let Some(ns) = facts.effective_namespace() {
            // A Namespace object is never exempt by its own name, whatever the operation or subresource:
            // the exemption covers what lives *in* a system namespace, while who may create, relabel
            // (also through namespaces/status and namespaces/finalize, whose updates keep label changes)
            // or delete the namespace itself is what tenant-isolation judges. Otherwise a tenant could
            // delete `cert-manager`, or anyone allowed to create namespaces could create an absent system
            // namespace (say `velero`) and be exempt from every policy inside it.
            let namespace_object = facts.kind == "Namespace" && facts.group.is_empty();
            let system = self
                .set
                .config
                .system_namespaces
                .iter()
                .any(|p| glob_match(p, ns));
            if system && !namespace_object {
                return false;
            }
        }
        policy.match_spec.matches_in(facts, &self.namespaces)
            && !policy
                .exclude
                .iter()
                .any(|e| e.matches_in(facts, &self.namespaces))
    }

    /// The validating decision for a raw AdmissionRequest: `deny` and `warn` rules of every applicable
    /// policy. `deadline` bounds the whole request.
    pub fn validate(&self, request: &Json, deadline: Instant) -> Decision {
        self.validate_with(request, Extras::default(), deadline)
    }

    /// [`Evaluator::validate`] with [`Extras`].
    pub fn validate_with(&self, request: &Json, extras: Extras, deadline: Instant) -> Decision {
        let facts = RequestFacts::from_request(request);
        self.validate_lazy(&facts, &mut LazyValue::new(request, extras), deadline)
    }

    /// [`Evaluator::validate_with`] for a request already held as the engine's value (the server reads
    /// bodies straight into it, `crate::admission::value_json`); decides as `validate_with` does for the
    /// same request read as JSON.
    pub fn validate_value(&self, request: &Value, extras: Extras, deadline: Instant) -> Decision {
        let facts = RequestFacts::from_value(request);
        self.validate_lazy(
            &facts,
            &mut LazyValue::from_value(request, extras),
            deadline,
        )
    }

    fn validate_lazy(
        &self,
        facts: &RequestFacts,
        review: &mut LazyValue,
        deadline: Instant,
    ) -> Decision {
        let mut decision = Decision::default();
        let mut pass = Pass::default();
        for (index, policy) in self.set.policies.iter().enumerate() {
            if (policy.deny_rule.is_none() && policy.warn_rule.is_none())
                || (review.skip_inventory && policy.metadata.requires_inventory)
                || !self.applies(policy, facts)
            {
                continue;
            }
            decision.evaluated.push(policy.id.clone());
            // The policy's entry points, on the stack (this runs for every policy of every request).
            let mut rules = [(RuleKind::Deny, ""); 2];
            let mut paths = [""; 2];
            let mut n = 0;
            for (kind, rule) in [
                (RuleKind::Deny, &policy.deny_rule),
                (RuleKind::Warn, &policy.warn_rule),
            ] {
                if let Some(rule) = rule.as_deref() {
                    rules[n] = (kind, rule);
                    paths[n] = rule;
                    n += 1;
                }
            }
            let (rules, paths) = (&rules[..n], &paths[..n]);
            match self.evaluate(index, policy, review, paths, deadline, &mut pass) {
                Ok(values) => {
                    for ((kind, _), value) in rules.iter().zip(values) {
                        match read_messages(&value, &policy.metadata.title) {
                            Ok(messages) => {
                                for m in messages {
                                    decision
                                        .results
                                        .push(result(policy, *kind, m.message, m.field));
                                }
                            }
                            Err(err) => decision.results.push(error_result(policy, &err)),
                        }
                    }
                }
                Err(EvalFailure(err)) => {
                    decision.deadline_exceeded |= Instant::now() >= deadline;
                    decision.results.push(error_result(policy, &err));
                }
            }
        }
        self.finish(pass);
        decision
    }

    /// The mutating decision: `patch` rules of every applicable policy, normalised against the object.
    /// Only CREATE and UPDATE with an object are mutated. Errors are results enforced per `onError`.
    pub fn mutate(&self, request: &Json, deadline: Instant) -> (Decision, Option<Json>) {
        self.mutate_with(request, Extras::default(), deadline)
    }

    /// [`Evaluator::mutate`] with [`Extras`].
    pub fn mutate_with(
        &self,
        request: &Json,
        extras: Extras,
        deadline: Instant,
    ) -> (Decision, Option<Json>) {
        self.mutate_lazy(request, &mut LazyValue::new(request, extras), deadline)
    }

    fn mutate_lazy(
        &self,
        request: &Json,
        review: &mut LazyValue,
        deadline: Instant,
    ) -> (Decision, Option<Json>) {
        let facts = RequestFacts::from_request(request);
        let mut decision = Decision::default();
        let Some(object) = request.get("object").filter(|o| o.is_object()) else {
            return (decision, None);
        };
        if !matches!(facts.operation, "CREATE" | "UPDATE") {
            return (decision, None);
        }
        let mut ops = Vec::new();
        let mut owners = Vec::new();
        let mut pass = Pass::default();
        for (index, policy) in self.set.policies.iter().enumerate() {
            let Some(rule) = policy.patch_rule.as_deref() else {
                continue;
            };
            if (review.skip_inventory && policy.metadata.requires_inventory)
                || !self.applies(policy, &facts)
            {
                continue;
            }
            decision.evaluated.push(policy.id.clone());
            match self.evaluate(index, policy, review, &[rule], deadline, &mut pass) {
                Ok(values) => match values.into_iter().next().map_or(Json::Null, to_json) {
                    Json::Null => {}
                    Json::Array(items) => {
                        for item in items {
                            owners.push(index);
                            ops.push(item);
                        }
                    }
                    other => decision.results.push(error_result(
                        policy,
                        &format!("patch must be a set of JSON Patch operations, got {other}"),
                    )),
                },
                Err(EvalFailure(err)) => {
                    decision.deadline_exceeded |= Instant::now() >= deadline;
                    decision.results.push(error_result(policy, &err));
                }
            }
        }
        self.finish(pass);
        // Normalise one operation at a time so a bad operation is attributed to its policy.
        let mut patched = object.clone();
        for (op, owner) in ops.iter().zip(owners) {
            let (normalized, errors) = patch::normalize(&patched, std::slice::from_ref(op));
            patched = normalized.patched;
            decision
                .patch_owners
                .extend(std::iter::repeat_n(owner, normalized.ops.len()));
            decision.patch.extend(normalized.ops);
            for err in errors {
                let policy = &self.set.policies[owner];
                decision.patch_errors.push(format!("{}: {err}", policy.id));
                decision
                    .results
                    .push(error_result(policy, &err.to_string()));
            }
        }
        let patched = (!decision.patch.is_empty()).then_some(patched);
        (decision, patched)
    }

    /// What `regate check` does for one object, like the API server's admission chain: mutate, then
    /// validate the mutated object. Mutation errors and validation results are combined.
    pub fn admit(&self, request: &Json, deadline: Instant) -> Decision {
        self.admit_with(request, Extras::default(), deadline)
    }

    /// [`Evaluator::admit`] with [`Extras`].
    pub fn admit_with(&self, request: &Json, extras: Extras, deadline: Instant) -> Decision {
        let mut review = LazyValue::new(request, extras);
        let (mut mutation, patched) = self.mutate_lazy(request, &mut review, deadline);
        let validation = match patched {
            Some(object) => {
                let mut mutated = request.clone();
                mutated["object"] = object;
                self.validate_with(&mutated, extras, deadline)
            }
            None => {
                let facts = RequestFacts::from_request(request);
                self.validate_lazy(&facts, &mut review, deadline)
            }
        };
        mutation.results.extend(validation.results);
        mutation.deadline_exceeded |= validation.deadline_exceeded;
        for id in validation.evaluated {
            if !mutation.evaluated.contains(&id) {
                mutation.evaluated.push(id);
            }
        }
        mutation
    }

    /// Returns the pass's VM to the pool.
    fn finish(&self, pass: Pass) {
        if let Some(mut vm) = pass.vm {
            vm.set_input(Value::Undefined);
            if let Ok(mut idle) = self.vms.lock() {
                idle.push(vm);
            }
        }
    }

    /// A VM for `pass`: the one it already holds, an idle one, or a new one.
    fn checkout(&self, pass: &mut Pass) -> Result<RegoVM, EvalFailure> {
        if let Some(vm) = pass.vm.take() {
            return Ok(vm);
        }
        pass.last_policy = None;
        if let Some(vm) = self.vms.lock().ok().and_then(|mut idle| idle.pop()) {
            return Ok(vm);
        }
        let Some(shared) = &self.set.vm else {
            return Err(EvalFailure("no compiled program for this policy".into()));
        };
        let limits = &self.set.config.limits;
        let mut vm = RegoVM::new_with_policy(shared.compiled.clone());
        vm.load_program(shared.program.clone());
        vm.set_data(self.data.clone())
            .map_err(|e| EvalFailure(e.to_string()))?;
        engine_compat::set_function_memo(&mut vm, &shared.input_free, &shared.stable);
        vm.set_max_instructions(limits.max_instructions);
        vm.set_strict_builtin_errors(limits.strict_builtin_errors);
        Ok(vm)
    }

    fn evaluate(
        &self,
        index: usize,
        policy: &Policy,
        review: &mut LazyValue,
        rules: &[&str],
        deadline: Instant,
        pass: &mut Pass,
    ) -> Result<Vec<Value>, EvalFailure> {
        let now = Instant::now();
        if now >= deadline {
            return Err(EvalFailure(
                "request deadline exceeded before this policy ran".into(),
            ));
        }
        let limits = &self.set.config.limits;
        let budget = Duration::from_millis(limits.policy_timeout_ms).min(deadline - now);
        let timer = ExecutionTimerConfig {
            limit: budget,
            check_interval: NonZeroU32::new(TIMER_CHECK_INTERVAL).unwrap_or(NonZeroU32::MIN),
        };
        // Exactly as long as needed: the object keeps the vector's buffer, a spare slot would be a
        // reallocation to shrink it.
        let [images_key, parameters_key, review_key] = &self.input_keys;
        let mut entries = Vec::with_capacity(2 + usize::from(review.images.is_some()));
        if let Some(images) = &review.images {
            entries.push((images_key.clone(), images.clone()));
        }
        entries.push((parameters_key.clone(), policy.parameters_value.clone()));
        let gatekeeper = policy.metadata.gatekeeper;
        if gatekeeper != pass.last_gatekeeper {
            pass.last_policy = None;
            pass.last_gatekeeper = gatekeeper;
        }
        let review_value = if gatekeeper {
            review.get_gatekeeper(&self.namespace_objects).clone()
        } else {
            review.get().clone()
        };
        entries.push((review_key.clone(), review_value));
        let input = Value::from(engine_compat::object_from_entries(entries));
        let started = Instant::now();
        let result = match &policy.backend {
            Backend::Rvm => {
                let mut vm = self.checkout(pass)?;
                let previous = pass.last_policy.take();
                let shared = self.set.vm.as_ref();
                let constants = self.constants.get(index);
                let seeds: &[(usize, Value)] =
                    constants.and_then(OnceLock::get).map_or(&[], Vec::as_slice);
                let outcome = catch_unwind(AssertUnwindSafe(|| {
                    vm.set_execution_timer_config(Some(timer));
                    vm.set_input(input);
                    let mut out = Vec::with_capacity(rules.len());
                    for (n, rule) in rules.iter().enumerate() {
                        // The policy's first entry point starts with its request-independent values
                        // from earlier requests, and reuses what the previous policy computed that
                        // cannot depend on the parameters; its later entry points see the same input,
                        // so they reuse every computed rule.
                        let value = match (n, shared) {
                            (_, None) => vm
                                .execute_entry_point_by_name(rule)
                                .map_err(|e| e.to_string()),
                            (0, Some(shared)) => engine_compat::execute_seeded(
                                &mut vm,
                                rule,
                                previous.map(|_| &*shared.reusable),
                                seeds,
                            ),
                            (_, Some(shared)) => {
                                engine_compat::execute_retaining(&mut vm, rule, &shared.every_rule)
                            }
                        }
                        .map_err(EvalFailure)?;
                        out.push(value);
                    }
                    if let (Some(shared), Some(slot)) = (shared, constants) {
                        if slot.get().is_none() {
                            let _ = slot.set(engine_compat::computed_rule_values(
                                &vm,
                                &shared.request_independent,
                            ));
                        }
                    }
                    Ok(out)
                }));
                match outcome {
                    Ok(Ok(out)) => {
                        pass.vm = Some(vm);
                        pass.last_policy = Some(index);
                        Ok(out)
                    }
                    // A failed VM is not reused (its state is reset, but it is not worth the doubt).
                    Ok(Err(err)) => Err(err),
                    Err(_) => Err(EvalFailure("evaluation panicked".into())),
                }
            }
            Backend::Interpreter { .. } => catch_unwind(AssertUnwindSafe(|| {
                let mut engine = self
                    .interpreter
                    .lock()
                    .map_err(|_| EvalFailure("interpreter lock poisoned".into()))?
                    .clone();
                engine.set_execution_timer_config(timer);
                engine.set_input(input);
                let mut out = Vec::with_capacity(rules.len());
                for rule in rules {
                    let value = engine
                        .eval_rule(rule.to_string())
                        .map_err(|e| EvalFailure(super::load::format_rego_error(&e)))?;
                    out.push(value);
                }
                Ok(out)
            }))
            .unwrap_or_else(|_| Err(EvalFailure("evaluation panicked".into()))),
        };
        // The own deadline: a result that arrives after the budget is not trusted to be complete.
        if result.is_ok() && started.elapsed() > budget + Duration::from_millis(50) {
            return Err(EvalFailure(format!(
                "evaluation took {:?}, over its {:?} budget",
                started.elapsed(),
                budget
            )));
        }
        result
    }
}

fn to_json(value: Value) -> Json {
    match value {
        Value::Undefined => Json::Null,
        other => serde_json::to_value(&other).unwrap_or(Json::Null),
    }
}

fn result(policy: &Policy, rule: RuleKind, message: String, field: Option<String>) -> PolicyResult {
    let action = match (rule, policy.enforcement) {
        (_, Action::Dryrun) => Action::Dryrun,
        (RuleKind::Warn, _) => Action::Warn,
        (_, enforcement) => enforcement,
    };
    PolicyResult {
        policy: policy.id.clone(),
        title: policy.metadata.title.clone(),
        severity: policy.metadata.severity,
        action,
        rule,
        message,
        field,
    }
}

fn error_result(policy: &Policy, err: &str) -> PolicyResult {
    let first_line = err.lines().next().unwrap_or(err);
    failure_result(
        policy,
        policy.on_error == OnError::Deny,
        format!("policy error: {first_line}"),
    )
}

/// The result for a policy that could not give a clean answer: denies only when the policy is enforced
/// as `deny` and the failure mode is closed; a `warn` policy warns and a `dryrun` policy only records.
pub fn failure_result(policy: &Policy, fail_closed: bool, message: String) -> PolicyResult {
    let action = match policy.enforcement {
        Action::Dryrun => Action::Dryrun,
        Action::Deny if fail_closed => Action::Deny,
        _ => Action::Warn,
    };
    PolicyResult {
        policy: policy.id.clone(),
        title: policy.metadata.title.clone(),
        severity: policy.metadata.severity,
        action,
        rule: RuleKind::Error,
        message,
        field: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{load, BackendChoice, LoadOptions};
    use regorus::value::Object;
    use rstest::rstest;

    /// `testdata/bundles/shared-rules`: `lenient` (VM), `mixed` (interpreter: `with`) and `strict` (VM)
    /// share library rules; `shared.containers` is carried from one policy to the next, `shared.limit`
    /// and `shared.too_many` read each policy's own parameters and must not be.
    fn evaluator(backend: BackendChoice) -> Evaluator {
        bundle_evaluator("shared-rules", backend)
    }

    /// An evaluator of `testdata/bundles/<name>` alone, with an empty inventory.
    fn bundle_evaluator(name: &str, backend: BackendChoice) -> Evaluator {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/bundles");
        let set = load(&LoadOptions {
            embedded: false,
            policy_dirs: vec![dir.join(name)],
            backend,
            ..Default::default()
        })
        .unwrap_or_else(|e| panic!("the {name} bundle loads: {e:#}"));
        Evaluator::new(
            Arc::new(set),
            serde_json::json!({"cluster": {}, "namespace": {}}),
        )
        .expect("evaluator")
    }

    fn pod(containers: usize) -> Json {
        let containers: Vec<Json> = (0..containers)
            .map(|i| serde_json::json!({"name": format!("c{i}"), "image": "x"}))
            .collect();
        serde_json::json!({
            "uid": "u", "operation": "CREATE", "namespace": "shop",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "userInfo": {"username": "alice"},
            "object": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": containers}},
        })
    }

    /// `to_value` builds objects straight from serde_json's ordered map; the result must be the value
    /// regorus's own JSON reader makes, key lookups included.
    #[rstest]
    #[case::nested(r#"{"b": {"y": [1, 2.5, "s"], "x": null}, "a": true, "c": {}}"#)]
    #[case::byte_order_keys(r#"{"Z": 1, "a": 2, "_": 3, "ä": 4, "10": 5, "9": 6, "": 7}"#)]
    #[case::numbers(r#"{"max": 18446744073709551615, "min": -9223372036854775808, "f": 1e300}"#)]
    #[case::array_of_objects(r#"[{"k": "v"}, {}, [], {"n": {"m": "deep"}}]"#)]
    #[case::scalar(r#""just a string""#)]
    fn to_value_matches_regorus_json_reading(#[case] text: &str) {
        let json: Json = serde_json::from_str(text).expect("test JSON");
        let ours = to_value(&json);
        let theirs = Value::from_json_str(text).expect("regorus reads the JSON");
        assert_eq!(ours, theirs);
        assert_eq!(to_json(ours.clone()), json, "round trip");
        if let (Json::Object(map), Ok(object)) = (&json, ours.as_object()) {
            for (key, value) in map {
                assert_eq!(
                    object.get(&Value::from(key.as_str())),
                    Some(&to_value(value))
                );
            }
            assert_eq!(object.get(&Value::from("absent")), None);
        }
    }

    /// Entries given out of order, or with a key twice, are sorted, and the last value of a repeated key
    /// is kept, as inserting them one by one keeps it.
    #[test]
    fn objects_from_unsorted_entries_keep_the_last_value_of_a_key() {
        let entries = vec![
            (Value::from("b"), Value::from(1_i64)),
            (Value::from("a"), Value::from(2_i64)),
            (Value::from("b"), Value::from(3_i64)),
            (Value::from("c"), Value::from(4_i64)),
            (Value::from("a"), Value::from(5_i64)),
        ];
        let mut inserted = Object::new();
        for (k, v) in entries.clone() {
            inserted.insert(k, v);
        }
        let built = engine_compat::object_from_entries(entries);
        assert_eq!(built.len(), 3);
        assert_eq!(built.get(&Value::from("a")), Some(&Value::from(5_i64)));
        assert_eq!(built.get(&Value::from("b")), Some(&Value::from(3_i64)));
        assert_eq!(Value::from(built), Value::from(inserted));
        assert_eq!(engine_compat::object_from_entries(Vec::new()).len(), 0);
    }

    fn messages(decision: &Decision) -> Vec<String> {
        let mut out: Vec<String> = decision
            .results
            .iter()
            .map(|r| format!("{:?} {}", r.rule, r.message))
            .collect();
        out.sort();
        out
    }

    #[rstest]
    #[case::one_container(1, vec!["Deny mixed: over its own limit", "Warn lenient: limit is 5", "Warn strict: limit is 1"])]
    #[case::no_containers(0, vec!["Warn lenient: limit is 5", "Warn strict: limit is 1"])]
    #[case::two_containers(2, vec!["Deny mixed: over its own limit", "Deny strict: 2 containers, at most 1", "Warn lenient: limit is 5", "Warn strict: limit is 1"])]
    #[case::six_containers(6, vec!["Deny lenient: 6 containers, at most 5", "Deny mixed: over its own limit", "Deny strict: 6 containers, at most 1", "Warn lenient: limit is 5", "Warn strict: limit is 1"])]
    fn rules_reading_parameters_are_never_carried_to_the_next_policy(
        #[case] containers: usize,
        #[case] expected: Vec<&str>,
    ) {
        let vm = evaluator(BackendChoice::Auto);
        assert!(
            vm.set.vm.is_some(),
            "lenient and strict run on the shared VM program"
        );
        let request = pod(containers);
        let deadline = Instant::now() + Duration::from_secs(5);
        // Twice: the second request runs on the pooled VM of the first.
        for _ in 0..2 {
            assert_eq!(messages(&vm.validate(&request, deadline)), expected);
        }
        // The interpreter, which shares nothing, decides the same.
        let interpreter = evaluator(BackendChoice::Interpreter);
        assert_eq!(
            messages(&interpreter.validate(&request, deadline)),
            expected
        );
    }

    /// Values are recorded only by the patched regorus (`computed_rule_values`).
    #[cfg(feature = "regorus-fork")]
    #[test]
    fn request_independent_values_are_recorded_once_and_never_go_stale() {
        let ev = evaluator(BackendChoice::Auto);
        let deadline = Instant::now() + Duration::from_secs(5);
        // Requests that change every request-dependent rule (`containers`, `too_many`, the messages);
        // each must be decided as a fresh evaluator (nothing recorded yet) decides it.
        for containers in [1, 6, 0, 2, 6, 1, 0] {
            let request = pod(containers);
            let fresh = evaluator(BackendChoice::Auto);
            assert_eq!(
                messages(&ev.validate(&request, deadline)),
                messages(&fresh.validate(&request, deadline)),
                "{containers} containers"
            );
        }
        let shared = ev.set.vm.as_ref().expect("a VM program");
        let recorded = |policy: &str| -> Vec<String> {
            let index = ev
                .set
                .policies
                .iter()
                .position(|p| p.id == policy)
                .expect("policy");
            let mut names: Vec<String> = ev.constants[index]
                .get()
                .map(|values| {
                    values
                        .iter()
                        .map(|(i, _)| shared.program.rule_infos[*i].name.clone())
                        .collect()
                })
                .unwrap_or_default();
            names.sort();
            names
        };
        // `limit` reads only the policy's parameters, and `warn` only `limit`: recorded per policy.
        // `containers`, `too_many` and `deny` read the review: never recorded.
        assert_eq!(
            recorded("strict"),
            vec![
                "data.regate.lib.shared.limit",
                "data.regate.policies.strict.warn"
            ]
        );
        assert_eq!(
            recorded("lenient"),
            vec![
                "data.regate.lib.shared.limit",
                "data.regate.policies.lenient.warn"
            ]
        );
        let limit_of = |policy: &str| {
            let index = ev.set.policies.iter().position(|p| p.id == policy);
            index
                .and_then(|i| ev.constants[i].get())
                .and_then(|values| {
                    values
                        .iter()
                        .find(|(r, _)| {
                            shared.program.rule_infos[*r].name == "data.regate.lib.shared.limit"
                        })
                        .map(|(_, v)| v.clone())
                })
        };
        assert_eq!(limit_of("strict"), Some(Value::from(1)));
        assert_eq!(limit_of("lenient"), Some(Value::from(5)));
    }

    /// `testdata/bundles/memo-functions`: `names.shout` is a pure function (memoized by each VM),
    /// `tagged` reads the review, `limited` the policy's parameters and `tagged_shout` calls `tagged`.
    fn memo_evaluator() -> Evaluator {
        bundle_evaluator("memo-functions", BackendChoice::Auto)
    }

    fn named_pod(name: &str, containers: &[&str]) -> Json {
        let mut request = pod(containers.len());
        request["object"]["metadata"]["name"] = Json::from(name);
        for (i, name) in containers.iter().enumerate() {
            request["object"]["spec"]["containers"][i]["name"] = Json::from(*name);
        }
        request
    }

    #[test]
    fn only_input_free_functions_are_memoized_and_their_results_never_go_stale() {
        let ev = memo_evaluator();
        let shared = ev.set.vm.as_ref().expect("a VM program");
        let input_free = |name: &str| {
            let index = shared
                .program
                .rule_infos
                .iter()
                .position(|r| r.name == name);
            index.map(|i| shared.input_free[i])
        };
        assert_eq!(input_free("data.regate.lib.names.shout"), Some(true));
        assert_eq!(input_free("data.regate.lib.names.tagged"), Some(false));
        assert_eq!(input_free("data.regate.lib.names.limited"), Some(false));
        assert_eq!(
            input_free("data.regate.lib.names.tagged_shout"),
            Some(false)
        );

        // The same container names under changing pod names: a memoized `tagged` or `tagged_shout`
        // would answer with an earlier pod's name, a memoized `limited` with the other policy's limit.
        let deadline = Instant::now() + Duration::from_secs(5);
        let requests = [
            named_pod("a", &["web", "db"]),
            named_pod("b", &["web", "db"]),
            named_pod("c", &["db"]),
            named_pod("a", &["web", "db", "cache"]),
            named_pod("b", &["web"]),
        ];
        for request in &requests {
            let fresh = memo_evaluator();
            let decided = messages(&ev.validate(request, deadline));
            assert_eq!(decided, messages(&fresh.validate(request, deadline)));
            let pod = request["object"]["metadata"]["name"]
                .as_str()
                .unwrap_or_default();
            for container in request["object"]["spec"]["containers"]
                .as_array()
                .into_iter()
                .flatten()
            {
                let name = container["name"].as_str().unwrap_or_default();
                let upper = name.to_uppercase();
                for (policy, max) in [("names", 1), ("names2", 2)] {
                    let expected = format!(
                        "Deny {policy} {upper} {name}@{pod} {name}<={max} {upper}@{}",
                        pod.to_uppercase()
                    );
                    assert!(decided.contains(&expected), "{expected} in {decided:?}");
                }
            }
        }
        // The pooled VM kept the results of `shout` only: for the 3 container names, and for the 6
        // distinct `tagged` strings `tagged_shout` passed to it (web@a, db@a, web@b, db@b, db@c, cache@a).
        // (Only the patched regorus memoizes; the decisions above hold on both.)
        #[cfg(feature = "regorus-fork")]
        {
            let idle = ev.vms.lock().expect("pool lock");
            let kept: Vec<usize> = idle.iter().map(RegoVM::memoized_results).collect();
            assert_eq!(kept, vec![9], "one pooled VM");
        }
    }

    #[test]
    fn only_rules_that_cannot_read_parameters_are_reusable() {
        let ev = evaluator(BackendChoice::Auto);
        let shared = ev.set.vm.as_ref().expect("a VM program");
        let reusable = |name: &str| {
            shared
                .program
                .rule_infos
                .iter()
                .position(|r| r.name == name)
                .map(|i| shared.reusable[i])
        };
        assert_eq!(reusable("data.regate.lib.shared.containers"), Some(true));
        assert_eq!(reusable("data.regate.lib.shared.limit"), Some(false));
        assert_eq!(reusable("data.regate.lib.shared.too_many"), Some(false));
    }
}
