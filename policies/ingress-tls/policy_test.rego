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
