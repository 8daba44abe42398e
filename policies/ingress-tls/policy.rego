# METADATA
# title: Ingress TLS and host ownership
# description: >-
#   Ingresses serve every host over TLS with a certificate from cert-manager; every host an Ingress, a
#   Gateway API route or ListenerSet serves or asks a certificate for lies within the tenant's configured
#   domains, is named explicitly (no catch-all) and is not already served for another tenant; issuers are
#   the tenant's own or allow-listed ClusterIssuers. Routes attach only to HTTPS (TLS) listeners of known
#   Gateways and ListenerSets. cert-manager's own HTTP-01 solver Ingress/HTTPRoute is the one exception.
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
#         kinds: [HTTPRoute, GRPCRoute, TLSRoute, ListenerSet]
#       - apiGroups: [gateway.networking.x-k8s.io]
#         kinds: [XListenerSet]
#       - apiGroups: [cert-manager.io]
#         kinds: [Certificate, CertificateRequest]
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

# Gateway API routes with hostnames.
_route_kinds := {"HTTPRoute", "GRPCRoute", "TLSRoute"}

is_route if {
	k8s.kind in _route_kinds
	k8s.group == "gateway.networking.k8s.io"
	obj
}

# ListenerSets (Gateway API 1.3+ experimental XListenerSet, later ListenerSet) add listeners, with
# their own hostnames and certificates, to a platform Gateway from a tenant namespace.
_listenerset_groups := {"ListenerSet": "gateway.networking.k8s.io", "XListenerSet": "gateway.networking.x-k8s.io"}

is_listenerset if {
	k8s.group == _listenerset_groups[k8s.kind]
	obj
}

# cert-manager's own resources: a tenant may order certificates directly, without an Ingress.
is_certificate_resource if {
	k8s.group == "cert-manager.io"
	k8s.kind in {"Certificate", "CertificateRequest"}
	obj
}

# Objects whose annotations cert-manager reads to issue a certificate (ingress-shim, gateway-shim).
is_certificate_source if is_ingress

is_certificate_source if is_listenerset

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

hosts contains {"host": norm(l.hostname), "field": sprintf("spec.listeners[%d].hostname", [i])} if {
	is_listenerset
	some i, l in _list(object.get(spec, "listeners", []))
	is_string(l.hostname)
}

# Hosts that annotations add: ingress-nginx serves `server-alias` hosts in the Ingress's server block, and
# cert-manager puts `common-name` and `alt-names` into the certificate it orders.
hosts contains {"host": norm(ah[1]), "field": sprintf("metadata.annotations[%s]", [ah[0]])} if {
	some ah in annotation_hosts
}

annotation_hosts contains [_server_alias, h] if {
	is_ingress
	some h in _comma_list(k8s.annotations[_server_alias])
}

annotation_hosts contains [a, h] if {
	is_certificate_source
	some a in ["cert-manager.io/common-name", "cert-manager.io/alt-names"]
	some h in _comma_list(k8s.annotations[a])
}

_server_alias := "nginx.ingress.kubernetes.io/server-alias"

# A list annotation as its non-empty items, split at commas and at white space (ingress-nginx versions
# differ on server-alias: comma-separated now, put verbatim into nginx's space-separated server_name
# before), so every name any reading could serve is checked.
_comma_list(v) := [x | some x in regex.split(`[,\s]+`, v); x != ""] if is_string(v) else := []

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
	not http01_solver
	some i, r in _list(object.get(spec, "rules", []))
	_has_host(r)
	h := norm(r.host)
	not _tls_covers(h)
	msg := sprintf("host %s is not covered by spec.tls[].hosts", [h])
}

# ingress-nginx serves server-alias hosts with the Ingress's certificate: they need TLS as well.
deny contains {"msg": msg, "field": sprintf("metadata.annotations[%s]", [_server_alias])} if {
	is_ingress
	some a in _comma_list(k8s.annotations[_server_alias])
	h := norm(a)
	not _tls_covers(h)
	msg := sprintf("server alias %s is not covered by spec.tls[].hosts", [h])
}

_tls_covers(h) if {
	some t in tls_hosts
	covers(t, h)
}

deny contains {"msg": msg, "field": sprintf("spec.tls[%d].secretName", [i])} if {
	is_ingress
	some i, t in _list(object.get(spec, "tls", []))
	not _nonempty_field(t, "secretName")
	msg := sprintf("spec.tls[%d] has no secretName for cert-manager to fill", [i])
}

_nonempty(s) if {
	is_string(s)
	s != ""
}

# `obj[key]` is a non-empty string. The lookup is inside the function so that `not
# _nonempty_field(...)` holds for an absent field: Rego evaluates a negated call's operands outside
# the negation, so `not _nonempty(obj.field)` is undefined, not true, when the field is absent.
_nonempty_field(obj, key) if _nonempty(obj[key])

_issuer_keys := ["cert-manager.io/cluster-issuer", "cert-manager.io/issuer"]

deny contains {"msg": "Ingress needs a cert-manager.io/cluster-issuer or cert-manager.io/issuer annotation", "field": "metadata.annotations"} if {
	is_ingress
	not http01_solver
	not _has_issuer
}

_has_issuer if {
	some k in _issuer_keys
	_nonempty(k8s.annotations[k])
}

# The issuer cert-manager orders the certificate from, read as its ingress-shim and gateway-shim read
# the annotations: the name from cert-manager.io/cluster-issuer (kind ClusterIssuer) or else
# cert-manager.io/issuer (kind Issuer); cert-manager.io/issuer-kind and cert-manager.io/issuer-group,
# when present, override kind and group (empty means the defaults Issuer and cert-manager.io).
_cm := "cert-manager.io"

_issuer_name := n if {
	n := k8s.annotations["cert-manager.io/cluster-issuer"]
	is_string(n)
} else := n if {
	n := k8s.annotations["cert-manager.io/issuer"]
	is_string(n)
}

_issuer_kind := k if {
	k := k8s.annotations["cert-manager.io/issuer-kind"]
	_nonempty(k)
} else := "Issuer" if {
	is_string(k8s.annotations["cert-manager.io/issuer-kind"])
} else := "ClusterIssuer" if {
	is_string(k8s.annotations["cert-manager.io/cluster-issuer"])
} else := "Issuer"

_issuer_group := g if {
	g := k8s.annotations["cert-manager.io/issuer-group"]
	_nonempty(g)
} else := _cm

# The name annotation the issuer came from, for the field of a finding.
_issuer_field := "metadata.annotations[cert-manager.io/cluster-issuer]" if {
	is_string(k8s.annotations["cert-manager.io/cluster-issuer"])
} else := "metadata.annotations[cert-manager.io/issuer]"

deny contains {"msg": msg, "field": _issuer_field} if {
	is_certificate_source
	_issuer_group == _cm
	_issuer_kind == "ClusterIssuer"
	issuer := _issuer_name
	allowed := k8s.param("allowedClusterIssuers", [])
	count(allowed) > 0
	not issuer in allowed
	msg := sprintf("ClusterIssuer %q is not allowed (use %s)", [issuer, concat(", ", allowed)])
}

# Issuers of other kinds or API groups (external issuers, which may be cluster-scoped) are not
# allowed: only the namespace's own cert-manager Issuers and the allow-listed ClusterIssuers.
deny contains {"msg": msg, "field": "metadata.annotations[cert-manager.io/issuer-kind]"} if {
	is_certificate_source
	_issuer_group == _cm
	not _issuer_kind in {"Issuer", "ClusterIssuer"}
	msg := sprintf("issuer kind %q is not allowed (use Issuer or an allowed ClusterIssuer)", [_issuer_kind])
}

deny contains {"msg": msg, "field": "metadata.annotations[cert-manager.io/issuer-group]"} if {
	is_certificate_source
	_issuer_group != _cm
	msg := sprintf("issuer group %q is not allowed (only %s issuers)", [_issuer_group, _cm])
}

# Subject alternative names that are not DNS names cannot lie within a tenant's domains.
deny contains {"msg": msg, "field": sprintf("metadata.annotations[%s]", [a])} if {
	is_certificate_source
	some a in ["cert-manager.io/ip-sans", "cert-manager.io/uri-sans"]
	count(_comma_list(k8s.annotations[a])) > 0
	msg := sprintf("annotation %s is not allowed: certificates name hosts of the tenant's domains only", [a])
}

deny contains {"msg": msg, "field": "metadata.annotations[cert-manager.io/email-sans]"} if {
	is_certificate_source
	some e in _comma_list(k8s.annotations["cert-manager.io/email-sans"])
	d := norm(regex.replace(e, `^.*@`, ""))
	not _in_domains(d)
	msg := sprintf("email address %s is outside the domains of %s", [e, _tenant_domains_text])
}

# A Certificate or CertificateRequest names its issuer in spec.issuerRef (kind Issuer and group
# cert-manager.io by default), judged like the annotations.
_ref_issuer := _obj(object.get(spec, "issuerRef", {}))

_ref_issuer_kind := k if {
	k := _ref_issuer.kind
	_nonempty(k)
} else := "Issuer"

_ref_issuer_group := g if {
	g := _ref_issuer.group
	_nonempty(g)
} else := _cm

_from_cluster_issuer if {
	is_certificate_resource
	_ref_issuer_kind == "ClusterIssuer"
	_ref_issuer_group == _cm
}

deny contains {"msg": msg, "field": "spec.issuerRef.name"} if {
	_from_cluster_issuer
	issuer := object.get(_ref_issuer, "name", "")
	allowed := k8s.param("allowedClusterIssuers", [])
	count(allowed) > 0
	not issuer in allowed
	msg := sprintf("ClusterIssuer %q is not allowed (use %s)", [issuer, concat(", ", allowed)])
}

deny contains {"msg": msg, "field": "spec.issuerRef.kind"} if {
	is_certificate_resource
	_ref_issuer_group == _cm
	not _ref_issuer_kind in {"Issuer", "ClusterIssuer"}
	msg := sprintf("issuer kind %q is not allowed (use Issuer or an allowed ClusterIssuer)", [_ref_issuer_kind])
}

deny contains {"msg": msg, "field": "spec.issuerRef.group"} if {
	is_certificate_resource
	_ref_issuer_group != _cm
	msg := sprintf("issuer group %q is not allowed (only %s issuers)", [_ref_issuer_group, _cm])
}

# A ClusterIssuer is the platform's: its solvers (DNS-01 with the platform's credentials, say) obtain a
# certificate for any name of the zone. A Certificate from one names hosts of the tenant's domains only
# (its dnsNames and commonName are hosts above, checked for domains and collisions), and no IP or URI
# SANs. A namespaced Issuer is the tenant's own (its own CA or DNS credentials) and is not restricted.
hosts contains {"host": norm(n), "field": sprintf("spec.dnsNames[%d]", [i])} if {
	_from_cluster_issuer
	some i, n in _list(object.get(spec, "dnsNames", []))
	is_string(n)
}

hosts contains {"host": norm(spec.commonName), "field": "spec.commonName"} if {
	_from_cluster_issuer
	_nonempty(spec.commonName)
}

deny contains {"msg": msg, "field": sprintf("spec.%s", [f])} if {
	_from_cluster_issuer
	some f in ["ipAddresses", "uris", "otherNames"]
	count(_list(object.get(spec, f, []))) > 0
	msg := sprintf("Certificate from ClusterIssuer %q may not request %s; certificates name hosts of the tenant's domains only", [object.get(_ref_issuer, "name", ""), f])
}

deny contains {"msg": msg, "field": "spec.emailAddresses"} if {
	_from_cluster_issuer
	some e in _list(object.get(spec, "emailAddresses", []))
	d := norm(regex.replace(sprintf("%v", [e]), `^.*@`, ""))
	not _in_domains(d)
	msg := sprintf("email address %v is outside the domains of %s", [e, _tenant_domains_text])
}

# A CertificateRequest carries its names inside a PEM CSR, which Rego cannot read: to a ClusterIssuer
# only cert-manager itself sends one (for a Certificate, which was checked above).
deny contains {"msg": msg, "field": "spec.issuerRef"} if {
	_from_cluster_issuer
	k8s.kind == "CertificateRequest"
	not k8s.username in k8s.param("certManagerControllers", [])
	msg := sprintf("CertificateRequests to ClusterIssuer %q come from cert-manager only; create a Certificate", [object.get(_ref_issuer, "name", "")])
}

# --- cert-manager's HTTP-01 solver --------------------------------------------------------------

# For an HTTP-01 challenge cert-manager creates, in the namespace of the Certificate, an Ingress (or an
# HTTPRoute attached to the listeners its Issuer names, usually plain HTTP) that routes exactly
# /.well-known/acme-challenge/<token> on the challenged host to its solver Service
# (cm-acme-http-solver-*, port 8089), labelled acme.cert-manager.io/http01-solver=true. Written by
# cert-manager's identity (certManagerControllers) in exactly that shape, it needs no TLS or issuer of
# its own and may use an HTTP listener; every host check still applies.
_solver_path := `^/\.well-known/acme-challenge/[A-Za-z0-9_-]+$`

_solver_service_prefix := "cm-acme-http-solver-"

_acme_solver_port := 8089

_by_solver if {
	k8s.username in k8s.param("certManagerControllers", [])
	k8s.labels["acme.cert-manager.io/http01-solver"] == "true"
}

http01_solver if {
	is_ingress
	_by_solver
	count(_list(object.get(spec, "tls", []))) == 0
	object.get(spec, "defaultBackend", null) == null
	object.get(spec, "backend", null) == null
	not k8s.annotations[_server_alias]
	rules := _list(object.get(spec, "rules", []))
	count(rules) == 1
	_has_host(rules[0])
	paths := _list(object.get(rules[0], ["http", "paths"], []))
	count(paths) == 1
	regex.match(_solver_path, paths[0].path)
	object.get(paths[0], "pathType", "ImplementationSpecific") in {"ImplementationSpecific", "Exact"}
	svc := paths[0].backend.service
	startswith(svc.name, _solver_service_prefix)
	svc.port.number == _acme_solver_port
	object.keys(paths[0].backend) == {"service"}
}

http01_solver if {
	k8s.kind == "HTTPRoute"
	is_route
	_by_solver
	count(_list(object.get(spec, "hostnames", []))) == 1
	rules := _list(object.get(spec, "rules", []))
	count(rules) == 1
	matches := _list(object.get(rules[0], "matches", []))
	count(matches) == 1
	object.get(matches[0], ["path", "type"], "PathPrefix") == "Exact"
	regex.match(_solver_path, matches[0].path.value)
	backends := _list(object.get(rules[0], "backendRefs", []))
	count(backends) == 1
	b := backends[0]
	object.get(b, "group", "") == ""
	object.get(b, "kind", "Service") == "Service"
	object.get(b, "namespace", k8s.namespace) == k8s.namespace
	startswith(b.name, _solver_service_prefix)
	b.port == _acme_solver_port
	count(_list(object.get(rules[0], "filters", []))) == 0
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
	some kind, group_prefixes in _served_kinds
	strings.any_prefix_match(gv, group_prefixes)
	some _, o in _obj(kinds[kind])
	some host in _object_hosts(kind, o)
}

_served_kinds := {
	"Ingress": ["networking.k8s.io/", "extensions/"],
	"HTTPRoute": ["gateway.networking.k8s.io/"],
	"GRPCRoute": ["gateway.networking.k8s.io/"],
	"TLSRoute": ["gateway.networking.k8s.io/"],
	"ListenerSet": ["gateway.networking.k8s.io/"],
	"XListenerSet": ["gateway.networking.x-k8s.io/"],
}

_object_hosts("Ingress", o) := array.concat(
	[r.host | some r in _list(o.spec.rules); is_string(r.host); r.host != ""],
	_comma_list(object.get(o, ["metadata", "annotations", _server_alias], "")),
)

_object_hosts(kind, o) := [h | some h in _list(o.spec.hostnames); is_string(h)] if kind in _route_kinds

_object_hosts(kind, o) := [l.hostname | some l in _list(o.spec.listeners); is_string(l.hostname)] if _listenerset_groups[kind]

_same_tenant(ns) if tenancy.namespace_tenant(ns) == tenancy.tenant



deny contains {"msg": msg, "field": h.field} if {
	some h in hosts
	some f in foreign
	overlap(h.host, f.host)
	msg := sprintf("host %s is already served for another tenant", [h.host])
}

# --- Gateway API routes -------------------------------------------------------------------------

deny contains {"msg": msg, "field": "spec.hostnames"} if {
	is_route
	count(_list(object.get(spec, "hostnames", []))) == 0
	msg := sprintf("%s has no hostnames; it would take every host of its Gateway", [k8s.kind])
}

deny contains {"msg": msg, "field": "spec.parentRefs"} if {
	is_route
	count(_list(object.get(spec, "parentRefs", []))) == 0
	msg := sprintf("%s needs at least one parentRef", [k8s.kind])
}

# Parents a route may attach to: Gateways, ListenerSets (which attach to a Gateway in turn) and, for
# mesh (GAMMA) routing inside the cluster, a Service. Any other kind could be a CRD a tenant controls.
_parent_kinds := {
	"Gateway": "gateway.networking.k8s.io",
	"ListenerSet": "gateway.networking.k8s.io",
	"XListenerSet": "gateway.networking.x-k8s.io",
}

_ref_kind(ref) := object.get(ref, "kind", "Gateway")

_ref_group(ref) := object.get(ref, "group", "gateway.networking.k8s.io")

_listener_parent(ref) if _parent_kinds[_ref_kind(ref)] == _ref_group(ref)

_mesh_parent(ref) if {
	_ref_kind(ref) == "Service"
	_ref_group(ref) == ""
}

deny contains {"msg": msg, "field": sprintf("spec.parentRefs[%d]", [i])} if {
	is_route
	some i, ref in _list(object.get(spec, "parentRefs", []))
	not _listener_parent(ref)
	not _mesh_parent(ref)
	msg := sprintf("%s parentRef kind %s (group %q) is not allowed; attach to a Gateway or ListenerSet", [k8s.kind, _ref_kind(ref), _ref_group(ref)])
}

# Every parent Gateway or ListenerSet must be known, and the route must attach to HTTPS listeners only
# (TLS listeners for a TLSRoute); cert-manager's HTTP-01 solver route is the exception.
deny contains {"msg": msg, "field": sprintf("spec.parentRefs[%d]", [i])} if {
	is_route
	some i, ref in _list(object.get(spec, "parentRefs", []))
	_listener_parent(ref)
	not _parent(ref)
	msg := sprintf("%s %s/%s is not known to regate's cluster state", [_ref_kind(ref), _ref_ns(ref), ref.name])
}

_route_protocol := "TLS" if k8s.kind == "TLSRoute" else := "HTTPS"

deny contains {"msg": msg, "field": sprintf("spec.parentRefs[%d]", [i])} if {
	is_route
	not http01_solver
	some i, ref in _list(object.get(spec, "parentRefs", []))
	_listener_parent(ref)
	parent := _parent(ref)
	some l in _listeners(parent, ref)
	l.protocol != _route_protocol
	msg := sprintf("%s attaches to listener %s (%s) of %s %s; attach to %s listeners only", [k8s.kind, l.name, l.protocol, _ref_kind(ref), ref.name, _route_protocol])
}

deny contains {"msg": msg, "field": sprintf("spec.parentRefs[%d].sectionName", [i])} if {
	is_route
	some i, ref in _list(object.get(spec, "parentRefs", []))
	_listener_parent(ref)
	parent := _parent(ref)
	is_string(ref.sectionName)
	count(_listeners(parent, ref)) == 0
	msg := sprintf("%s %s has no listener %q", [_ref_kind(ref), ref.name, ref.sectionName])
}

_ref_ns(ref) := object.get(ref, "namespace", k8s.namespace)

# The parent object from cluster state, looked up under its own kind and API group.
_parent(ref) := p if {
	kind := _ref_kind(ref)
	some gv, kinds in _obj(data.inventory.namespace[_ref_ns(ref)])
	startswith(gv, sprintf("%s/", [_parent_kinds[kind]]))
	p := kinds[kind][ref.name]
}

# The listeners a parentRef attaches to: the named section, or every listener.
_listeners(parent, ref) := [l | some l in _list(parent.spec.listeners); l.name == ref.sectionName] if {
	is_string(ref.sectionName)
} else := _list(parent.spec.listeners)

# --- ListenerSets --------------------------------------------------------------------------------

# Every listener of a ListenerSet names its host (its hostname is checked like any host above) and
# terminates TLS: a tenant's listener is served by the platform's Gateway.
deny contains {"msg": msg, "field": sprintf("spec.listeners[%d].hostname", [i])} if {
	is_listenerset
	some i, l in _list(object.get(spec, "listeners", []))
	not _nonempty_field(l, "hostname")
	msg := sprintf("%s listener %v has no hostname; it would take every host of its Gateway", [k8s.kind, object.get(l, "name", i)])
}

deny contains {"msg": msg, "field": sprintf("spec.listeners[%d].protocol", [i])} if {
	is_listenerset
	some i, l in _list(object.get(spec, "listeners", []))
	not object.get(l, "protocol", "") in {"HTTPS", "TLS"}
	msg := sprintf("%s listener %v uses protocol %v; use HTTPS or TLS", [k8s.kind, object.get(l, "name", i), object.get(l, "protocol", null)])
}
