package regate.lib.tenancy_test

import data.regate.lib.tenancy
import data.regate.lib.testing as fx

_in(user) := {"review": {"operation": "CREATE", "namespace": "shop-prod", "userInfo": user, "object": {"metadata": {}}}}

test_namespace_tenant_from_inventory if {
	tenancy.namespace_tenant("shop-prod") == "shop" with data.inventory as fx.inventory with data.regate.config as fx.config
	tenancy.namespace_tenant("billing-prod") == "billing" with data.inventory as fx.inventory with data.regate.config as fx.config
	not tenancy.namespace_tenant("legacy") with data.inventory as fx.inventory with data.regate.config as fx.config
	not tenancy.namespace_tenant("nowhere") with data.inventory as fx.inventory with data.regate.config as fx.config
	tenancy.namespace_known("legacy") with data.inventory as fx.inventory
	not tenancy.namespace_known("nowhere") with data.inventory as fx.inventory
}

test_label_key_is_configurable if {
	cfg := object.union(fx.config, {"tenancy": {"labelKey": "example.com/team"}})
	inv := {"cluster": {"v1": {"Namespace": {"a": {"metadata": {"labels": {"example.com/team": "shop"}}}}}}}
	tenancy.namespace_tenant("a") == "shop" with data.inventory as inv with data.regate.config as cfg
	not tenancy.namespace_tenant("a") with data.inventory as inv with data.regate.config as fx.config
}

test_defaults_without_config if {
	tenancy.label_key == "regate.dev/tenant" with data.regate.config as {}
	count(tenancy.tenants) == 0 with data.regate.config as {}
}

test_user_tenants_from_groups if {
	tenancy.user_tenants == {"shop"} with input as _in(fx.shop_user) with data.regate.config as fx.config
	tenancy.is_tenant_identity with input as _in(fx.shop_user) with data.regate.config as fx.config
	not tenancy.is_platform with input as _in(fx.shop_user) with data.regate.config as fx.config
}

test_user_in_two_tenants if {
	u := {"username": "eve", "groups": ["tenant:shop", "tenant:billing"]}
	tenancy.user_tenants == {"shop", "billing"} with input as _in(u) with data.regate.config as fx.config
}

test_service_account_acts_for_its_namespace_tenant if {
	u := {"username": "system:serviceaccount:billing-prod:deployer", "groups": ["system:serviceaccounts"]}
	tenancy.user_tenants == {"billing"} with input as _in(u) with data.regate.config as fx.config with data.inventory as fx.inventory
}

test_system_service_account_is_no_tenant if {
	count(tenancy.user_tenants) == 0 with input as _in(fx.controller_user) with data.regate.config as fx.config with data.inventory as fx.inventory
	not tenancy.is_tenant_identity with input as _in(fx.controller_user) with data.regate.config as fx.config with data.inventory as fx.inventory
}

test_platform_by_group_and_user if {
	tenancy.is_platform with input as _in(fx.platform_user) with data.regate.config as fx.config
	tenancy.is_platform with input as _in({"username": "platform-bot", "groups": []}) with data.regate.config as fx.config
	not tenancy.is_platform with input as _in({"username": "x", "groups": ["system:authenticated"]}) with data.regate.config as fx.config
}

test_platform_member_of_a_tenant_group_is_not_a_tenant_identity if {
	u := {"username": "p", "groups": ["platform-admins", "tenant:shop"]}
	not tenancy.is_tenant_identity with input as _in(u) with data.regate.config as fx.config
}

test_tenant_config if {
	tenancy.tenant_config("shop").domains == ["shop.example.eu"] with data.regate.config as fx.config
	tenancy.tenant_config("nobody") == {} with data.regate.config as fx.config
	tenancy.tenant == "shop" with input as _in(fx.shop_user) with data.regate.config as fx.config with data.inventory as fx.inventory
}

test_system_namespaces_match_by_name_and_prefix if {
	cfg := object.union(fx.config, {"systemNamespaces": ["kube-system", "cert-*"]})
	tenancy.is_system_namespace("kube-system") with data.regate.config as cfg
	tenancy.is_system_namespace("cert-manager") with data.regate.config as cfg
	not tenancy.is_system_namespace("kube-public") with data.regate.config as cfg
	not tenancy.is_system_namespace("my-cert-manager") with data.regate.config as cfg
	not tenancy.is_system_namespace("kube-system") with data.regate.config as {"tenancy": {}}
	not tenancy.is_system_namespace("kube-system") with data.regate.config as {"systemNamespaces": "kube-system"}
}
