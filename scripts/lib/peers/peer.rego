# METADATA
# title: regate's engine, in Rego, for the OPA server of scripts/bench-peers.sh
# description: >-
#   Answers an AdmissionReview (input) with the bundled library as `regate serve` answers it on
#   /validate: the policies that apply (regate.yaml's systemNamespaces, then each policy's match and
#   exclude: src/policy/evaluate.rs `applies`, src/policy/matcher.rs), each evaluated with input
#   {"review": request, "parameters": ...}, its deny and warn results enforced per its enforcement
#   (src/policy/evaluate.rs `result`), the deny message "[id] msg (field)" joined with "; " and the
#   warnings "[id] msg" (src/admission/response.rs). The per-policy data comes from opa_data.py.
#   Not implemented: labelSelector (opa_data.py refuses it), policy errors and onError, the 120-byte
#   warning bound; the benchmark checks every answer against regate's before it times anything.
package regate.peer

policies := data.regate_peer.policies

req := input.request

facts := {
	"operation": object.get(req, "operation", ""),
	"group": object.get(req, ["kind", "group"], ""),
	"kind": object.get(req, ["kind", "kind"], ""),
	"resource": object.get(req, ["resource", "resource"], ""),
	"sub_resource": object.get(req, "subResource", ""),
	"namespace": object.get(req, "namespace", ""),
	"name": name,
}

default name := ""

name := req.name if req.name != ""

name := object.get(subject, ["metadata", "name"], "") if object.get(req, "name", "") == ""

default subject := {}

subject := req.oldObject if {
	req.operation == "DELETE"
	is_object(req.oldObject)
} else := req.object if is_object(req.object)
else := req.oldObject if is_object(req.oldObject)

namespace_object if {
	facts.kind == "Namespace"
	facts.group == ""
}

effective_namespace := facts.namespace if facts.namespace != ""

effective_namespace := facts.name if {
	facts.namespace == ""
	namespace_object
	facts.name != ""
}

namespaced if {
	facts.namespace != ""
	not namespace_object
}

glob(pattern, s) if {
	endswith(pattern, "*")
	startswith(s, trim_suffix(pattern, "*"))
}

glob(pattern, s) if {
	not endswith(pattern, "*")
	pattern == s
}

system_exempt if {
	not namespace_object
	some pattern in data.regate.config.systemNamespaces
	glob(pattern, effective_namespace)
}

matches(m) if {
	operation_ok(m)
	kind_ok(m)
	resource_ok(m)
	namespace_ok(m)
	scope_ok(m)
}

operation_ok(m) if count(object.get(m, "operations", [])) == 0

operation_ok(m) if {
	some op in m.operations
	op == "*"
}

operation_ok(m) if {
	some op in m.operations
	upper(op) == upper(facts.operation)
}

kind_ok(m) if count(object.get(m, "kinds", [])) == 0

kind_ok(m) if {
	some sel in m.kinds
	group_ok(sel)
	kinds_ok(sel)
}

group_ok(sel) if count(object.get(sel, "apiGroups", [])) == 0

group_ok(sel) if {
	some g in sel.apiGroups
	g in {"*", facts.group}
}

kinds_ok(sel) if count(object.get(sel, "kinds", [])) == 0

kinds_ok(sel) if {
	some k in sel.kinds
	k in {"*", facts.kind}
}

resource_ok(m) if {
	count(object.get(m, "resources", [])) == 0
	facts.sub_resource != "status"
}

resource_ok(m) if {
	some spec in m.resources
	[res, sub] := split_resource(spec)
	res in {"*", facts.resource}
	sub in {"*", facts.sub_resource}
}

split_resource(spec) := [spec, ""] if not contains(spec, "/")

split_resource(spec) := [substring(spec, 0, i), substring(spec, i + 1, -1)] if {
	i := indexof(spec, "/")
	i >= 0
}

namespace_ok(m) if {
	namespaces_listed(m)
	not namespace_excluded(m)
}

namespaces_listed(m) if count(object.get(m, "namespaces", [])) == 0

namespaces_listed(m) if {
	some pattern in m.namespaces
	glob(pattern, effective_namespace)
}

namespace_excluded(m) if {
	some pattern in object.get(m, "excludedNamespaces", [])
	glob(pattern, effective_namespace)
}

scope_ok(m) if object.get(m, "scope", "*") == "*"

scope_ok(m) if {
	m.scope == "Namespaced"
	namespaced
}

scope_ok(m) if {
	m.scope == "Cluster"
	not namespaced
}

applies(p) if {
	matches(p.match)
	not excluded(p)
}

excluded(p) if {
	some e in p.exclude
	matches(e)
}

# The applicable policies in regate's order (by package name).
evaluated := [pkg |
	not system_exempt
	some pkg in sort(object.keys(policies))
	applies(policies[pkg])
]

# A deny or warn rule's value as regate reads it (src/policy/decision.rs read_messages): true is one
# violation named by the title; a set in its sorted order, an array in its own.
messages(v, _) := [] if v == false

messages(v, _) := [] if v == null

messages(v, title) := [{"msg": title}] if v == true

messages(v, _) := [message(item) | some item in sort(v)] if is_set(v)

messages(v, _) := [message(item) | some item in v] if is_array(v)

messages(v, _) := [message(v)] if is_string(v)

messages(v, _) := [message(v)] if is_object(v)

message(item) := {"msg": item} if is_string(item)

message(item) := object.union({"msg": object.get(item, "msg", object.get(item, "message", null))}, field(item)) if is_object(item)

field(item) := {"field": item.field} if is_string(item.field)
else := {"field": item.path} if is_string(item.path)
else := {}

# A policy's deny and warn values, from one evaluation with the policy's input (as regate evaluates
# both entry points of a policy in one pass); false where the policy has no such rule.
rule_values(pkg) := values if {
	values := [rule_value(pkg, "deny"), rule_value(pkg, "warn")] with input as {
		"review": req,
		"parameters": policies[pkg].parameters,
	}
}

rule_value(pkg, rule) := v if {
	v := data.regate.policies[pkg][rule]
} else := false

policy_results(pkg) := [r |
	p := policies[pkg]
	values := rule_values(pkg)
	some i, rule in ["deny", "warn"]
	some m in messages(values[i], p.title)
	r := object.union(m, {"id": p.id, "action": action(rule, p.enforcement)})
]

action(_, "dryrun") := "dryrun"

action("warn", enforcement) := "warn" if enforcement != "dryrun"

action("deny", enforcement) := enforcement if enforcement != "dryrun"

results := [r |
	some pkg in evaluated
	some r in policy_results(pkg)
]

denials := [text |
	some r in results
	r.action == "deny"
	text := deny_text(r)
]

deny_text(r) := sprintf("[%s] %s (%s)", [r.id, r.msg, r.field]) if r.field

deny_text(r) := sprintf("[%s] %s", [r.id, r.msg]) if not r.field

warnings := [sprintf("[%s] %s", [r.id, r.msg]) | some r in results; r.action == "warn"]

response := object.union(
	{"uid": req.uid, "allowed": count(denials) == 0},
	object.union(status, warning_field),
)

status := {"status": {"code": 403, "reason": "Forbidden", "message": concat("; ", denials)}} if count(denials) > 0
else := {}

warning_field := {"warnings": warnings} if count(warnings) > 0
else := {}

# What the webhook answers: the AdmissionReview with the response (the request's apiVersion).
review := {"apiVersion": input.apiVersion, "kind": "AdmissionReview", "response": response}
