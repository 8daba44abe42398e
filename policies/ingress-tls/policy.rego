# METADATA
# title: Ingress TLS and host ownership
# description: >-
#   Ingresses serve every host over TLS with a certificate from cert-manager; Ingress and HTTPRoute hosts
#   lie within the tenant's configured domains, are named explicitly (no catch-all) and are not already
#   served for another tenant. HTTPRoutes attach only to HTTPS listeners of known Gateways.
# custom:
#   severity: high
#   remediation: >-
#     List every rule host under spec.tls[].hosts with a secretName, add the annotation
#     cert-manager.io/cluster-issuer (e.g. letsencrypt-prod), and use hosts under your tenant's domains.
#   controls: ["GDPR Art. 32(1)(a)", "NIS-2 Art. 21(2)(h)", "DORA Art. 9(4)(d)", "CRA Annex I (1)(3)(c)"]
#   requiresInventory: true
#   match:
#     operations: [CREATE, UPDATE]
#     kinds:
#       - apiGroups: [networking.k8s.io, extensions]
#         kinds: [Ingress]
#       - apiGroups: [gateway.networking.k8s.io]
#         kinds: [HTTPRoute]
package regate.policies.ingress_tls

import data.regate.lib.k8s
import data.regate.lib.tenancy

_list(x) := x if is_array(x) else := []

_obj(x) := x if is_object(x) else := {}

# Only objects being written are judged (DELETE carries no object).
obj := input.review.object if {
	k8s.operation in {"CREATE", "UPDATE"}
	is_object(input.review.object)
}

is_ingress if {
	k8s.kind == "Ingress"
	k8s.group in {"networking.k8s.io", "extensions"}
	obj
}

is_route if {
	k8s.kind == "HTTPRoute"
	k8s.group == "gateway.networking.k8s.io"
	obj
}

spec := _obj(object.get(obj, "spec", {}))

# Hosts are case-insensitive and may carry a trailing dot.
norm(h) := trim_suffix(lower(h), ".")

# --- hosts of the object --------------------------------------------------------------------------

hosts contains {"host": norm(r.host), "field": sprintf("spec.rules[%d].host", [i])} if {
	is_ingress
	some i, r in _list(object.get(spec, "rules", []))
	is_string(r.host)
	r.host != ""
}

hosts contains {"host": norm(h), "field": sprintf("spec.tls[%d].hosts[%d]", [i, j])} if {
	is_ingress
	some i, t in _list(object.get(spec, "tls", []))
	some j, h in _list(t.hosts)
	is_string(h)
}

hosts contains {"host": norm(h), "field": sprintf("spec.hostnames[%d]", [i])} if {
	is_route
	some i, h in _list(object.get(spec, "hostnames", []))
	is_string(h)
}

# A host pattern covers a host: equal, or a wildcard `*.a.b` covering exactly one more label.
covers(pattern, host) if pattern == host

covers(pattern, host) if {
	startswith(pattern, "*.")
	suffix := substring(pattern, 1, count(pattern) - 1)
	endswith(host, suffix)
	label := substring(host, 0, count(host) - count(suffix))
	label != ""
	not contains(label, ".")
}

overlap(a, b) if covers(a, b)

overlap(a, b) if covers(b, a)

# --- TLS (Ingress) -------------------------------------------------------------------------------

tls_hosts := {norm(h) | some t in _list(object.get(spec, "tls", [])); some h in _list(t.hosts); is_string(h)}

deny contains {"msg": msg, "field": sprintf("spec.rules[%d].host", [i])} if {
	is_ingress
	some i, r in _list(object.get(spec, "rules", []))
	not _has_host(r)
	msg := sprintf("Ingress rule %d has no host; a catch-all rule would take every host", [i])
}

_has_host(r) if {
	is_string(r.host)
	r.host != ""
}

deny contains {"msg": msg, "field": field} if {
	is_ingress
	some field in ["defaultBackend", "backend"]
	spec[field]
	msg := sprintf("Ingress spec.%s would take every host; route named hosts only", [field])
}

deny contains {"msg": msg, "field": sprintf("spec.rules[%d].host", [i])} if {
	is_ingress
	some i, r in _list(object.get(spec, "rules", []))
	_has_host(r)
	h := norm(r.host)
	not _tls_covers(h)
	msg := sprintf("host %s is not covered by spec.tls[].hosts", [h])
}

_tls_covers(h) if {
	some t in tls_hosts
	covers(t, h)
}

deny contains {"msg": msg, "field": sprintf("spec.tls[%d].secretName", [i])} if {
	is_ingress
	some i, t in _list(object.get(spec, "tls", []))
	not _nonempty(t.secretName)
	msg := sprintf("spec.tls[%d] has no secretName for cert-manager to fill", [i])
}

_nonempty(s) if {
	is_string(s)
	s != ""
}

_issuer_keys := ["cert-manager.io/cluster-issuer", "cert-manager.io/issuer"]

deny contains {"msg": "Ingress needs a cert-manager.io/cluster-issuer or cert-manager.io/issuer annotation", "field": "metadata.annotations"} if {
	is_ingress
	not _has_issuer
}

_has_issuer if {
	some k in _issuer_keys
	_nonempty(k8s.annotations[k])
}

deny contains {"msg": msg, "field": "metadata.annotations[cert-manager.io/cluster-issuer]"} if {
	is_ingress
	issuer := k8s.annotations["cert-manager.io/cluster-issuer"]
	is_string(issuer)
	allowed := k8s.param("allowedClusterIssuers", [])
	count(allowed) > 0
	not issuer in allowed
	msg := sprintf("ClusterIssuer %q is not allowed (use %s)", [issuer, concat(", ", allowed)])
}

# --- tenant domains ------------------------------------------------------------------------------

domains := [norm(d) | some d in object.get(tenancy.tenant_config(tenancy.tenant), "domains", [])]

within(host, domain) if {
	h := trim_prefix(host, "*.")
	h == domain
}

within(host, domain) if endswith(trim_prefix(host, "*."), sprintf(".%s", [domain]))

deny contains {"msg": msg, "field": h.field} if {
	some h in hosts
	not _in_domains(h.host)
	msg := sprintf("host %s is outside the domains of %s", [h.host, _tenant_domains_text])
}

_in_domains(host) if {
	some d in domains
	within(host, d)
}

_tenant_domains_text := sprintf("tenant %q (%s)", [tenancy.tenant, concat(", ", domains)]) if {
	tenancy.tenant
} else := sprintf("namespace %q, which has no tenant", [k8s.namespace])

# --- hosts of other tenants ----------------------------------------------------------------------

# Hosts served by Ingresses and HTTPRoutes of other tenants' namespaces (or namespaces of no known tenant)
# in cluster state. The message does not say whose: tenants must not learn of each other.
foreign contains {"host": norm(host), "namespace": ns} if {
	some ns, gvs in _obj(data.inventory.namespace)
	ns != k8s.namespace
	not _same_tenant(ns)
	some gv, kinds in _obj(gvs)
	some kind, group_prefixes in {"Ingress": ["networking.k8s.io/", "extensions/"], "HTTPRoute": ["gateway.networking.k8s.io/"]}
	strings.any_prefix_match(gv, group_prefixes)
	some _, o in _obj(kinds[kind])
	some host in _object_hosts(kind, o)
}

_object_hosts("Ingress", o) := [r.host | some r in _list(o.spec.rules); is_string(r.host); r.host != ""]

_object_hosts("HTTPRoute", o) := [h | some h in _list(o.spec.hostnames); is_string(h)]

_same_tenant(ns) if tenancy.namespace_tenant(ns) == tenancy.tenant



deny contains {"msg": msg, "field": h.field} if {
	some h in hosts
	some f in foreign
	overlap(h.host, f.host)
	msg := sprintf("host %s is already served for another tenant", [h.host])
}

# --- HTTPRoute -----------------------------------------------------------------------------------

deny contains {"msg": "HTTPRoute has no hostnames; it would take every host of its Gateway", "field": "spec.hostnames"} if {
	is_route
	count(_list(object.get(spec, "hostnames", []))) == 0
}

# Every parent Gateway must be known and the route must attach to HTTPS listeners only.
deny contains {"msg": msg, "field": sprintf("spec.parentRefs[%d]", [i])} if {
	is_route
	some i, ref in _list(object.get(spec, "parentRefs", []))
	_is_gateway_ref(ref)
	not _gateway(ref)
	msg := sprintf("Gateway %s/%s is not known to regate's cluster state", [_ref_ns(ref), ref.name])
}

deny contains {"msg": msg, "field": sprintf("spec.parentRefs[%d]", [i])} if {
	is_route
	some i, ref in _list(object.get(spec, "parentRefs", []))
	_is_gateway_ref(ref)
	gw := _gateway(ref)
	some l in _listeners(gw, ref)
	l.protocol != "HTTPS"
	msg := sprintf("HTTPRoute attaches to listener %s (%s) of Gateway %s; use an HTTPS listener", [l.name, l.protocol, ref.name])
}

deny contains {"msg": msg, "field": sprintf("spec.parentRefs[%d].sectionName", [i])} if {
	is_route
	some i, ref in _list(object.get(spec, "parentRefs", []))
	_is_gateway_ref(ref)
	gw := _gateway(ref)
	is_string(ref.sectionName)
	count(_listeners(gw, ref)) == 0
	msg := sprintf("Gateway %s has no listener %q", [ref.name, ref.sectionName])
}

deny contains {"msg": "HTTPRoute needs at least one parentRef", "field": "spec.parentRefs"} if {
	is_route
	count(_list(object.get(spec, "parentRefs", []))) == 0
}

_is_gateway_ref(ref) if {
	object.get(ref, "kind", "Gateway") == "Gateway"
	object.get(ref, "group", "gateway.networking.k8s.io") == "gateway.networking.k8s.io"
}

_ref_ns(ref) := object.get(ref, "namespace", k8s.namespace)

_gateway(ref) := gw if {
	some gv, kinds in _obj(data.inventory.namespace[_ref_ns(ref)])
	startswith(gv, "gateway.networking.k8s.io/")
	gw := kinds.Gateway[ref.name]
}

# The listeners a parentRef attaches to: the named section, or every listener.
_listeners(gw, ref) := [l | some l in _list(gw.spec.listeners); l.name == ref.sectionName] if {
	is_string(ref.sectionName)
} else := _list(gw.spec.listeners)
