# Tenancy helpers: who a namespace belongs to (from cluster state, never from the request), who the
# requester acts for, and whether the requester is a platform identity. Configured under `tenancy` in
# regate.yaml (see docs/policies.md).
package regate.lib.tenancy

import data.regate.lib.k8s

default config := {}

config := c if {
	c := data.regate.config.tenancy
	is_object(c)
}

label_key := object.get(config, "labelKey", "regate.dev/tenant")

tenants := object.get(config, "tenants", {})

platform_groups := object.get(config, "platformGroups", [])

platform_users := object.get(config, "platformUsers", [])

# The Namespace object from cluster state (data.inventory), undefined when regate does not know it.
namespace_object(ns) := data.inventory.cluster.v1.Namespace[ns]

namespace_known(ns) if is_object(namespace_object(ns))

# The tenant a namespace belongs to: its tenant label in cluster state. Undefined when the namespace is
# unknown or carries no (or an empty) tenant label.
namespace_tenant(ns) := t if {
	t := namespace_object(ns).metadata.labels[label_key]
	is_string(t)
	t != ""
}

# The tenant of the request's namespace.
tenant := namespace_tenant(k8s.namespace)

# A tenant's configuration (groups, harborProjects, domains), {} for an unconfigured tenant.
tenant_config(t) := c if {
	c := tenants[t]
	is_object(c)
} else := {}

is_configured_tenant(t) if is_object(tenants[t])

# The tenants the requester acts for: tenants listing one of the requester's groups, and the tenant of
# the namespace of a requesting service account (system:serviceaccount:<ns>:<name>).
user_tenants contains t if {
	some t, cfg in tenants
	some g in object.get(cfg, "groups", [])
	g in k8s.groups
}

user_tenants contains t if {
	parts := split(k8s.username, ":")
	count(parts) == 4
	parts[0] == "system"
	parts[1] == "serviceaccount"
	t := namespace_tenant(parts[2])
}

# True when `ns` is one of regate.yaml's systemNamespaces (a trailing `*` matches a prefix), as the engine
# matches them. The engine exempts everything inside a system namespace, but never the Namespace object.
is_system_namespace(ns) if {
	some p in system_namespaces
	_glob(p, ns)
}

system_namespaces := s if {
	s := data.regate.config.systemNamespaces
	is_array(s)
} else := []

_glob(p, ns) if p == ns

_glob(p, ns) if {
	endswith(p, "*")
	startswith(ns, trim_suffix(p, "*"))
}

# Platform identities: listed users, or members of a listed group.
is_platform if k8s.username in platform_users

is_platform if {
	some g in k8s.groups
	g in platform_groups
}

# A requester that acts for at least one tenant and is not a platform identity.
is_tenant_identity if {
	count(user_tenants) > 0
	not is_platform
}
