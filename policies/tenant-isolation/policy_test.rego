package regate.policies.tenant_isolation_test

import data.regate.lib.testing as fx
import data.regate.policies.tenant_isolation as ti

cm(ns, labels) := {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg", "namespace": ns, "labels": labels}, "data": {"a": "b"}}

req(obj, overrides) := fx.review("ConfigMap", obj, object.union({"namespace": obj.metadata.namespace, "resource": {"resource": "configmaps"}}, overrides))

deny(inp) := v if {
	v := ti.deny with input as inp with data.inventory as fx.inventory with data.regate.config as fx.config
}

patch(inp) := v if {
	v := ti.patch with input as inp with data.inventory as fx.inventory with data.regate.config as fx.config
}

test_compliant_object_in_own_namespace_is_allowed if {
	count(deny(req(cm("shop-prod", {fx.key: "shop"}), {}))) == 0
}

test_unknown_namespace_is_denied_not_skipped if {
	fx.has(deny(req(cm("ghost", {fx.key: "shop"}), {})), `namespace "ghost" is not known to regate's cluster state`)
}

test_unknown_namespace_is_denied_for_platform_too if {
	fx.has(deny(req(cm("ghost", {}), {"userInfo": fx.platform_user})), "not known")
}

test_namespace_without_tenant_is_denied if {
	fx.has(deny(req(cm("legacy", {}), {"userInfo": fx.platform_user})), `namespace "legacy" belongs to no tenant`)
}

test_missing_tenant_label_is_denied if {
	v := deny(req(cm("shop-prod", {}), {}))
	fx.has(v, "missing label regate.dev/tenant")
	"metadata.labels[regate.dev/tenant]" in fx.fields(v)
}

test_wrong_tenant_label_is_denied if {
	fx.has(deny(req(cm("shop-prod", {fx.key: "billing"}), {})), `label regate.dev/tenant="billing" does not match tenant "shop"`)
}

test_tenant_may_not_write_in_other_tenants_namespace if {
	fx.has(deny(req(cm("billing-prod", {fx.key: "billing"}), {})), `tenant shop may not write in namespace "billing-prod" of another tenant (user "alice")`)
}

test_tenant_service_account_may_not_write_in_other_tenants_namespace if {
	sa := {"username": "system:serviceaccount:shop-prod:ci", "groups": ["system:serviceaccounts"]}
	fx.has(deny(req(cm("billing-prod", {fx.key: "billing"}), {"userInfo": sa})), "may not write in namespace")
}

test_tenant_may_write_in_all_its_namespaces if {
	count(deny(req(cm("shop-dev", {fx.key: "shop"}), {}))) == 0
}

test_platform_may_write_anywhere if {
	count(deny(req(cm("billing-prod", {fx.key: "billing"}), {"userInfo": fx.platform_user}))) == 0
}

test_controller_identity_is_not_restricted if {
	count(deny(req(cm("billing-prod", {fx.key: "billing"}), {"userInfo": fx.controller_user}))) == 0
}

# DELETE carries only oldObject: the namespace's tenant is still checked against the user.
test_delete_in_other_tenants_namespace_is_denied if {
	inp := req(cm("billing-prod", {fx.key: "billing"}), {"operation": "DELETE"})
	del := {"review": object.union(object.remove(inp.review, ["object"]), {"object": null, "oldObject": cm("billing-prod", {fx.key: "billing"})})}
	fx.has(deny(del), "may not write in namespace \"billing-prod\"")
}

test_delete_own_object_is_allowed if {
	inp := req(cm("shop-prod", {}), {})
	del := {"review": object.union(object.remove(inp.review, ["object"]), {"operation": "DELETE", "object": null, "oldObject": cm("shop-prod", {})})}
	count(deny(del)) == 0
}

# CONNECT (kubectl exec) into another tenant's pod.
test_exec_in_other_tenants_namespace_is_denied if {
	r := {"review": {
		"operation": "CONNECT", "namespace": "billing-prod", "name": "pay-0",
		"kind": {"group": "", "version": "v1", "kind": "PodExecOptions"},
		"resource": {"group": "", "version": "v1", "resource": "pods"}, "subResource": "exec",
		"userInfo": fx.shop_user, "object": {"kind": "PodExecOptions", "command": ["sh"]},
	}}
	v := deny(r)
	fx.has(v, "may not write in namespace")
	not fx.has(v, "missing label")
}

# Subresources carry no labels: the Scale of a deployment is not label-checked.
test_scale_subresource_is_not_label_checked if {
	count(deny(fx.scale_review)) == 0
}

test_terminating_object_is_still_checked if {
	obj := object.union(cm("shop-prod", {fx.key: "billing"}), {"metadata": {"deletionTimestamp": "2025-01-01T00:00:00Z", "finalizers": ["x"]}})
	fx.has(deny(req(obj, {"operation": "UPDATE", "oldObject": cm("shop-prod", {fx.key: "shop"})})), "does not match tenant")
}

test_update_removing_label_is_denied_without_mutation if {
	fx.has(deny(req(cm("shop-prod", {}), {"operation": "UPDATE", "oldObject": cm("shop-prod", {fx.key: "shop"})})), "missing label")
}

# --- cluster-scoped ---

test_tenant_may_not_write_cluster_scoped_objects if {
	r := {"review": {"operation": "CREATE", "kind": {"group": "rbac.authorization.k8s.io", "version": "v1", "kind": "ClusterRole"}, "userInfo": fx.shop_user, "object": {"metadata": {"name": "x"}}}}
	fx.has(deny(r), "may not write cluster-scoped ClusterRole objects")
}

test_tenant_may_create_access_reviews if {
	r := {"review": {"operation": "CREATE", "kind": {"group": "authorization.k8s.io", "version": "v1", "kind": "SelfSubjectAccessReview"}, "userInfo": fx.shop_user, "object": {"spec": {}}}}
	count(deny(r)) == 0
}

# --- Namespace objects ---

# As the API server (1.20+) sends it: request.namespace is the Namespace's own name, for every operation.
ns_req(obj, overrides) := {"review": object.union(
	{
		"operation": "CREATE", "name": obj.metadata.name, "namespace": obj.metadata.name,
		"kind": {"group": "", "version": "v1", "kind": "Namespace"},
		"resource": {"group": "", "version": "v1", "resource": "namespaces"},
		"userInfo": fx.platform_user, "object": obj, "oldObject": null,
	},
	overrides,
)}

test_platform_creates_tenant_namespace if {
	count(deny(ns_req(fx.namespace("shop-new", "shop"), {}))) == 0
}

test_tenant_may_not_create_namespaces if {
	fx.has(deny(ns_req(fx.namespace("shop-new", "shop"), {"userInfo": fx.shop_user})), "only platform identities may create namespaces")
}

test_unknown_identity_may_not_create_namespaces if {
	fx.has(deny(ns_req(fx.namespace("x", "shop"), {"userInfo": {"username": "regate-check", "groups": ["system:authenticated"]}})), "only platform identities")
}

test_namespace_without_tenant_label_is_denied if {
	fx.has(deny(ns_req({"metadata": {"name": "x"}}, {})), `namespace "x" lacks tenant label`)
}

test_namespace_with_unconfigured_tenant_is_denied if {
	fx.has(deny(ns_req(fx.namespace("x", "acme"), {})), `tenant "acme" is not configured`)
}

test_tenant_relabelling_its_namespace_is_denied if {
	r := ns_req(fx.namespace("shop-prod", "billing"), {"operation": "UPDATE", "userInfo": fx.shop_user, "oldObject": fx.namespace("shop-prod", "shop")})
	fx.has(deny(r), `only platform identities may change the tenant of namespace "shop-prod"`)
}

test_tenant_removing_its_namespace_label_is_denied if {
	old := fx.namespace("shop-prod", "shop")
	new := {"metadata": {"name": "shop-prod", "labels": {"team": "x"}}}
	r := {"review": {"operation": "UPDATE", "name": "shop-prod", "kind": {"group": "", "version": "v1", "kind": "Namespace"}, "userInfo": fx.shop_user, "object": new, "oldObject": old}}
	v := deny(r)
	fx.has(v, "only platform identities may change the tenant")
	fx.has(v, "lacks tenant label")
}

test_platform_may_move_a_namespace if {
	r := ns_req(fx.namespace("shop-prod", "billing"), {"operation": "UPDATE", "oldObject": fx.namespace("shop-prod", "shop")})
	count(deny(r)) == 0
}

test_tenant_may_label_its_own_namespace if {
	new := object.union(fx.namespace("shop-prod", "shop"), {"metadata": {"labels": {"team": "checkout"}}})
	r := ns_req(new, {"operation": "UPDATE", "userInfo": fx.shop_user, "oldObject": fx.namespace("shop-prod", "shop")})
	count(deny(r)) == 0
}

test_tenant_may_not_modify_other_tenants_namespace if {
	r := ns_req(fx.namespace("billing-prod", "billing"), {"operation": "UPDATE", "userInfo": fx.shop_user, "oldObject": fx.namespace("billing-prod", "billing")})
	fx.has(deny(r), `tenant shop may not modify namespace "billing-prod" of another tenant`)
}

test_tenant_may_not_delete_other_tenants_namespace if {
	r := {"review": {"operation": "DELETE", "name": "billing-prod", "kind": {"group": "", "version": "v1", "kind": "Namespace"}, "userInfo": fx.shop_user, "object": null, "oldObject": fx.namespace("billing-prod", "billing")}}
	fx.has(deny(r), "may not modify namespace")
}

test_tenant_may_not_modify_unowned_namespace if {
	r := {"review": {"operation": "DELETE", "name": "legacy", "kind": {"group": "", "version": "v1", "kind": "Namespace"}, "userInfo": fx.shop_user, "object": null, "oldObject": {"metadata": {"name": "legacy"}}}}
	fx.has(deny(r), "which belongs to no tenant")
}

# --- mutation ---

test_patch_adds_missing_tenant_label if {
	p := patch(req(cm("shop-prod", {}), {}))
	p == {{"op": "add", "path": "/metadata/labels/regate.dev~1tenant", "value": "shop"}}
}

test_patch_is_idempotent if {
	count(patch(req(cm("shop-prod", {fx.key: "shop"}), {}))) == 0
}

test_patch_does_not_overwrite_a_wrong_label if {
	count(patch(req(cm("shop-prod", {fx.key: "billing"}), {}))) == 0
}

test_no_patch_for_unknown_namespace if {
	count(patch(req(cm("ghost", {}), {}))) == 0
}

# --- system namespaces: the engine exempts what is in them, never the Namespace object itself ---

sys_ns(name) := {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name}}}

# As the API server sends a Namespace UPDATE/DELETE: request.namespace is the namespace's own name.
sys_req(op, obj, old, user, sub) := {"review": {
	"operation": op, "name": old.metadata.name, "namespace": old.metadata.name, "subResource": sub,
	"kind": {"group": "", "version": "v1", "kind": "Namespace"}, "resource": {"group": "", "version": "v1", "resource": "namespaces"},
	"userInfo": user, "object": obj, "oldObject": old,
}}

test_tenant_may_not_delete_or_relabel_a_system_namespace if {
	old := sys_ns("kube-system")
	relabelled := object.union(old, {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "privileged"}}})
	every r in [
		sys_req("DELETE", null, old, fx.shop_user, ""),
		sys_req("UPDATE", relabelled, old, fx.shop_user, ""),
		sys_req("UPDATE", relabelled, old, fx.shop_user, "status"),
		sys_req("UPDATE", relabelled, old, fx.shop_user, "finalize"),
	] {
		fx.has(deny(r), `tenant shop may not modify system namespace "kube-system"`)
	}
	# even when the platform labelled it with the tenant
	owned := object.union(old, {"metadata": {"labels": {fx.key: "shop"}}})
	fx.has(deny(sys_req("DELETE", null, owned, fx.shop_user, "")), "may not modify system namespace")
}

test_platform_and_controllers_may_update_a_system_namespace if {
	old := sys_ns("regate-system")
	new := object.union(old, {"metadata": {"labels": {"team": "platform"}}})
	count(deny(sys_req("UPDATE", new, old, fx.platform_user, ""))) == 0
	count(deny(sys_req("DELETE", null, old, fx.platform_user, ""))) == 0
	# the namespace controller finalizing a terminating namespace
	terminating := object.union(old, {"status": {"phase": "Terminating"}})
	count(deny(sys_req("UPDATE", terminating, old, fx.controller_user, "status"))) == 0
	count(deny(sys_req("UPDATE", terminating, old, fx.controller_user, "finalize"))) == 0
}

test_system_namespace_needs_no_tenant_label if {
	count(deny(sys_req("CREATE", sys_ns("regate-system"), sys_ns("regate-system"), fx.platform_user, ""))) == 0
	fx.has(deny(sys_req("CREATE", sys_ns("shop-new"), sys_ns("shop-new"), fx.platform_user, "")), `namespace "shop-new" lacks tenant label`)
	# creating a system namespace is still reserved to the platform
	fx.has(deny(sys_req("CREATE", sys_ns("regate-system"), sys_ns("regate-system"), fx.controller_user, "")), "only platform identities may create namespaces")
}

test_assigning_a_tenant_is_reserved_to_the_platform if {
	old := sys_ns("legacy")
	new := object.union(old, {"metadata": {"labels": {fx.key: "shop"}}})
	every sub in ["", "status", "finalize"] {
		v := deny(sys_req("UPDATE", new, old, fx.controller_user, sub))
		fx.has(v, `only platform identities may assign namespace "legacy" to a tenant`)
	}
	count(deny(sys_req("UPDATE", new, old, fx.platform_user, ""))) == 0
}

test_tenant_label_changes_through_namespace_subresources_are_denied if {
	old := fx.namespace("shop-prod", "shop")
	moved := fx.namespace("shop-prod", "billing")
	every sub in ["status", "finalize"] {
		fx.has(deny(sys_req("UPDATE", moved, old, fx.shop_user, sub)), `only platform identities may change the tenant of namespace "shop-prod"`)
		fx.has(deny(sys_req("UPDATE", moved, old, fx.controller_user, sub)), "only platform identities may change the tenant")
	}
	# a status update that leaves the labels alone
	count(deny(sys_req("UPDATE", object.union(old, {"status": {"phase": "Terminating"}}), old, fx.controller_user, "status"))) == 0
}

# Without request.namespace (API servers before 1.20, offline checks) a Namespace is judged the same.
test_namespace_requests_with_and_without_request_namespace_agree if {
	every r in [
		ns_req(fx.namespace("shop-new", "shop"), {}),
		ns_req(fx.namespace("shop-prod", "billing"), {"operation": "UPDATE", "oldObject": fx.namespace("shop-prod", "shop")}),
		ns_req(fx.namespace("shop-prod", "billing"), {"operation": "UPDATE", "userInfo": fx.shop_user, "oldObject": fx.namespace("shop-prod", "shop")}),
		ns_req(sys_ns("kube-system"), {"operation": "DELETE", "userInfo": fx.shop_user, "object": null, "oldObject": sys_ns("kube-system")}),
	] {
		deny(r) == deny({"review": object.remove(r.review, ["namespace"])})
	}
	# a new namespace is not in cluster state yet, and a Namespace gets no tenant-label patch
	count(deny(ns_req(fx.namespace("shop-new", "shop"), {}))) == 0
	count(patch(ns_req(sys_ns("shop-new"), {}))) == 0
}
