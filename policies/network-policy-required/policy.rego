# METADATA
# title: Default-deny network policy required
# description: >-
#   A workload is admitted only into a namespace whose ingress and egress are both default-deny in
#   cluster state (a NetworkPolicy selecting all pods with no rules, a CiliumNetworkPolicy with empty
#   rules or deny-all rules, or a CiliumClusterwideNetworkPolicy selecting the namespace's endpoints);
#   deleting or weakening the last default-deny policy of a tenant namespace is denied.
# custom:
#   severity: high
#   remediation: >-
#     Add a NetworkPolicy with podSelector {} and policyTypes [Ingress, Egress] and no rules to the
#     namespace, then allow the traffic the workload needs with further policies.
#   controls: ["NIS-2 Art. 21(2)(e)", "DORA Art. 9(4)(a)", "GDPR Art. 32(1)(b)", "CRA Annex I (1)(3)(e)"]
#   requiresInventory: true
#   match:
#     operations: [CREATE, UPDATE, DELETE]
#     kinds:
#       - apiGroups: [""]
#         kinds: [Pod, PodTemplate, ReplicationController]
#       - apiGroups: [apps, extensions]
#         kinds: [Deployment, ReplicaSet, StatefulSet, DaemonSet]
#       - apiGroups: [batch]
#         kinds: [Job, CronJob]
#       - apiGroups: [networking.k8s.io]
#         kinds: [NetworkPolicy]
#       - apiGroups: [cilium.io]
#         kinds: [CiliumNetworkPolicy, CiliumClusterwideNetworkPolicy]
package regate.policies.network_policy_required

import data.regate.lib.k8s
import data.regate.lib.tenancy

directions := ["Ingress", "Egress"]

_list(x) := x if is_array(x) else := []

_obj(x) := x if is_object(x) else := {}

# --- what counts as default-deny -----------------------------------------------------------------

_policy_kinds := {
	"NetworkPolicy": "networking.k8s.io",
	"CiliumNetworkPolicy": "cilium.io",
	"CiliumClusterwideNetworkPolicy": "cilium.io",
}

# True when policy object `p` of `kind` puts every pod of namespace `ns` into default-deny for `dir`.
denies(kind, p, ns, dir) if {
	kind == "NetworkPolicy"
	spec := _obj(p.spec)
	k8s.empty_selector(spec.podSelector)
	dir in _np_types(spec)
	count(_list(object.get(spec, lower(dir), []))) == 0
}

denies(kind, p, ns, dir) if {
	kind in {"CiliumNetworkPolicy", "CiliumClusterwideNetworkPolicy"}
	some rule in _cilium_rules(p)
	_selects_namespace(rule.endpointSelector, ns)
	_cilium_denies(rule, lower(dir))
}

# policyTypes as written, or as Kubernetes defaults them (Ingress, plus Egress when egress rules exist).
_np_types(spec) := {t | some t in spec.policyTypes} if {
	is_array(spec.policyTypes)
} else := {"Ingress"} | {"Egress" | count(_list(spec.egress)) > 0}

_cilium_rules(p) := array.concat([p.spec | is_object(p.spec)], [r | some r in _list(p.specs); is_object(r)])

# A direction is default-deny when its rule list is non-empty and every rule is empty (`- {}`: the
# endpoint enters default-deny and nothing is allowed), unless enableDefaultDeny turns it off; or when a
# deny rule denies the `all` entity on every port.
_cilium_denies(rule, d) if {
	rules := _list(rule[d])
	count(rules) > 0
	every r in rules {
		r == {}
	}
	object.get(rule, ["enableDefaultDeny", d], true) != false
}

_cilium_denies(rule, d) if {
	some r in _list(rule[sprintf("%sDeny", [d])])
	"all" in _list(r[{"ingress": "fromEntities", "egress": "toEntities"}[d]])
	not r.toPorts
}

_ns_keys := {"io.kubernetes.pod.namespace", "k8s:io.kubernetes.pod.namespace"}

# An endpoint selector selects every pod of `ns` when it is empty or only constrains the namespace
# label in a way `ns` satisfies.
_selects_namespace(sel, ns) if {
	is_object(sel)
	every k, v in _obj(object.get(sel, "matchLabels", {})) {
		k in _ns_keys
		v == ns
	}
	every e in _list(object.get(sel, "matchExpressions", [])) {
		e.key in _ns_keys
		_expr_holds(e, ns)
	}
}

_expr_holds(e, ns) if {
	e.operator == "In"
	ns in _list(e.values)
}

_expr_holds(e, ns) if {
	e.operator == "NotIn"
	# `e.values` through object.get: Rego evaluates a negated call's operands outside the negation, so
	# `not ns in _list(e.values)` would be undefined, not true, for a NotIn without values.
	not ns in _list(object.get(e, "values", []))
}

_expr_holds(e, _) if e.operator == "Exists"

# --- cluster state -------------------------------------------------------------------------------

# Policy objects in cluster state that may apply to namespace `ns`.
candidates(ns) := {{"kind": kind, "namespace": ns, "name": name, "obj": p} |
	some gv, kinds in _obj(data.inventory.namespace[ns])
	some kind in {"NetworkPolicy", "CiliumNetworkPolicy"}
	startswith(gv, sprintf("%s/", [_policy_kinds[kind]]))
	some name, p in _obj(kinds[kind])
} | {{"kind": "CiliumClusterwideNetworkPolicy", "namespace": "", "name": name, "obj": p} |
	some gv, kinds in _obj(data.inventory.cluster)
	startswith(gv, "cilium.io/")
	some name, p in _obj(kinds.CiliumClusterwideNetworkPolicy)
}

# True when some policy in cluster state, other than the one identified by `skip`, makes `dir` of
# namespace `ns` default-deny.
covered(ns, dir, skip) if {
	some c in candidates(ns)
	[c.kind, c.namespace, c.name] != skip
	denies(c.kind, c.obj, ns, dir)
}

# --- workloads -----------------------------------------------------------------------------------

# CREATE, and UPDATE that changes a pod spec (including kubectl debug's ephemeral containers). An UPDATE
# that only touches metadata (labels, finalizers of a terminating pod) starts nothing new.
deny contains {"msg": msg, "field": "metadata.namespace"} if {
	k8s.is_workload
	k8s.operation in {"CREATE", "UPDATE"}
	k8s.is_namespaced
	not k8s.pod_spec_unchanged
	missing := [lower(d) | some d in directions; not covered(k8s.namespace, d, [])]
	count(missing) > 0
	msg := sprintf("namespace %q has no default-deny %s network policy", [k8s.namespace, concat("+", missing)])
}

# --- removing default-deny -----------------------------------------------------------------------

is_policy_kind if _policy_kinds[k8s.kind] == k8s.group

_self := [k8s.kind, k8s.namespace, k8s.name]

# Namespaces the policy can affect: its own, or every tenant namespace for a clusterwide policy.
affected contains k8s.namespace if k8s.is_namespaced

affected contains ns if {
	not k8s.is_namespaced
	some ns, _ in _obj(data.inventory.cluster.v1.Namespace)
	tenancy.namespace_tenant(ns)
}

deny contains {"msg": msg, "field": field} if {
	is_policy_kind
	k8s.operation in {"UPDATE", "DELETE"}
	is_object(k8s.old_obj)
	some ns in affected
	some dir in directions
	denies(k8s.kind, k8s.old_obj, ns, dir)
	not _still_denies(ns, dir)
	not covered(ns, dir, _self)
	field := {"DELETE": "metadata.name", "UPDATE": "spec"}[k8s.operation]
	msg := sprintf("%s %s %s leaves namespace %q without default-deny %s", [_verb, k8s.kind, k8s.name, ns, lower(dir)])
}

_still_denies(ns, dir) if {
	k8s.operation == "UPDATE"
	is_object(input.review.object)
	denies(k8s.kind, input.review.object, ns, dir)
}

_verb := {"DELETE": "deleting", "UPDATE": "changing"}[k8s.operation]
