package regate.policies.network_policy_required_test

import data.regate.lib.testing as fx
import data.regate.policies.network_policy_required as npr

pod := {"containers": [{"name": "app", "image": "x"}]}

in_ns(inp, ns) := {"review": object.union(inp.review, {"namespace": ns, "object": {"metadata": {"namespace": ns}}})}

deny(inp, inv) := v if {
	v := npr.deny with input as inp with data.inventory as inv with data.regate.config as fx.config
}

inv_with(ns, kind, gv, name, obj) := object.union(fx.inventory, {"namespace": {ns: {gv: {kind: {name: obj}}}}})

test_workload_in_default_deny_namespace_is_allowed if {
	every kind, _ in fx.spec_paths {
		count(deny(fx.review_for(kind, pod), fx.inventory)) == 0
	}
}

test_workload_in_namespace_without_default_deny_is_denied if {
	every kind, _ in fx.spec_paths {
		v := deny(in_ns(fx.review_for(kind, pod), "shop-dev"), fx.inventory)
		fx.has(v, `namespace "shop-dev" has no default-deny ingress+egress network policy`)
	}
}

test_unknown_namespace_is_denied if {
	fx.has(deny(in_ns(fx.review_for("Pod", pod), "ghost"), fx.inventory), `namespace "ghost" has no default-deny`)
}

test_ingress_only_policy_is_not_enough if {
	np := {"spec": {"podSelector": {}, "policyTypes": ["Ingress"]}}
	fx.has(deny(in_ns(fx.review_for("Pod", pod), "shop-dev"), inv_with("shop-dev", "NetworkPolicy", "networking.k8s.io/v1", "deny-ingress", np)), "default-deny egress network policy")
}

test_separate_ingress_and_egress_policies_count if {
	inv := object.union(fx.inventory, {"namespace": {"shop-dev": {"networking.k8s.io/v1": {"NetworkPolicy": {
		"deny-in": {"spec": {"podSelector": {}, "policyTypes": ["Ingress"]}},
		"deny-out": {"spec": {"podSelector": {}, "policyTypes": ["Egress"]}},
	}}}}})
	count(deny(in_ns(fx.review_for("Pod", pod), "shop-dev"), inv)) == 0
}

test_default_policy_types_without_egress_rules_is_ingress_only if {
	np := {"spec": {"podSelector": {}}}
	fx.has(deny(in_ns(fx.review_for("Pod", pod), "shop-dev"), inv_with("shop-dev", "NetworkPolicy", "networking.k8s.io/v1", "d", np)), "default-deny egress")
}

test_policy_with_allow_rules_is_not_default_deny if {
	np := {"spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"], "egress": [{}]}}
	fx.has(deny(in_ns(fx.review_for("Pod", pod), "shop-dev"), inv_with("shop-dev", "NetworkPolicy", "networking.k8s.io/v1", "d", np)), "default-deny egress")
}

test_policy_selecting_some_pods_is_not_default_deny if {
	np := {"spec": {"podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Ingress", "Egress"]}}
	fx.has(deny(in_ns(fx.review_for("Pod", pod), "shop-dev"), inv_with("shop-dev", "NetworkPolicy", "networking.k8s.io/v1", "d", np)), "ingress+egress")
}

test_cilium_empty_rules_count if {
	cnp := {"spec": {"endpointSelector": {}, "ingress": [{}], "egress": [{}]}}
	count(deny(in_ns(fx.review_for("Pod", pod), "shop-dev"), inv_with("shop-dev", "CiliumNetworkPolicy", "cilium.io/v2", "d", cnp))) == 0
}

test_cilium_deny_rules_count if {
	cnp := {"specs": [{"endpointSelector": {}, "ingressDeny": [{"fromEntities": ["all"]}], "egressDeny": [{"toEntities": ["all"]}]}]}
	count(deny(in_ns(fx.review_for("Pod", pod), "shop-dev"), inv_with("shop-dev", "CiliumNetworkPolicy", "cilium.io/v2", "d", cnp))) == 0
}

test_cilium_rules_that_allow_or_disable_default_deny_do_not_count if {
	every cnp in [
		{"spec": {"endpointSelector": {}, "ingress": [{"fromEntities": ["world"]}], "egress": [{}]}},
		{"spec": {"endpointSelector": {}, "ingress": [{}], "egress": [{}], "enableDefaultDeny": {"egress": false}}},
		{"spec": {"endpointSelector": {"matchLabels": {"app": "web"}}, "ingress": [{}], "egress": [{}]}},
		{"spec": {"endpointSelector": {}, "ingress": [], "egress": []}},
		{"spec": {"endpointSelector": {}, "ingressDeny": [{"fromEntities": ["all"], "toPorts": [{"ports": [{"port": "80"}]}]}], "egress": [{}]}},
	] {
		count(deny(in_ns(fx.review_for("Pod", pod), "shop-dev"), inv_with("shop-dev", "CiliumNetworkPolicy", "cilium.io/v2", "d", cnp))) == 1
	}
}

ccnp_inv(sel) := object.union(fx.inventory, {"cluster": {"cilium.io/v2": {"CiliumClusterwideNetworkPolicy": {"default-deny": {"spec": {"endpointSelector": sel, "ingress": [{}], "egress": [{}]}}}}}})

test_clusterwide_policy_selecting_all_endpoints_counts if {
	count(deny(in_ns(fx.review_for("Pod", pod), "shop-dev"), ccnp_inv({}))) == 0
	sel := {"matchExpressions": [{"key": "io.kubernetes.pod.namespace", "operator": "NotIn", "values": ["kube-system"]}]}
	count(deny(in_ns(fx.review_for("Pod", pod), "shop-dev"), ccnp_inv(sel))) == 0
	sel2 := {"matchExpressions": [{"key": "k8s:io.kubernetes.pod.namespace", "operator": "In", "values": ["shop-dev"]}]}
	count(deny(in_ns(fx.review_for("Pod", pod), "shop-dev"), ccnp_inv(sel2))) == 0
	sel3 := {"matchExpressions": [{"key": "k8s:io.kubernetes.pod.namespace", "operator": "Exists"}]}
	count(deny(in_ns(fx.review_for("Pod", pod), "shop-dev"), ccnp_inv(sel3))) == 0
	no_values := {"matchExpressions": [{"key": "io.kubernetes.pod.namespace", "operator": "NotIn"}]}
	count(deny(in_ns(fx.review_for("Pod", pod), "shop-dev"), ccnp_inv(no_values))) == 0
	sel4 := {"matchLabels": {"io.kubernetes.pod.namespace": "shop-dev"}}
	count(deny(in_ns(fx.review_for("Pod", pod), "shop-dev"), ccnp_inv(sel4))) == 0
}

test_clusterwide_policy_not_selecting_the_namespace_does_not_count if {
	every sel in [
		{"matchExpressions": [{"key": "io.kubernetes.pod.namespace", "operator": "NotIn", "values": ["shop-dev"]}]},
		{"matchExpressions": [{"key": "io.kubernetes.pod.namespace", "operator": "In", "values": ["other"]}]},
		{"matchExpressions": [{"key": "app", "operator": "Exists"}]},
		{"matchExpressions": [{"key": "io.kubernetes.pod.namespace", "operator": "DoesNotExist"}]},
		{"matchLabels": {"io.kubernetes.pod.namespace": "other"}},
		null,
	] {
		count(deny(in_ns(fx.review_for("Pod", pod), "shop-dev"), ccnp_inv(sel))) == 1
	}
}

test_wrong_api_group_does_not_count if {
	np := {"spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}}
	fx.has(deny(in_ns(fx.review_for("Pod", pod), "shop-dev"), inv_with("shop-dev", "NetworkPolicy", "example.com/v1", "d", np)), "ingress+egress")
}

# kubectl debug: UPDATE on pods/ephemeralcontainers changes the pod spec.
test_ephemeral_container_update_is_checked if {
	new := {"containers": pod.containers, "ephemeralContainers": [{"name": "debug", "image": "busybox"}]}
	u := fx.update_for("Pod", pod, new)
	r := {"review": object.union(u.review, {"namespace": "shop-dev", "subResource": "ephemeralcontainers"})}
	fx.has(deny(r, fx.inventory), "shop-dev")
}

test_metadata_only_update_is_allowed if {
	u := fx.update_for("Pod", pod, pod)
	r := {"review": object.union(u.review, {"namespace": "shop-dev", "object": {"metadata": {"deletionTimestamp": "2025-01-01T00:00:00Z", "finalizers": []}}})}
	count(deny(r, fx.inventory)) == 0
}

test_non_workloads_and_deletes_are_not_checked if {
	count(deny(object.union(fx.scale_review, {"review": {"namespace": "shop-dev"}}), fx.inventory)) == 0
	d := {"review": object.union(fx.request("Pod", fx.wrap("Pod", pod)), {"operation": "DELETE", "namespace": "shop-dev", "object": null, "oldObject": fx.wrap("Pod", pod)})}
	count(deny(d, fx.inventory)) == 0
}

# --- removing default-deny ---

np_req(op, old, new, ns) := {"review": {
	"uid": "n", "operation": op, "namespace": ns, "name": "default-deny",
	"kind": {"group": "networking.k8s.io", "version": "v1", "kind": "NetworkPolicy"},
	"resource": {"group": "networking.k8s.io", "version": "v1", "resource": "networkpolicies"},
	"userInfo": fx.shop_user, "object": new, "oldObject": old,
}}

test_deleting_the_last_default_deny_is_denied if {
	v := deny(np_req("DELETE", fx.default_deny("shop-prod", "default-deny"), null, "shop-prod"), fx.inventory)
	fx.has(v, `deleting NetworkPolicy default-deny leaves namespace "shop-prod" without default-deny ingress`)
	fx.has(v, "without default-deny egress")
}

test_deleting_one_of_two_default_deny_policies_is_allowed if {
	inv := object.union(fx.inventory, {"namespace": {"shop-prod": {"networking.k8s.io/v1": {"NetworkPolicy": {"second": fx.default_deny("shop-prod", "second")}}}}})
	count(deny(np_req("DELETE", fx.default_deny("shop-prod", "default-deny"), null, "shop-prod"), inv)) == 0
}

test_deleting_an_allow_policy_is_allowed if {
	allow := {"metadata": {"name": "allow-web"}, "spec": {"podSelector": {"matchLabels": {"app": "web"}}, "ingress": [{}]}}
	count(deny(np_req("DELETE", allow, null, "shop-prod"), fx.inventory)) == 0
}

test_weakening_the_last_default_deny_is_denied if {
	weak := {"metadata": {"name": "default-deny"}, "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}}
	v := deny(np_req("UPDATE", fx.default_deny("shop-prod", "default-deny"), weak, "shop-prod"), fx.inventory)
	fx.has(v, "changing NetworkPolicy default-deny leaves namespace \"shop-prod\" without default-deny egress")
	not fx.has(v, "ingress")
}

test_unchanged_update_is_allowed if {
	dd := fx.default_deny("shop-prod", "default-deny")
	count(deny(np_req("UPDATE", dd, object.union(dd, {"metadata": {"labels": {"x": "y"}}}), "shop-prod"), fx.inventory)) == 0
}

test_deleting_the_last_cilium_default_deny_is_denied if {
	cnp := {"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy", "metadata": {"name": "default-deny", "namespace": "shop-dev"}, "spec": {"endpointSelector": {}, "ingress": [{}], "egress": [{}]}}
	inv := inv_with("shop-dev", "CiliumNetworkPolicy", "cilium.io/v2", "default-deny", cnp)
	r := np_req("DELETE", cnp, null, "shop-dev")
	r2 := {"review": object.union(r.review, {"kind": {"group": "cilium.io", "version": "v2", "kind": "CiliumNetworkPolicy"}})}
	fx.has(deny(r2, inv), "deleting CiliumNetworkPolicy default-deny")
}

test_deleting_the_clusterwide_default_deny_is_denied if {
	ccnp := {"spec": {"endpointSelector": {}, "ingress": [{}], "egress": [{}]}}
	inv := ccnp_inv({})
	r := {"review": {
		"uid": "c", "operation": "DELETE", "name": "default-deny",
		"kind": {"group": "cilium.io", "version": "v2", "kind": "CiliumClusterwideNetworkPolicy"},
		"userInfo": fx.platform_user, "object": null, "oldObject": ccnp,
	}}
	v := deny(r, inv)
	fx.has(v, `leaves namespace "shop-dev" without default-deny ingress`)
	not fx.has(v, "shop-prod")
	not fx.has(v, "legacy")
}
