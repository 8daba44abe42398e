# Shared fixtures for the bundle's Rego unit tests (a *_test.rego file, so never loaded by check, eval or
# serve). Tests import it as `data.regate.lib.testing` and pass `config`/`inventory` explicitly with
# `with data.regate.config as fx.config` so they do not depend on a layered regate.yaml.
package regate.lib.testing

key := "regate.dev/tenant"

config := {
	"systemNamespaces": ["kube-system", "regate-system"],
	"tenancy": {
		"labelKey": key,
		"platformGroups": ["system:masters", "platform-admins"],
		"platformUsers": ["platform-bot"],
		"tenants": {
			"shop": {"groups": ["tenant:shop"], "harborProjects": ["shop"], "domains": ["shop.example.eu"]},
			"billing": {"groups": ["tenant:billing"], "harborProjects": ["billing"], "domains": ["billing.example.eu"]},
		},
	},
	"registries": {"harbor": ["harbor.example.eu"], "sharedProjects": ["library", "base-images"]},
}

shop_user := {"username": "alice", "groups": ["tenant:shop", "system:authenticated"]}

billing_user := {"username": "bob", "groups": ["tenant:billing", "system:authenticated"]}

platform_user := {"username": "carol", "groups": ["platform-admins", "system:authenticated"]}

controller_user := {"username": "system:serviceaccount:kube-system:replicaset-controller", "groups": ["system:serviceaccounts", "system:authenticated"]}

namespace(name, tenant) := {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": {key: tenant, "kubernetes.io/metadata.name": name}}}

default_deny(ns, name) := {
	"apiVersion": "networking.k8s.io/v1",
	"kind": "NetworkPolicy",
	"metadata": {"name": name, "namespace": ns},
	"spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
}

ingress(ns, name, host) := {
	"apiVersion": "networking.k8s.io/v1",
	"kind": "Ingress",
	"metadata": {"name": name, "namespace": ns, "labels": {key: "billing"}},
	"spec": {"tls": [{"hosts": [host], "secretName": "tls"}], "rules": [{"host": host}]},
}

# Cluster state: shop-prod/shop-dev (tenant shop, default-deny in shop-prod only), billing-prod (tenant
# billing, with an Ingress for pay.billing.example.eu and a shared.example.eu host), legacy (no tenant).
inventory := {
	"cluster": {"v1": {"Namespace": {
		"shop-prod": namespace("shop-prod", "shop"),
		"shop-dev": namespace("shop-dev", "shop"),
		"billing-prod": namespace("billing-prod", "billing"),
		"legacy": {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "legacy"}},
	}}},
	"namespace": {
		"shop-prod": {"networking.k8s.io/v1": {"NetworkPolicy": {"default-deny": default_deny("shop-prod", "default-deny")}}},
		"billing-prod": {"networking.k8s.io/v1": {
			"NetworkPolicy": {"default-deny": default_deny("billing-prod", "default-deny")},
			"Ingress": {"pay": ingress("billing-prod", "pay", "pay.billing.example.eu")},
		}},
	},
}

kind_groups := {
	"Pod": "",
	"PodTemplate": "",
	"ReplicationController": "",
	"Deployment": "apps",
	"ReplicaSet": "apps",
	"StatefulSet": "apps",
	"DaemonSet": "apps",
	"Job": "batch",
	"CronJob": "batch",
}

spec_paths := {
	"Pod": "spec",
	"PodTemplate": "template.spec",
	"ReplicationController": "spec.template.spec",
	"Deployment": "spec.template.spec",
	"ReplicaSet": "spec.template.spec",
	"StatefulSet": "spec.template.spec",
	"DaemonSet": "spec.template.spec",
	"Job": "spec.template.spec",
	"CronJob": "spec.jobTemplate.spec.template.spec",
}

resources := {
	"Pod": "pods",
	"PodTemplate": "podtemplates",
	"ReplicationController": "replicationcontrollers",
	"Deployment": "deployments",
	"ReplicaSet": "replicasets",
	"StatefulSet": "statefulsets",
	"DaemonSet": "daemonsets",
	"Job": "jobs",
	"CronJob": "cronjobs",
}

meta := {"name": "web", "namespace": "shop-prod", "labels": {"app": "web", key: "shop", "app.kubernetes.io/name": "web", "app.kubernetes.io/version": "1.0.0"}}

template_meta := {"labels": {"app": "web", key: "shop"}}

wrap("Pod", spec) := {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}

wrap("PodTemplate", spec) := {"apiVersion": "v1", "kind": "PodTemplate", "metadata": meta, "template": {"metadata": template_meta, "spec": spec}}

wrap("CronJob", spec) := {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": meta, "spec": {"schedule": "0 3 * * *", "jobTemplate": {"spec": {"template": {"metadata": template_meta, "spec": spec}}}}}

wrap(kind, spec) := {"apiVersion": api_version(kind), "kind": kind, "metadata": meta, "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {"metadata": template_meta, "spec": spec}}} if {
	not kind in {"Pod", "PodTemplate", "CronJob"}
}

api_version(kind) := "v1" if {
	kind_groups[kind] == ""
} else := sprintf("%s/v1", [kind_groups[kind]])

# An AdmissionRequest (not wrapped) creating `obj` of `kind` in shop-prod as a shop tenant user.
request(kind, obj) := {
	"uid": "00000000-0000-0000-0000-000000000001",
	"operation": "CREATE",
	"namespace": "shop-prod",
	"name": object.get(obj, ["metadata", "name"], ""),
	"kind": {"group": object.get(kind_groups, kind, ""), "version": "v1", "kind": kind},
	"resource": {"group": object.get(kind_groups, kind, ""), "version": "v1", "resource": object.get(resources, kind, lower(kind))},
	"userInfo": shop_user,
	"object": obj,
	"oldObject": null,
}

# input for a CREATE of a workload of `kind` with pod `spec`.
review_for(kind, spec) := {"review": request(kind, wrap(kind, spec))}

# input for an UPDATE from `old` to `new` pod spec.
update_for(kind, old, new) := {"review": object.union(request(kind, wrap(kind, new)), {"operation": "UPDATE", "oldObject": wrap(kind, old)})}

# input for an arbitrary object request: `overrides` are merged into the request.
review(kind, obj, overrides) := {"review": object.union(request(kind, obj), overrides)}

three_container_spec := {
	"containers": [{"name": "app", "image": "harbor.example.eu/shop/app:1.0"}],
	"initContainers": [{"name": "init", "image": "harbor.example.eu/shop/init:1.0"}],
	"ephemeralContainers": [{"name": "debug", "image": "harbor.example.eu/shop/debug:1.0"}],
}

scale_review := {"review": {
	"uid": "s",
	"operation": "UPDATE",
	"namespace": "shop-prod",
	"kind": {"group": "autoscaling", "version": "v1", "kind": "Scale"},
	"resource": {"group": "apps", "version": "v1", "resource": "deployments"},
	"subResource": "scale",
	"userInfo": shop_user,
	"object": {"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": "web", "namespace": "shop-prod"}, "spec": {"replicas": 3}},
	"oldObject": {"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": "web", "namespace": "shop-prod"}, "spec": {"replicas": 2}},
}}

digest := "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

# A container that satisfies every container policy of the bundle.
good_container(name) := {
	"name": name,
	"image": sprintf("harbor.example.eu/shop/%s:1.0@%s", [name, digest]),
	"resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "200m", "memory": "256Mi"}},
	"securityContext": {
		"allowPrivilegeEscalation": false,
		"readOnlyRootFilesystem": true,
		"runAsNonRoot": true,
		"capabilities": {"drop": ["ALL"]},
		"seccompProfile": {"type": "RuntimeDefault"},
	},
	"livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080}},
	"readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}},
}

good_spec := {
	"securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
	"containers": [good_container("app")],
	"initContainers": [object.remove(good_container("init"), ["livenessProbe", "readinessProbe"])],
}

# The messages of a deny/warn set (elements are strings or {"msg", "field"} objects).
msgs(violations) := {m | some v in violations; m := _msg(v)}

_msg(v) := v.msg if is_object(v) else := v

# True when some message of `violations` contains `fragment`.
has(violations, fragment) if {
	some m in msgs(violations)
	contains(m, fragment)
}

# The fields of a deny/warn set.
fields(violations) := {v.field | some v in violations; is_object(v)}
