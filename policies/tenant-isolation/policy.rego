# METADATA
# title: Tenant isolation
# description: >-
#   Every namespaced object carries the tenant label of its namespace; a tenant's identities write only in
#   their tenant's namespaces; only platform identities create Namespaces or assign or change a
#   namespace's tenant (also through the status and finalize subresources); tenant identities never
#   modify system namespaces. A namespace missing from cluster state is denied, never treated as
#   "no match".
# custom:
#   severity: critical
#   remediation: >-
#     Deploy into a namespace of your own tenant and keep the tenant label (regate.dev/tenant by default)
#     equal to the namespace's; ask the platform team to create namespaces or move them between tenants.
#   controls: ["GDPR Art. 32(1)(b)", "NIS-2 Art. 21(2)(i)", "DORA Art. 9(4)(c)", "CRA Annex I (1)(3)(d)"]
#   requiresInventory: true
#   match:
#     operations: [CREATE, UPDATE, DELETE, CONNECT]
#     resources: ["*/*"]
package regate.policies.tenant_isolation

import data.regate.lib.k8s
import data.regate.lib.tenancy

key := tenancy.label_key

ns := k8s.namespace

is_namespace_kind if {
	k8s.kind == "Namespace"
	k8s.group == ""
}

# --- namespaced requests ------------------------------------------------------------------------

# Cluster state must know the namespace: a failed lookup is a denial, not "no match".
deny contains {"msg": msg, "field": "metadata.namespace"} if {
	k8s.is_namespaced
	not tenancy.namespace_known(ns)
	msg := sprintf("namespace %q is not known to regate's cluster state", [ns])
}

deny contains {"msg": msg, "field": "metadata.namespace"} if {
	k8s.is_namespaced
	tenancy.namespace_known(ns)
	not tenancy.namespace_tenant(ns)
	msg := sprintf("namespace %q belongs to no tenant (label %s missing)", [ns, key])
}

# The object's tenant label must equal its namespace's tenant (checked on the object itself, not on
# subresources such as scale or status, which carry no labels).
deny contains {"msg": msg, "field": sprintf("metadata.labels[%s]", [key])} if {
	_writes_object
	t := tenancy.tenant
	is_string(t)
	not _has_string_label(key)
	msg := sprintf("missing label %s (namespace %q belongs to tenant %q)", [key, ns, t])
}

deny contains {"msg": msg, "field": sprintf("metadata.labels[%s]", [key])} if {
	_writes_object
	t := tenancy.tenant
	is_string(t)
	v := k8s.labels[key]
	v != t
	msg := sprintf("label %s=%q does not match tenant %q of namespace %q", [key, v, t, ns])
}

# A tenant identity writes only in its tenants' namespaces (CREATE, UPDATE, DELETE, CONNECT). Messages
# never name the other tenant: tenants are customers and must not learn of each other.
deny contains {"msg": msg, "field": "metadata.namespace"} if {
	k8s.is_namespaced
	tenancy.is_tenant_identity
	t := tenancy.tenant
	is_string(t)
	not t in tenancy.user_tenants
	msg := sprintf("tenant %s may not write in namespace %q of another tenant (%s)", [_user_tenants_text, ns, _who])
}

_writes_object if {
	k8s.operation in {"CREATE", "UPDATE"}
	k8s.is_main_resource
	k8s.is_namespaced
	is_object(input.review.object)
}

_who := sprintf("user %q", [k8s.username])

_user_tenants_text := concat(",", sort([t | some t in tenancy.user_tenants]))

# --- cluster-scoped requests --------------------------------------------------------------------

# Tenant identities write no cluster-scoped objects except the review APIs (SelfSubjectAccessReview, ...).
deny contains msg if {
	not k8s.is_namespaced
	not is_namespace_kind
	tenancy.is_tenant_identity
	not k8s.group in k8s.param("clusterScopedAllowedGroups", ["authorization.k8s.io", "authentication.k8s.io"])
	msg := sprintf("tenant %s may not write cluster-scoped %s objects (%s)", [_user_tenants_text, k8s.kind, _who])
}

# --- Namespace objects ---------------------------------------------------------------------------

deny contains msg if {
	is_namespace_kind
	k8s.operation == "CREATE"
	not tenancy.is_platform
	msg := sprintf("only platform identities may create namespaces (%s is not one)", [_who])
}

# The namespace's tenant before the request: from the old object, else from cluster state.
_ns_old_tenant := t if {
	t := k8s.old_obj.metadata.labels[key]
	is_string(t)
} else := t if {
	t := tenancy.namespace_tenant(k8s.name)
}

_ns_new_tenant := t if {
	t := input.review.object.metadata.labels[key]
	is_string(t)
}

# Every namespace but a system namespace belongs to a tenant (system namespaces belong to the platform).
deny contains {"msg": msg, "field": sprintf("metadata.labels[%s]", [key])} if {
	is_namespace_kind
	k8s.operation in {"CREATE", "UPDATE"}
	k8s.is_main_resource
	is_object(input.review.object)
	not _ns_new_tenant
	not tenancy.is_system_namespace(k8s.name)
	msg := sprintf("namespace %q lacks tenant label %s", [k8s.name, key])
}

deny contains {"msg": msg, "field": sprintf("metadata.labels[%s]", [key])} if {
	is_namespace_kind
	k8s.operation in {"CREATE", "UPDATE"}
	k8s.is_main_resource
	t := _ns_new_tenant
	is_string(t)
	not tenancy.is_configured_tenant(t)
	msg := sprintf("namespace %q: tenant %q is not configured in regate.yaml", [k8s.name, t])
}

# Removing or changing a namespace's tenant label is reserved to platform identities.
deny contains {"msg": msg, "field": sprintf("metadata.labels[%s]", [key])} if {
	is_namespace_kind
	k8s.operation == "UPDATE"
	old := _ns_old_tenant
	is_string(old)
	object.get(input.review.object, ["metadata", "labels", key], null) != old
	not tenancy.is_platform
	msg := sprintf("only platform identities may change the tenant of namespace %q (was %q)", [k8s.name, old])
}

# Assigning a tenant to a namespace that had none is reserved to platform identities as well. The
# status and finalize subresources of a Namespace keep label changes (their update strategies reset only
# spec or status), so both rules judge them too.
deny contains {"msg": msg, "field": sprintf("metadata.labels[%s]", [key])} if {
	is_namespace_kind
	k8s.operation == "UPDATE"
	not _ns_old_tenant
	t := _ns_new_tenant
	is_string(t)
	not tenancy.is_platform
	msg := sprintf("only platform identities may assign namespace %q to a tenant (%s)", [k8s.name, _who])
}

# System namespaces hold the platform's components and are exempt from every policy: a tenant identity
# never updates or deletes one, whatever its labels say.
deny contains msg if {
	is_namespace_kind
	k8s.operation in {"UPDATE", "DELETE"}
	tenancy.is_tenant_identity
	tenancy.is_system_namespace(k8s.name)
	msg := sprintf("tenant %s may not modify system namespace %q (%s)", [_user_tenants_text, k8s.name, _who])
}

# A tenant identity may update or delete only its own tenants' namespaces.
deny contains msg if {
	is_namespace_kind
	k8s.operation in {"UPDATE", "DELETE"}
	tenancy.is_tenant_identity
	t := _ns_old_tenant
	is_string(t)
	not t in tenancy.user_tenants
	msg := sprintf("tenant %s may not modify namespace %q of another tenant (%s)", [_user_tenants_text, k8s.name, _who])
}

deny contains msg if {
	is_namespace_kind
	k8s.operation in {"UPDATE", "DELETE"}
	tenancy.is_tenant_identity
	not _ns_old_tenant
	msg := sprintf("%s may not modify namespace %q, which belongs to no tenant", [_who, k8s.name])
}

# --- mutation ------------------------------------------------------------------------------------

# Adds the namespace's tenant label to namespaced objects that lack it.
patch contains {"op": "add", "path": sprintf("/metadata/labels/%s", [k8s.escape_pointer(key)]), "value": t} if {
	_writes_object
	t := tenancy.tenant
	is_string(t)
	not _has_string_label(key)
}

# The object carries `name` as a string label. The lookup is inside the function so that `not
# _has_string_label(key)` holds for an absent label (Rego evaluates a negated call's operands outside
# the negation: `not is_string(k8s.labels[key])` is undefined, not true, when the label is absent).
_has_string_label(name) if is_string(k8s.labels[name])
