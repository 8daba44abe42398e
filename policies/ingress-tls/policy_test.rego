package regate.policies.ingress_tls_test

import data.regate.lib.testing as fx
import data.regate.policies.ingress_tls as it

params := {"allowedClusterIssuers": ["letsencrypt-prod", "letsencrypt-staging"]}

ingress(hosts, tls_hosts, annotations) := {
	"apiVersion": "networking.k8s.io/v1",
	"kind": "Ingress",
	"metadata": {"name": "web", "namespace": "shop-prod", "labels": {fx.key: "shop"}, "annotations": annotations},
	"spec": {
		"ingressClassName": "nginx",
		"tls": [{"hosts": tls_hosts, "secretName": "web-tls"}],
		"rules": [{"host": h, "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}} | some h in hosts],
	},
}

le := {"cert-manager.io/cluster-issuer": "letsencrypt-prod"}

ireq(obj) := {"review": object.union(fx.request("Ingress", obj), {"kind": {"group": "networking.k8s.io", "version": "v1", "kind": "Ingress"}, "resource": {"group": "networking.k8s.io", "resource": "ingresses"}}), "parameters": params}

deny(inp) := v if {
	v := it.deny with input as inp with data.inventory as fx.inventory with data.regate.config as fx.config
}

deny_inv(inp, inv) := v if {
	v := it.deny with input as inp with data.inventory as inv with data.regate.config as fx.config
}

test_compliant_ingress_is_allowed if {
	count(deny(ireq(ingress(["shop.example.eu", "www.shop.example.eu"], ["shop.example.eu", "www.shop.example.eu"], le)))) == 0
}

test_wildcard_tls_covers_one_label if {
	count(deny(ireq(ingress(["api.shop.example.eu"], ["*.shop.example.eu"], le)))) == 0
	fx.has(deny(ireq(ingress(["a.b.shop.example.eu"], ["*.shop.example.eu"], le))), "host a.b.shop.example.eu is not covered by spec.tls[].hosts")
}

test_host_without_tls_is_denied if {
	v := deny(ireq(ingress(["shop.example.eu", "admin.shop.example.eu"], ["shop.example.eu"], le)))
	fx.has(v, "host admin.shop.example.eu is not covered by spec.tls[].hosts")
	"spec.rules[1].host" in fx.fields(v)
}

test_ingress_without_tls_section_is_denied if {
	i := object.remove(ingress(["shop.example.eu"], [], le), ["spec"])
	v := deny(ireq(object.union(i, {"spec": {"rules": [{"host": "shop.example.eu"}]}})))
	fx.has(v, "not covered by spec.tls[].hosts")
}

test_missing_secret_name_is_denied if {
	i := ingress(["shop.example.eu"], ["shop.example.eu"], le)
	v := deny(ireq(object.union(i, {"spec": {"tls": [{"hosts": ["shop.example.eu"]}]}})))
	fx.has(v, "spec.tls[0] has no secretName")
}

test_missing_issuer_annotation_is_denied if {
	fx.has(deny(ireq(ingress(["shop.example.eu"], ["shop.example.eu"], {}))), "needs a cert-manager.io/cluster-issuer or cert-manager.io/issuer annotation")
	fx.has(deny(ireq(ingress(["shop.example.eu"], ["shop.example.eu"], {"cert-manager.io/cluster-issuer": ""}))), "needs a cert-manager.io")
}

test_namespaced_issuer_is_allowed if {
	count(deny(ireq(ingress(["shop.example.eu"], ["shop.example.eu"], {"cert-manager.io/issuer": "shop-acme"})))) == 0
}

test_unlisted_cluster_issuer_is_denied if {
	fx.has(deny(ireq(ingress(["shop.example.eu"], ["shop.example.eu"], {"cert-manager.io/cluster-issuer": "selfsigned"}))), `ClusterIssuer "selfsigned" is not allowed`)
}

test_any_cluster_issuer_when_list_is_empty if {
	inp := object.union(ireq(ingress(["shop.example.eu"], ["shop.example.eu"], {"cert-manager.io/cluster-issuer": "selfsigned"})), {"parameters": {"allowedClusterIssuers": []}})
	count(deny(inp)) == 0
}

test_host_outside_tenant_domains_is_denied if {
	every host in ["evilshop.example.eu", "example.eu", "shop.example.eu.evil.io", "pay.billing.example.eu", "*.example.eu"] {
		fx.has(deny(ireq(ingress([host], [host], le))), sprintf(`host %s is outside the domains of tenant "shop" (shop.example.eu)`, [host]))
	}
}

test_hosts_are_case_insensitive if {
	count(deny(ireq(ingress(["Shop.Example.EU."], ["SHOP.example.eu"], le)))) == 0
}

test_tls_host_outside_domains_is_denied if {
	v := deny(ireq(ingress(["shop.example.eu"], ["shop.example.eu", "billing.example.eu"], le)))
	fx.has(v, "host billing.example.eu is outside the domains")
	"spec.tls[0].hosts[1]" in fx.fields(v)
}

test_namespace_without_tenant_has_no_domains if {
	r := ireq(ingress(["shop.example.eu"], ["shop.example.eu"], le))
	fx.has(deny({"review": object.union(r.review, {"namespace": "legacy"}), "parameters": params}), `outside the domains of namespace "legacy", which has no tenant`)
}

test_catch_all_rules_are_denied if {
	i := ingress(["shop.example.eu"], ["shop.example.eu"], le)
	v := deny(ireq(object.union(i, {"spec": {"rules": [{"host": "shop.example.eu"}, {"http": {}}], "defaultBackend": {"service": {"name": "web"}}}})))
	fx.has(v, "Ingress rule 1 has no host")
	fx.has(v, "Ingress spec.defaultBackend would take every host")
}

test_legacy_backend_field_is_denied if {
	i := ingress(["shop.example.eu"], ["shop.example.eu"], le)
	fx.has(deny(ireq(object.union(i, {"spec": {"backend": {"serviceName": "web"}}}))), "spec.backend would take every host")
}

# Host collision with another tenant's Ingress in cluster state.
test_host_of_another_tenant_is_denied if {
	inv := object.union(fx.inventory, {"cluster": {"v1": {"Namespace": {"shop-prod": fx.namespace("shop-prod", "billing")}}}})
	cfg := object.union(fx.config, {"tenancy": {"tenants": {"billing": {"domains": ["billing.example.eu", "shared.example.eu"]}}}})
	i := ingress(["pay.billing.example.eu"], ["pay.billing.example.eu"], le)
	v := it.deny with input as ireq(i) with data.inventory as object.union(inv, {"cluster": {"v1": {"Namespace": {"billing-dev": fx.namespace("billing-dev", "shop")}}}}) with data.regate.config as cfg
	count(v) == 0
}

test_host_collision_across_tenants_is_denied if {
	cfg := object.union(fx.config, {"tenancy": {"tenants": {"shop": {"domains": ["shop.example.eu", "shared.example.eu"]}}}})
	inv := object.union(fx.inventory, {"namespace": {"billing-prod": {"networking.k8s.io/v1": {"Ingress": {"promo": fx.ingress("billing-prod", "promo", "promo.shared.example.eu")}}}}})
	v := it.deny with input as ireq(ingress(["promo.shared.example.eu"], ["promo.shared.example.eu"], le)) with data.inventory as inv with data.regate.config as cfg
	fx.has(v, "host promo.shared.example.eu is already served for another tenant")
	not fx.has(v, "billing")
}

test_wildcard_collision_is_denied if {
	cfg := object.union(fx.config, {"tenancy": {"tenants": {"shop": {"domains": ["shop.example.eu", "shared.example.eu"]}}}})
	inv := object.union(fx.inventory, {"namespace": {"billing-prod": {"networking.k8s.io/v1": {"Ingress": {"promo": fx.ingress("billing-prod", "promo", "*.shared.example.eu")}}}}})
	v := it.deny with input as ireq(ingress(["promo.shared.example.eu"], ["promo.shared.example.eu"], le)) with data.inventory as inv with data.regate.config as cfg
	fx.has(v, "is already served for another tenant")
}

test_same_tenant_other_namespace_is_no_collision if {
	inv := object.union(fx.inventory, {"namespace": {"shop-dev": {"networking.k8s.io/v1": {"Ingress": {"web": fx.ingress("shop-dev", "web", "shop.example.eu")}}}}})
	count(deny_inv(ireq(ingress(["shop.example.eu"], ["shop.example.eu"], le)), inv)) == 0
}

test_own_ingress_in_inventory_is_no_collision if {
	inv := object.union(fx.inventory, {"namespace": {"shop-prod": {"networking.k8s.io/v1": {"Ingress": {"web": ingress(["shop.example.eu"], ["shop.example.eu"], le)}}}}})
	count(deny_inv(ireq(ingress(["shop.example.eu"], ["shop.example.eu"], le)), inv)) == 0
}

test_collision_with_namespace_without_tenant if {
	cfg := object.union(fx.config, {"tenancy": {"tenants": {"shop": {"domains": ["shop.example.eu", "shared.example.eu"]}}}})
	inv := object.union(fx.inventory, {"namespace": {"legacy": {"networking.k8s.io/v1": {"Ingress": {"old": fx.ingress("legacy", "old", "old.shared.example.eu")}}}}})
	v := it.deny with input as ireq(ingress(["old.shared.example.eu"], ["old.shared.example.eu"], le)) with data.inventory as inv with data.regate.config as cfg
	fx.has(v, "host old.shared.example.eu is already served for another tenant")
}

test_update_changing_host_is_checked if {
	new := ingress(["evil.example.eu"], ["evil.example.eu"], le)
	r := ireq(new)
	fx.has(deny({"review": object.union(r.review, {"operation": "UPDATE", "oldObject": ingress(["shop.example.eu"], ["shop.example.eu"], le)}), "parameters": params}), "outside the domains")
}

test_delete_is_not_checked_and_does_not_crash if {
	r := ireq(ingress(["x.example.eu"], [], {}))
	count(deny({"review": object.union(r.review, {"operation": "DELETE", "object": null, "oldObject": ingress(["x.example.eu"], [], {})}), "parameters": params})) == 0
}

# --- HTTPRoute ---

gateway(listeners) := {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "metadata": {"name": "public", "namespace": "gateway-system"}, "spec": {"gatewayClassName": "cilium", "listeners": listeners}}

https := {"name": "https", "protocol": "HTTPS", "port": 443, "tls": {"certificateRefs": [{"name": "wildcard"}]}}

http := {"name": "http", "protocol": "HTTP", "port": 80}

gw_inv(listeners) := object.union(fx.inventory, {"namespace": {"gateway-system": {"gateway.networking.k8s.io/v1": {"Gateway": {"public": gateway(listeners)}}}}})

route(hostnames, parent) := {
	"apiVersion": "gateway.networking.k8s.io/v1",
	"kind": "HTTPRoute",
	"metadata": {"name": "web", "namespace": "shop-prod"},
	"spec": {"hostnames": hostnames, "parentRefs": [parent], "rules": [{"backendRefs": [{"name": "web", "port": 80}]}]},
}

rreq(obj) := {"review": object.union(fx.request("HTTPRoute", obj), {"kind": {"group": "gateway.networking.k8s.io", "version": "v1", "kind": "HTTPRoute"}}), "parameters": params}

test_route_to_https_listener_is_allowed if {
	r := route(["shop.example.eu"], {"name": "public", "namespace": "gateway-system", "sectionName": "https"})
	count(deny_inv(rreq(r), gw_inv([http, https]))) == 0
	r2 := route(["shop.example.eu"], {"name": "public", "namespace": "gateway-system"})
	count(deny_inv(rreq(r2), gw_inv([https]))) == 0
}

test_route_to_http_listener_is_denied if {
	r := route(["shop.example.eu"], {"name": "public", "namespace": "gateway-system", "sectionName": "http"})
	fx.has(deny_inv(rreq(r), gw_inv([http, https])), "HTTPRoute attaches to listener http (HTTP) of Gateway public")
	r2 := route(["shop.example.eu"], {"name": "public", "namespace": "gateway-system"})
	fx.has(deny_inv(rreq(r2), gw_inv([http, https])), "listener http (HTTP)")
}

test_route_to_unknown_gateway_or_listener_is_denied if {
	r := route(["shop.example.eu"], {"name": "public", "namespace": "gateway-system", "sectionName": "https"})
	fx.has(deny(rreq(r)), "Gateway gateway-system/public is not known to regate's cluster state")
	r2 := route(["shop.example.eu"], {"name": "public", "namespace": "gateway-system", "sectionName": "nope"})
	fx.has(deny_inv(rreq(r2), gw_inv([https])), `Gateway public has no listener "nope"`)
}

test_route_hostnames_are_checked if {
	p := {"name": "public", "namespace": "gateway-system", "sectionName": "https"}
	fx.has(deny_inv(rreq(route(["pay.billing.example.eu"], p)), gw_inv([https])), "host pay.billing.example.eu is outside the domains")
	fx.has(deny_inv(rreq(route([], p)), gw_inv([https])), "HTTPRoute has no hostnames")
	fx.has(deny_inv(rreq(object.remove(route(["shop.example.eu"], p), ["spec"])), gw_inv([https])), "HTTPRoute has no hostnames")
}

test_route_without_parent_is_denied if {
	r := route(["shop.example.eu"], {})
	fx.has(deny(rreq(object.union(r, {"spec": {"parentRefs": []}}))), "HTTPRoute needs at least one parentRef")
}

test_route_colliding_with_other_tenants_route_is_denied if {
	cfg := object.union(fx.config, {"tenancy": {"tenants": {"shop": {"domains": ["shop.example.eu", "shared.example.eu"]}}}})
	other := {"spec": {"hostnames": ["promo.shared.example.eu"]}}
	inv := object.union(gw_inv([https]), {"namespace": {"billing-prod": {"gateway.networking.k8s.io/v1": {"HTTPRoute": {"promo": other}}}}})
	r := route(["promo.shared.example.eu"], {"name": "public", "namespace": "gateway-system", "sectionName": "https"})
	v := it.deny with input as rreq(r) with data.inventory as inv with data.regate.config as cfg
	fx.has(v, "is already served for another tenant")
}

test_route_to_non_gateway_parent_is_not_checked_as_gateway if {
	r := route(["shop.example.eu"], {"group": "", "kind": "Service", "name": "web"})
	count(deny(rreq(r))) == 0
}

# --- cert-manager annotations that choose the issuer or add names ---

test_issuer_kind_cannot_turn_an_issuer_into_a_cluster_issuer if {
	a := {"cert-manager.io/issuer": "selfsigned", "cert-manager.io/issuer-kind": "ClusterIssuer"}
	v := deny(ireq(ingress(["shop.example.eu"], ["shop.example.eu"], a)))
	fx.has(v, `ClusterIssuer "selfsigned" is not allowed`)
	"metadata.annotations[cert-manager.io/issuer]" in fx.fields(v)
	# an allowed ClusterIssuer named through issuer + issuer-kind is fine
	ok := {"cert-manager.io/issuer": "letsencrypt-prod", "cert-manager.io/issuer-kind": "ClusterIssuer", "cert-manager.io/issuer-group": "cert-manager.io"}
	count(deny(ireq(ingress(["shop.example.eu"], ["shop.example.eu"], ok)))) == 0
}

test_issuer_kind_issuer_or_empty_is_the_namespace_issuer if {
	every a in [
		{"cert-manager.io/cluster-issuer": "anything", "cert-manager.io/issuer-kind": "Issuer"},
		{"cert-manager.io/issuer": "shop-acme", "cert-manager.io/issuer-kind": ""},
		{"cert-manager.io/issuer": "shop-acme", "cert-manager.io/issuer-group": ""},
	] {
		count(deny(ireq(ingress(["shop.example.eu"], ["shop.example.eu"], a)))) == 0
	}
}

test_other_issuer_kinds_and_groups_are_denied if {
	k := {"cert-manager.io/issuer": "pca", "cert-manager.io/issuer-kind": "AWSPCAClusterIssuer"}
	fx.has(deny(ireq(ingress(["shop.example.eu"], ["shop.example.eu"], k))), `issuer kind "AWSPCAClusterIssuer" is not allowed`)
	g := {"cert-manager.io/issuer": "pca", "cert-manager.io/issuer-kind": "AWSPCAClusterIssuer", "cert-manager.io/issuer-group": "awspca.cert-manager.io"}
	v := deny(ireq(ingress(["shop.example.eu"], ["shop.example.eu"], g)))
	fx.has(v, `issuer group "awspca.cert-manager.io" is not allowed`)
	"metadata.annotations[cert-manager.io/issuer-group]" in fx.fields(v)
	not fx.has(v, "issuer kind")
}

test_certificate_names_from_annotations_stay_in_tenant_domains if {
	cases := {
		"cert-manager.io/common-name": "pay.billing.example.eu",
		"cert-manager.io/alt-names": "www.shop.example.eu, pay.billing.example.eu",
	}
	every a, names in cases {
		v := deny(ireq(ingress(["shop.example.eu"], ["shop.example.eu"], object.union(le, {a: names}))))
		fx.has(v, `host pay.billing.example.eu is outside the domains of tenant "shop"`)
		sprintf("metadata.annotations[%s]", [a]) in fx.fields(v)
	}
	ok := object.union(le, {"cert-manager.io/common-name": "shop.example.eu", "cert-manager.io/alt-names": "www.shop.example.eu,api.shop.example.eu,"})
	count(deny(ireq(ingress(["shop.example.eu"], ["shop.example.eu"], ok)))) == 0
}

test_certificate_name_of_another_tenant_collides if {
	a := object.union(le, {"cert-manager.io/alt-names": "pay.billing.example.eu"})
	cfg := object.union(fx.config, {"tenancy": {"tenants": {"shop": {"domains": ["shop.example.eu", "billing.example.eu"]}}}})
	v := it.deny with input as ireq(ingress(["shop.example.eu"], ["shop.example.eu"], a)) with data.inventory as fx.inventory with data.regate.config as cfg
	fx.has(v, "host pay.billing.example.eu is already served for another tenant")
}

test_non_dns_subject_alternative_names_are_denied if {
	every a in ["cert-manager.io/ip-sans", "cert-manager.io/uri-sans"] {
		fx.has(deny(ireq(ingress(["shop.example.eu"], ["shop.example.eu"], object.union(le, {a: "10.0.0.1,spiffe://x"})))), sprintf("annotation %s is not allowed", [a]))
	}
	e := object.union(le, {"cert-manager.io/email-sans": "ops@shop.example.eu,admin@billing.example.eu"})
	v := deny(ireq(ingress(["shop.example.eu"], ["shop.example.eu"], e)))
	fx.has(v, "email address admin@billing.example.eu is outside the domains")
	not fx.has(v, "ops@shop.example.eu")
	count(deny(ireq(ingress(["shop.example.eu"], ["shop.example.eu"], object.union(le, {"cert-manager.io/ip-sans": " , "}))))) == 0
}

# --- ingress-nginx server aliases ---

alias(hosts) := {"nginx.ingress.kubernetes.io/server-alias": hosts}

test_server_alias_hosts_stay_in_tenant_domains_and_tls if {
	v := deny(ireq(ingress(["shop.example.eu"], ["shop.example.eu"], object.union(le, alias("shop.example.eu, pay.billing.example.eu")))))
	fx.has(v, `host pay.billing.example.eu is outside the domains of tenant "shop"`)
	fx.has(v, "server alias pay.billing.example.eu is not covered by spec.tls[].hosts")
	"metadata.annotations[nginx.ingress.kubernetes.io/server-alias]" in fx.fields(v)
	fx.has(deny(ireq(ingress(["shop.example.eu"], ["shop.example.eu"], object.union(le, alias("www.shop.example.eu"))))), "server alias www.shop.example.eu is not covered")
	count(deny(ireq(ingress(["shop.example.eu"], ["shop.example.eu", "*.shop.example.eu"], object.union(le, alias("www.shop.example.eu,WWW2.shop.example.eu.")))))) == 0
	# space-separated, as older ingress-nginx put the value into server_name verbatim
	fx.has(deny(ireq(ingress(["shop.example.eu"], ["shop.example.eu", "*.shop.example.eu"], object.union(le, alias("www.shop.example.eu pay.billing.example.eu"))))), "host pay.billing.example.eu is outside the domains")
}

test_server_alias_of_another_tenant_collides if {
	other := object.union(fx.ingress("billing-prod", "promo", "promo.billing.example.eu"), {"metadata": {"annotations": alias("deals.shared.example.eu")}})
	inv := object.union(fx.inventory, {"namespace": {"billing-prod": {"networking.k8s.io/v1": {"Ingress": {"promo": other}}}}})
	cfg := object.union(fx.config, {"tenancy": {"tenants": {"shop": {"domains": ["shop.example.eu", "shared.example.eu"]}}}})
	h := "deals.shared.example.eu"
	v := it.deny with input as ireq(ingress([h], [h], le)) with data.inventory as inv with data.regate.config as cfg
	fx.has(v, "host deals.shared.example.eu is already served for another tenant")
}

# --- other route kinds and parents that are not Gateways ---

kreq(kind, group, obj) := {"review": object.union(fx.request(kind, obj), {"kind": {"group": group, "version": "v1", "kind": kind}, "resource": {"group": group, "resource": sprintf("%ss", [lower(kind)])}}), "parameters": params}

gwp := {"name": "public", "namespace": "gateway-system", "sectionName": "https"}

test_grpc_and_tls_routes_are_checked_like_http_routes if {
	every kind in ["GRPCRoute", "TLSRoute"] {
		r := object.union(route(["pay.billing.example.eu"], gwp), {"kind": kind})
		fx.has(deny_inv(kreq(kind, "gateway.networking.k8s.io", r), gw_inv([https])), "host pay.billing.example.eu is outside the domains")
		fx.has(deny_inv(kreq(kind, "gateway.networking.k8s.io", route([], gwp)), gw_inv([https])), sprintf("%s has no hostnames", [kind]))
		fx.has(deny_inv(kreq(kind, "gateway.networking.k8s.io", object.union(route(["shop.example.eu"], gwp), {"spec": {"parentRefs": []}})), gw_inv([https])), sprintf("%s needs at least one parentRef", [kind]))
	}
	count(deny_inv(kreq("GRPCRoute", "gateway.networking.k8s.io", route(["api.shop.example.eu"], gwp)), gw_inv([https]))) == 0
}

test_tls_route_needs_a_tls_listener if {
	tls := {"name": "tls", "protocol": "TLS", "port": 443, "tls": {"mode": "Passthrough"}}
	p := {"name": "public", "namespace": "gateway-system"}
	fx.has(deny_inv(kreq("TLSRoute", "gateway.networking.k8s.io", route(["db.shop.example.eu"], object.union(p, {"sectionName": "https"}))), gw_inv([https, tls])), "TLSRoute attaches to listener https (HTTPS) of Gateway public; attach to TLS listeners only")
	count(deny_inv(kreq("TLSRoute", "gateway.networking.k8s.io", route(["db.shop.example.eu"], object.union(p, {"sectionName": "tls"}))), gw_inv([https, tls]))) == 0
}

listenerset(kind, listeners, annotations) := {
	"apiVersion": "gateway.networking.k8s.io/v1",
	"kind": kind,
	"metadata": {"name": "extra", "namespace": "shop-prod", "labels": {fx.key: "shop"}, "annotations": annotations},
	"spec": {"parentRef": {"name": "public", "namespace": "gateway-system"}, "listeners": listeners},
}

ls_https(host) := {"name": "shop-https", "protocol": "HTTPS", "port": 443, "hostname": host, "tls": {"certificateRefs": [{"name": "shop-tls"}]}}

ls_inv(kind, group, listeners) := object.union(fx.inventory, {"namespace": {"shop-prod": {sprintf("%s/v1", [group]): {kind: {"extra": listenerset(kind, listeners, {})}}}}})

test_route_to_a_listenerset_is_checked_like_a_gateway if {
	every kind, group in {"ListenerSet": "gateway.networking.k8s.io", "XListenerSet": "gateway.networking.x-k8s.io"} {
		ref := {"group": group, "kind": kind, "name": "extra"}
		fx.has(deny(rreq(route(["shop.example.eu"], ref))), sprintf("%s shop-prod/extra is not known to regate's cluster state", [kind]))
		count(deny_inv(rreq(route(["shop.example.eu"], ref)), ls_inv(kind, group, [ls_https("shop.example.eu")]))) == 0
		v := deny_inv(rreq(route(["shop.example.eu"], ref)), ls_inv(kind, group, [http]))
		fx.has(v, sprintf("HTTPRoute attaches to listener http (HTTP) of %s extra", [kind]))
		fx.has(deny_inv(rreq(route(["shop.example.eu"], object.union(ref, {"sectionName": "nope"}))), ls_inv(kind, group, [http])), sprintf(`%s extra has no listener "nope"`, [kind]))
	}
}

test_route_to_other_parent_kinds_is_denied if {
	every ref in [
		{"group": "evil.example.io", "kind": "Proxy", "name": "p"},
		{"group": "gateway.networking.x-k8s.io", "kind": "Gateway", "name": "public"},
		{"group": "gateway.networking.k8s.io", "kind": "XListenerSet", "name": "extra"},
		{"group": "", "kind": "Gateway", "name": "public"},
	] {
		fx.has(deny_inv(rreq(route(["shop.example.eu"], ref)), gw_inv([https])), sprintf("HTTPRoute parentRef kind %s (group %q) is not allowed", [ref.kind, ref.group]))
	}
}

lsreq(kind, listeners, annotations) := kreq(kind, _ls_groups[kind], listenerset(kind, listeners, annotations))

_ls_groups := {"ListenerSet": "gateway.networking.k8s.io", "XListenerSet": "gateway.networking.x-k8s.io"}

test_listenerset_hosts_and_protocols_are_checked if {
	every kind, _ in _ls_groups {
		count(deny(lsreq(kind, [ls_https("shop.example.eu"), ls_https("*.shop.example.eu")], {}))) == 0
		v := deny(lsreq(kind, [ls_https("pay.billing.example.eu")], {}))
		fx.has(v, "host pay.billing.example.eu is outside the domains")
		"spec.listeners[0].hostname" in fx.fields(v)
		fx.has(deny(lsreq(kind, [object.remove(ls_https(""), ["hostname"])], {})), sprintf("%s listener shop-https has no hostname", [kind]))
		fx.has(deny(lsreq(kind, [{"name": "plain", "protocol": "HTTP", "port": 80, "hostname": "shop.example.eu"}], {})), sprintf("%s listener plain uses protocol HTTP; use HTTPS or TLS", [kind]))
		fx.has(deny(lsreq(kind, [{"hostname": "shop.example.eu"}], {})), "listener 0 uses protocol null")
	}
}

test_listenerset_certificate_annotations_are_checked if {
	ls := [ls_https("shop.example.eu")]
	fx.has(deny(lsreq("ListenerSet", ls, {"cert-manager.io/cluster-issuer": "selfsigned"})), `ClusterIssuer "selfsigned" is not allowed`)
	fx.has(deny(lsreq("ListenerSet", ls, {"cert-manager.io/issuer": "x", "cert-manager.io/issuer-group": "evil.io"})), `issuer group "evil.io" is not allowed`)
	fx.has(deny(lsreq("ListenerSet", ls, {"cert-manager.io/issuer": "x", "cert-manager.io/alt-names": "pay.billing.example.eu"})), "host pay.billing.example.eu is outside the domains")
	count(deny(lsreq("ListenerSet", ls, {"cert-manager.io/cluster-issuer": "letsencrypt-prod"}))) == 0
	# a ListenerSet needs no issuer annotation (its certificate may come from elsewhere)
	count(deny(lsreq("ListenerSet", ls, {}))) == 0
}

test_listenerset_host_of_another_tenant_collides if {
	other := listenerset("XListenerSet", [ls_https("deals.shared.example.eu")], {})
	inv := object.union(fx.inventory, {"namespace": {"billing-prod": {"gateway.networking.x-k8s.io/v1alpha1": {"XListenerSet": {"extra": other}}}}})
	cfg := object.union(fx.config, {"tenancy": {"tenants": {"shop": {"domains": ["shop.example.eu", "shared.example.eu"]}}}})
	h := "deals.shared.example.eu"
	v := it.deny with input as ireq(ingress([h], [h], le)) with data.inventory as inv with data.regate.config as cfg
	fx.has(v, "host deals.shared.example.eu is already served for another tenant")
}

# --- cert-manager's HTTP-01 solver ---

cm_user := {"username": "system:serviceaccount:cert-manager:cert-manager", "groups": ["system:serviceaccounts", "system:authenticated"]}

solver_params := object.union(params, {"certManagerControllers": ["system:serviceaccount:cert-manager:cert-manager"]})

solver_labels := {
	"acme.cert-manager.io/http-domain": "1152784535",
	"acme.cert-manager.io/http-token": "1049581337",
	"acme.cert-manager.io/http01-solver": "true",
}

solver_path := {
	"path": "/.well-known/acme-challenge/yEaH8kq_3Wv-Ty9nZ0sPqL2xR4cB7mN1oD5fG6hJ8kM",
	"pathType": "ImplementationSpecific",
	"backend": {"service": {"name": "cm-acme-http-solver-x7k2p", "port": {"number": 8089}}},
}

# As cert-manager builds it (pkg/issuer/acme/http/ingress.go): generateName cm-acme-http-solver-, the
# solver labels, a whitelist-source-range annotation, one rule for the challenged host.
solver_ingress(host, paths) := {
	"apiVersion": "networking.k8s.io/v1",
	"kind": "Ingress",
	"metadata": {
		"generateName": "cm-acme-http-solver-",
		"namespace": "shop-prod",
		"labels": object.union(solver_labels, {fx.key: "shop"}),
		"annotations": {"nginx.ingress.kubernetes.io/whitelist-source-range": "0.0.0.0/0,::/0"},
		"ownerReferences": [{"apiVersion": "acme.cert-manager.io/v1", "kind": "Challenge", "name": "web-tls-1-2837-0", "uid": "c", "controller": true}],
	},
	"spec": {"ingressClassName": "nginx", "rules": [{"host": host, "http": {"paths": paths}}]},
}

sreq(obj, user) := {"review": object.union(ireq(obj).review, {"userInfo": user}), "parameters": solver_params}

test_http01_solver_ingress_of_cert_manager_is_allowed if {
	count(deny(sreq(solver_ingress("shop.example.eu", [solver_path]), cm_user))) == 0
	count(deny(sreq(solver_ingress("www.shop.example.eu", [object.remove(solver_path, ["pathType"])]), cm_user))) == 0
}

test_http01_solver_shape_by_anyone_else_is_denied if {
	v := deny(sreq(solver_ingress("shop.example.eu", [solver_path]), fx.shop_user))
	fx.has(v, "host shop.example.eu is not covered by spec.tls[].hosts")
	fx.has(v, "Ingress needs a cert-manager.io/cluster-issuer")
	# cert-manager's identity, but not configured as such
	fx.has(deny({"review": sreq(solver_ingress("shop.example.eu", [solver_path]), cm_user).review, "parameters": params}), "not covered by spec.tls[].hosts")
}

test_http01_solver_exemption_needs_the_exact_shape if {
	other_path := object.union(solver_path, {"path": "/"})
	prefix := object.union(solver_path, {"pathType": "Prefix"})
	traversal := object.union(solver_path, {"path": "/.well-known/acme-challenge/../admin"})
	other_svc := object.union(solver_path, {"backend": {"service": {"name": "web", "port": {"number": 8089}}}})
	other_port := object.union(solver_path, {"backend": {"service": {"name": "cm-acme-http-solver-x7k2p", "port": {"number": 80}}}})
	resource_backend := object.union(solver_path, {"backend": {"resource": {"apiGroup": "x", "kind": "Y", "name": "z"}}})
	unlabelled := object.remove(solver_ingress("shop.example.eu", [solver_path]), ["metadata"])
	shapes := [
		solver_ingress("shop.example.eu", [solver_path, other_path]),
		solver_ingress("shop.example.eu", [other_path]),
		solver_ingress("shop.example.eu", [prefix]),
		solver_ingress("shop.example.eu", [traversal]),
		solver_ingress("shop.example.eu", [other_svc]),
		solver_ingress("shop.example.eu", [other_port]),
		solver_ingress("shop.example.eu", [resource_backend]),
		solver_ingress("shop.example.eu", []),
		object.union(solver_ingress("shop.example.eu", [solver_path]), {"spec": {"rules": [{"host": "shop.example.eu", "http": {"paths": [solver_path]}}, {"host": "www.shop.example.eu", "http": {"paths": [solver_path]}}]}}),
		object.union(solver_ingress("shop.example.eu", [solver_path]), {"spec": {"tls": [{"hosts": ["x.shop.example.eu"], "secretName": "s"}]}}),
		object.union(solver_ingress("shop.example.eu", [solver_path]), {"spec": {"defaultBackend": {"service": {"name": "web", "port": {"number": 80}}}}}),
		object.union(solver_ingress("shop.example.eu", [solver_path]), {"spec": {"backend": {"serviceName": "web", "servicePort": 80}}}),
		object.union(solver_ingress("shop.example.eu", [solver_path]), {"metadata": {"labels": {"acme.cert-manager.io/http01-solver": "false"}}}),
		object.union(solver_ingress("shop.example.eu", [solver_path]), {"metadata": {"annotations": alias("shop.example.eu")}}),
		object.union(unlabelled, {"metadata": {"name": "x", "namespace": "shop-prod"}}),
	]
	every obj in shapes {
		fx.has(deny(sreq(obj, cm_user)), "Ingress needs a cert-manager.io/cluster-issuer")
	}
}

test_http01_solver_still_stays_in_tenant_domains if {
	v := deny(sreq(solver_ingress("pay.billing.example.eu", [solver_path]), cm_user))
	fx.has(v, "host pay.billing.example.eu is outside the domains")
	fx.has(v, "host pay.billing.example.eu is already served for another tenant")
	not fx.has(v, "not covered by spec.tls")
}

# As cert-manager builds it for a gatewayHTTPRoute solver (pkg/issuer/acme/http/httproute.go): the
# issuer's parentRefs (usually the Gateway's HTTP listener), one Exact match, one backendRef.
solver_route(host, parent, rule) := {
	"apiVersion": "gateway.networking.k8s.io/v1",
	"kind": "HTTPRoute",
	"metadata": {"generateName": "cm-acme-http-solver-", "namespace": "shop-prod", "labels": object.union(solver_labels, {fx.key: "shop"})},
	"spec": {"parentRefs": [parent], "hostnames": [host], "rules": [rule]},
}

solver_rule := {
	"matches": [{"path": {"type": "Exact", "value": "/.well-known/acme-challenge/yEaH8kq_3Wv-Ty9nZ0sPqL2xR4cB7mN1oD5fG6hJ8kM"}}],
	"backendRefs": [{"group": "", "kind": "Service", "name": "cm-acme-http-solver-x7k2p", "port": 8089, "weight": 1}],
}

srreq(obj, user) := {"review": object.union(rreq(obj).review, {"userInfo": user}), "parameters": solver_params}

test_http01_solver_route_may_use_the_http_listener if {
	p := {"name": "public", "namespace": "gateway-system", "sectionName": "http"}
	count(deny_inv(srreq(solver_route("shop.example.eu", p, solver_rule), cm_user), gw_inv([http, https]))) == 0
	count(deny_inv(srreq(solver_route("shop.example.eu", p, object.union(solver_rule, {"backendRefs": [{"name": "cm-acme-http-solver-x7k2p", "port": 8089}]})), cm_user), gw_inv([http, https]))) == 0
	fx.has(deny_inv(srreq(solver_route("shop.example.eu", p, solver_rule), fx.shop_user), gw_inv([http, https])), "HTTPRoute attaches to listener http (HTTP)")
}

test_http01_solver_route_exemption_needs_the_exact_shape if {
	p := {"name": "public", "namespace": "gateway-system", "sectionName": "http"}
	b := solver_rule.backendRefs[0]
	rules := [
		object.union(solver_rule, {"matches": [{"path": {"type": "PathPrefix", "value": "/"}}]}),
		object.union(solver_rule, {"matches": [{"path": {"value": solver_rule.matches[0].path.value}}]}),
		object.union(solver_rule, {"matches": array.concat(solver_rule.matches, solver_rule.matches)}),
		object.union(solver_rule, {"backendRefs": [object.union(b, {"name": "web"})]}),
		object.union(solver_rule, {"backendRefs": [object.union(b, {"port": 80})]}),
		object.union(solver_rule, {"backendRefs": [object.union(b, {"namespace": "billing-prod"})]}),
		object.union(solver_rule, {"backendRefs": [object.union(b, {"kind": "ServiceImport", "group": "multicluster.x-k8s.io"})]}),
		object.union(solver_rule, {"backendRefs": [b, b]}),
		object.union(solver_rule, {"filters": [{"type": "RequestRedirect", "requestRedirect": {"hostname": "evil.example"}}]}),
	]
	every rule in rules {
		fx.has(deny_inv(srreq(solver_route("shop.example.eu", p, rule), cm_user), gw_inv([http, https])), "HTTPRoute attaches to listener http (HTTP)")
	}
	two_rules := object.union(solver_route("shop.example.eu", p, solver_rule), {"spec": {"rules": [solver_rule, solver_rule]}})
	fx.has(deny_inv(srreq(two_rules, cm_user), gw_inv([http, https])), "listener http (HTTP)")
	two_hosts := object.union(solver_route("shop.example.eu", p, solver_rule), {"spec": {"hostnames": ["shop.example.eu", "www.shop.example.eu"]}})
	fx.has(deny_inv(srreq(two_hosts, cm_user), gw_inv([http, https])), "listener http (HTTP)")
}

# --- Certificates ordered directly ---

certificate(issuer_ref, extra) := object.union({
	"apiVersion": "cert-manager.io/v1",
	"kind": "Certificate",
	"metadata": {"name": "web-tls", "namespace": "shop-prod", "labels": {fx.key: "shop"}},
	"spec": {"secretName": "web-tls", "dnsNames": ["shop.example.eu", "www.shop.example.eu"], "issuerRef": issuer_ref},
}, {"spec": extra})

creq(kind, obj, user) := {"review": object.union(kreq(kind, "cert-manager.io", obj).review, {"userInfo": user}), "parameters": solver_params}

le_ref := {"name": "letsencrypt-prod", "kind": "ClusterIssuer", "group": "cert-manager.io"}

test_certificate_from_cluster_issuer_stays_in_tenant_domains if {
	count(deny(creq("Certificate", certificate(le_ref, {}), fx.shop_user))) == 0
	v := deny(creq("Certificate", certificate(le_ref, {"dnsNames": ["shop.example.eu", "pay.billing.example.eu"], "commonName": "evil.example.org"}), fx.shop_user))
	fx.has(v, `host pay.billing.example.eu is outside the domains of tenant "shop"`)
	fx.has(v, "host pay.billing.example.eu is already served for another tenant")
	fx.has(v, `host evil.example.org is outside the domains`)
	"spec.dnsNames[1]" in fx.fields(v)
	"spec.commonName" in fx.fields(v)
}

test_certificate_issuer_ref_is_checked if {
	fx.has(deny(creq("Certificate", certificate({"name": "internal-ca", "kind": "ClusterIssuer"}, {}), fx.shop_user)), `ClusterIssuer "internal-ca" is not allowed`)
	fx.has(deny(creq("Certificate", certificate({"name": "pca", "kind": "AWSPCAClusterIssuer", "group": "awspca.cert-manager.io"}, {}), fx.shop_user)), `issuer group "awspca.cert-manager.io" is not allowed`)
	fx.has(deny(creq("Certificate", certificate({"name": "x", "kind": "Venafi"}, {}), fx.shop_user)), `issuer kind "Venafi" is not allowed`)
}

test_certificate_from_own_issuer_is_not_restricted if {
	every ref in [{"name": "shop-ca"}, {"name": "shop-ca", "kind": "Issuer", "group": "cert-manager.io"}, {"name": "shop-ca", "kind": "", "group": ""}] {
		count(deny(creq("Certificate", certificate(ref, {"dnsNames": ["web.shop-prod.svc", "web.shop-prod.svc.cluster.local"], "ipAddresses": ["10.0.0.1"]}), fx.shop_user))) == 0
	}
}

test_certificate_from_cluster_issuer_has_only_tenant_names if {
	every f in ["ipAddresses", "uris", "otherNames"] {
		fx.has(deny(creq("Certificate", certificate(le_ref, {f: ["x"]}), fx.shop_user)), sprintf(`Certificate from ClusterIssuer "letsencrypt-prod" may not request %s`, [f]))
	}
	v := deny(creq("Certificate", certificate(le_ref, {"emailAddresses": ["ops@shop.example.eu", "ceo@billing.example.eu"]}), fx.shop_user))
	fx.has(v, "email address ceo@billing.example.eu is outside the domains")
	not fx.has(v, "ops@shop.example.eu")
}

test_certificate_request_to_cluster_issuer_comes_from_cert_manager if {
	cr := {"apiVersion": "cert-manager.io/v1", "kind": "CertificateRequest", "metadata": {"name": "web-tls-1", "namespace": "shop-prod"}, "spec": {"request": "LS0tLS1CRUdJTi...", "issuerRef": le_ref}}
	fx.has(deny(creq("CertificateRequest", cr, fx.shop_user)), `CertificateRequests to ClusterIssuer "letsencrypt-prod" come from cert-manager only`)
	count(deny(creq("CertificateRequest", cr, cm_user))) == 0
	own := object.union(cr, {"spec": {"issuerRef": {"name": "shop-ca", "kind": "Issuer"}}})
	count(deny(creq("CertificateRequest", own, fx.shop_user))) == 0
	fx.has(deny(creq("CertificateRequest", object.union(cr, {"spec": {"issuerRef": {"name": "evil"}}}), cm_user)), `ClusterIssuer "evil" is not allowed`)
}
