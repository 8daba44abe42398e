package regate.policies.no_plaintext_secrets_test

import data.regate.lib.testing as fx
import data.regate.policies.no_plaintext_secrets as nps

params := {
	"allowedControllers": ["system:kube-controller-manager"],
	"esoControllers": ["system:serviceaccount:external-secrets:external-secrets"],
	"certManagerControllers": ["system:serviceaccount:cert-manager:cert-manager"],
	"minEntropy": 4.2,
}

eso_user := {"username": "system:serviceaccount:external-secrets:external-secrets", "groups": ["system:serviceaccounts"]}

cm_user := {"username": "system:serviceaccount:cert-manager:cert-manager", "groups": ["system:serviceaccounts"]}

secret(extra) := object.union({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": "shop-prod"}, "type": "Opaque"}, extra)

sreq(obj, overrides) := {"review": object.union(fx.request("Secret", obj), object.union({"resource": {"resource": "secrets"}}, overrides)), "parameters": params}

deny(inp) := v if {
	v := nps.deny with input as inp
}

# --- Secret objects ---

test_plaintext_data_is_denied_without_the_value if {
	v := deny(sreq(secret({"data": {"password": "aHVudGVyMg=="}}), {}))
	fx.has(v, "Secret holds a plaintext value at data.password")
	"data.password" in fx.fields(v)
	not fx.has(v, "aHVudGVyMg==")
}

test_string_data_is_caught_like_data if {
	v := deny(sreq(secret({"stringData": {"password": "hunter2"}}), {}))
	fx.has(v, "plaintext value at stringData.password")
	not fx.has(v, "hunter2")
}

test_one_finding_per_key if {
	count(deny(sreq(secret({"data": {"a": "eA==", "b": "eQ=="}, "stringData": {"c": "z"}}), {}))) == 3
}

test_empty_secret_is_allowed if {
	count(deny(sreq(secret({}), {}))) == 0
	count(deny(sreq(secret({"data": {"a": ""}, "stringData": null}), {}))) == 0
}

test_eso_markers_from_the_eso_controller_are_allowed if {
	s := secret({"data": {"password": "eA=="}, "metadata": {"labels": {"reconcile.external-secrets.io/managed": "true"}}})
	count(deny(sreq(s, {"userInfo": eso_user}))) == 0
}

test_eso_owner_reference_from_the_eso_controller_is_allowed if {
	s := secret({"data": {"password": "eA=="}, "metadata": {"ownerReferences": [{"apiVersion": "external-secrets.io/v1beta1", "kind": "ExternalSecret", "name": "db", "uid": "1"}]}})
	count(deny(sreq(s, {"userInfo": eso_user}))) == 0
}

test_eso_annotation_marker_from_the_eso_controller_is_allowed if {
	s := secret({"data": {"password": "eA=="}, "metadata": {"annotations": {"reconcile.external-secrets.io/data-hash": "abc"}}})
	count(deny(sreq(s, {"userInfo": eso_user}))) == 0
}

# A tenant can set every ESO marker: markers alone never exempt.
test_forged_eso_markers_from_a_tenant_are_denied if {
	s := secret({"data": {"password": "eA=="}, "metadata": {
		"labels": {"reconcile.external-secrets.io/managed": "true"},
		"annotations": {"reconcile.external-secrets.io/data-hash": "abc"},
		"ownerReferences": [{"apiVersion": "external-secrets.io/v1beta1", "kind": "ExternalSecret", "name": "db", "uid": "1"}],
	}})
	fx.has(deny(sreq(s, {})), "plaintext value at data.password")
}

test_eso_controller_without_markers_is_denied if {
	fx.has(deny(sreq(secret({"data": {"password": "eA=="}}), {"userInfo": eso_user})), "plaintext")
}

test_cert_manager_tls_secret_is_allowed if {
	s := secret({"type": "kubernetes.io/tls", "data": {"tls.crt": "eA==", "tls.key": "eQ=="}, "metadata": {"annotations": {"cert-manager.io/certificate-name": "web", "cert-manager.io/issuer-name": "letsencrypt-prod"}}})
	count(deny(sreq(s, {"userInfo": cm_user}))) == 0
}

test_forged_cert_manager_annotations_are_denied if {
	s := secret({"type": "kubernetes.io/tls", "data": {"tls.key": "eQ=="}, "metadata": {"annotations": {"cert-manager.io/certificate-name": "web"}}})
	fx.has(deny(sreq(s, {})), "data.tls.key")
}

test_cert_manager_annotations_on_opaque_secret_are_denied if {
	s := secret({"data": {"k": "eQ=="}, "metadata": {"annotations": {"cert-manager.io/certificate-name": "web"}}})
	fx.has(deny(sreq(s, {"userInfo": cm_user})), "data.k")
}

helm_secret := secret({
	"type": "helm.sh/release.v1",
	"metadata": {"name": "sh.helm.release.v1.web.v3", "labels": {"owner": "helm", "name": "web", "version": "3"}},
	"data": {"release": "SDRzSUFBQUFBQUFDLyt5OWEzUGJ"},
})

test_helm_release_storage_is_allowed if {
	count(deny(sreq(helm_secret, {}))) == 0
}

test_fake_helm_release_is_denied if {
	fx.has(deny(sreq(object.union(helm_secret, {"data": {"password": "eA=="}}), {})), "not valid Helm release storage")
	fx.has(deny(sreq(object.union(helm_secret, {"data": {"release": "cGxhaW50ZXh0"}}), {})), "data.release")
	fx.has(deny(sreq(object.union(helm_secret, {"metadata": {"name": "db"}}), {})), "data.release")
	fx.has(deny(sreq(object.union(helm_secret, {"metadata": {"labels": {"owner": "me"}}}), {})), "data.release")
	fx.has(deny(sreq(object.union(helm_secret, {"stringData": {"x": "y"}}), {})), "stringData.x")
}

test_service_account_token_request_is_allowed if {
	s := secret({"type": "kubernetes.io/service-account-token", "metadata": {"annotations": {"kubernetes.io/service-account.name": "ci"}}})
	count(deny(sreq(s, {}))) == 0
}

test_service_account_token_with_data_from_a_tenant_is_denied if {
	s := secret({"type": "kubernetes.io/service-account-token", "data": {"token": "eA=="}})
	fx.has(deny(sreq(s, {})), "service-account tokens are filled by Kubernetes")
}

test_token_controller_may_fill_service_account_tokens if {
	s := secret({"type": "kubernetes.io/service-account-token", "data": {"token": "eA==", "ca.crt": "eQ=="}})
	count(deny(sreq(s, {"userInfo": {"username": "system:kube-controller-manager", "groups": []}}))) == 0
}

test_update_without_data_change_is_allowed if {
	old := secret({"data": {"password": "eA=="}})
	new := object.union(old, {"metadata": {"labels": {"team": "x"}, "deletionTimestamp": "2025-01-01T00:00:00Z"}})
	count(deny(sreq(new, {"operation": "UPDATE", "oldObject": old}))) == 0
}

test_update_changing_data_is_denied if {
	old := secret({"data": {"password": "eA=="}})
	new := secret({"data": {"password": "eQ=="}})
	fx.has(deny(sreq(new, {"operation": "UPDATE", "oldObject": old})), "data.password")
}

test_update_adding_string_data_is_denied if {
	old := secret({"data": {"password": "eA=="}})
	new := object.union(old, {"stringData": {"password": "new"}})
	fx.has(deny(sreq(new, {"operation": "UPDATE", "oldObject": old})), "stringData.password")
}

test_terminating_secret_with_new_data_is_denied if {
	old := secret({"metadata": {"finalizers": ["x"], "deletionTimestamp": "2025-01-01T00:00:00Z"}})
	new := object.union(old, {"data": {"password": "eA=="}})
	fx.has(deny(sreq(new, {"operation": "UPDATE", "oldObject": old})), "data.password")
}

test_secret_delete_does_not_crash if {
	r := object.union(fx.request("Secret", secret({})), {"operation": "DELETE", "object": null, "oldObject": secret({"data": {"a": "eA=="}})})
	count(deny({"review": r, "parameters": params})) == 0
}

# --- env values in every container list of every workload kind ---

env_spec(env) := {"containers": [{"name": "app", "image": "x", "env": env}]}

test_literal_password_env_is_denied_with_field_path if {
	v := deny(object.union(fx.review_for("Deployment", env_spec([{"name": "LOG_LEVEL", "value": "info"}, {"name": "DB_PASSWORD", "value": "hunter2"}])), {"parameters": params}))
	fx.has(v, "container app: env DB_PASSWORD has a literal value; use valueFrom.secretKeyRef")
	"spec.template.spec.containers[0].env[1].value" in fx.fields(v)
	not fx.has(v, "hunter2")
}

test_secret_key_ref_is_allowed if {
	env := [{"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}}]
	count(deny(object.union(fx.review_for("Deployment", env_spec(env)), {"parameters": params}))) == 0
}

test_env_in_every_kind_and_container_list if {
	spec := {
		"containers": [{"name": "a", "image": "x", "env": [{"name": "API_TOKEN", "value": "t0ps3cr3t"}]}],
		"initContainers": [{"name": "b", "image": "x", "env": [{"name": "API_KEY", "value": "k3y"}]}],
		"ephemeralContainers": [{"name": "c", "image": "x", "env": [{"name": "CLIENT_SECRET", "value": "s3c"}]}],
	}
	every kind, path in fx.spec_paths {
		fs := fx.fields(deny(object.union(fx.review_for(kind, spec), {"parameters": params})))
		fs == {
			sprintf("%s.containers[0].env[0].value", [path]),
			sprintf("%s.initContainers[0].env[0].value", [path]),
			sprintf("%s.ephemeralContainers[0].env[0].value", [path]),
		}
	}
}

test_value_patterns_in_innocent_names if {
	cases := {
		"PEM private key": "-----BEGIN RSA PRIVATE KEY-----\nMIIEow...",
		"AWS access key": "AKIAIOSFODNN7EXAMPLE",
		"JWT": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
		"GitHub token": "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
		"Slack token": "xoxb-1234567890-abcdefghij",
		"URL with an embedded password": "postgres://app:hunter2@db.shop.svc:5432/app",
		"high-entropy string": "q7Xf9LmZ2vR8tK4wP1sY6nB3",
	}
	every name, value in cases {
		v := deny(object.union(fx.review_for("Pod", env_spec([{"name": "SETTING", "value": value}])), {"parameters": params}))
		fx.has(v, sprintf("env SETTING holds a literal %s", [name]))
	}
}

test_benign_env_values_are_allowed if {
	env := [
		{"name": "PASSWORD_FILE", "value": "/run/secrets/db"},
		{"name": "TOKEN_URL", "value": "https://auth.example.eu/token"},
		{"name": "DB_PASSWORD", "value": "$(POSTGRES_PASSWORD)"},
		{"name": "AUTH_TOKEN_ENABLED", "value": "true"},
		{"name": "SECRET_NAME", "value": "db-credentials"},
		{"name": "VAULT_TOKEN_PATH", "value": "/var/run/token"},
		{"name": "DATABASE_URL", "value": "postgres://app:$(DB_PASSWORD)@db:5432/app"},
		{"name": "IMAGE_DIGEST", "value": "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},
		{"name": "POD_UID", "value": "1b4e28ba-2fa1-11d2-883f-0016d3cca427"},
		{"name": "RELEASE", "value": "kube-prometheus-stack-operator-1"},
		{"name": "JAVA_OPTS", "value": "-Xmx512m -Dfoo=bar"},
		{"name": "SECRET_KEY", "value": ""},
		{"name": "PASSWORD_MIN_LENGTH", "value": "12"},
		{"name": "AUTH_TOKEN", "value": "https://vault.example.eu/v1/auth/token"},
	]
	count(deny(object.union(fx.review_for("Pod", env_spec(env)), {"parameters": params}))) == 0
}

test_non_string_env_value_does_not_crash if {
	count(deny(object.union(fx.review_for("Pod", env_spec([{"name": "PASSWORD", "value": 1}, {"name": "X"}])), {"parameters": params}))) == 0
	count(deny(object.union(fx.review_for("Pod", {"containers": [{"name": "a", "env": null}]}), {"parameters": params}))) == 0
}

# --- ConfigMaps ---

cmap(entries) := {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg", "namespace": "shop-prod"}, "data": entries}

creq(obj) := {"review": object.union(fx.request("ConfigMap", obj), {"resource": {"resource": "configmaps"}}), "parameters": params}

test_configmap_with_private_key_is_denied if {
	v := deny(creq(cmap({"tls.key": "-----BEGIN PRIVATE KEY-----\nMIIEvQ...\n-----END PRIVATE KEY-----\n"})))
	fx.has(v, "ConfigMap holds a PEM private key at data.tls.key")
}

test_configmap_with_credential_inside_a_file_is_denied if {
	v := deny(creq(cmap({"app.yaml": "aws:\n  accessKeyId: AKIAIOSFODNN7EXAMPLE\n"})))
	fx.has(v, "ConfigMap holds a AWS access key at data.app.yaml")
}

test_configmap_credential_key_is_denied if {
	fx.has(deny(creq(cmap({"db-password": "hunter2"}))), "ConfigMap key db-password holds a literal credential")
}

test_configmap_private_key_in_binary_data_is_denied if {
	every v in ["LS0tLS1CRUdJTiBQUklWQVRFIEtFWS0tLS0tCg==", "LS0tLS1CRUdJTiBSU0EgUFJJVkFURSBLRVktLS0tLQo=", "LS0tLS1CRUdJTiBFQyBQUklWQVRFIEtFWS0tLS0tCg=="] {
		fx.has(deny(creq({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "binaryData": {"k": v}})), "PEM private key at binaryData.k")
	}
}

test_configmap_with_certificate_and_config_is_allowed if {
	files := {
		"ca.crt": "-----BEGIN CERTIFICATE-----\nMIIB...\n-----END CERTIFICATE-----\n",
		"password-policy": "min-length: 12\n",
		"grafana.ini": "[security]\nadmin_password = $__file{/etc/secrets/admin}\n",
		"TOKEN_URL": "https://auth.example.eu/token",
		"LOG_LEVEL": "debug",
	}
	count(deny(creq(cmap(files)))) == 0
}

# False positives found on the chart corpus (docs/policies.md).
test_corpus_false_positives_are_not_reported if {
	env := [
		{"name": "AIRFLOW__API__SECRET_KEY_CMD", "value": "cat /opt/bitnami/airflow/secrets/secret-key"},
		{"name": "AIRFLOW__API_AUTH__JWT_SECRET_CMD", "value": "cat /opt/bitnami/airflow/secrets/jwt-secret"},
		{"name": "ETCD_INITIAL_CLUSTER_TOKEN", "value": "etcd-cluster-k8s"},
		{"name": "ETCD_AUTH_TOKEN", "value": "jwt,priv-key=/opt/bitnami/etcd/certs/token/jwt-token.pem,sign-method=RS256,ttl=10m"},
		{"name": "REGISTRY_CREDENTIAL_USERNAME", "value": "harbor_registry_user"},
	]
	inp := object.union(fx.review_for("StatefulSet", env_spec(env)), {"parameters": object.union(params, {"notCredentialNames": ["ETCD_INITIAL_CLUSTER_TOKEN", "ETCD_AUTH_TOKEN"]})})
	count(deny(inp)) == 0
	cm := {"review": object.union(fx.request("ConfigMap", cmap({"REGISTRY_CREDENTIAL_USERNAME": "harbor_registry_user"})), {"resource": {"resource": "configmaps"}}), "parameters": params}
	count(deny(cm)) == 0
}

test_not_credential_names_keep_value_checks if {
	env := [{"name": "ETCD_AUTH_TOKEN", "value": "AKIAIOSFODNN7EXAMPLE"}, {"name": "ETCD_INITIAL_CLUSTER_TOKEN", "value": "hunter2"}]
	inp := object.union(fx.review_for("Pod", env_spec(env)), {"parameters": object.union(params, {"notCredentialNames": ["ETCD_INITIAL_CLUSTER_TOKEN", "ETCD_AUTH_TOKEN"]})})
	v := deny(inp)
	fx.has(v, "env ETCD_AUTH_TOKEN holds a literal AWS access key")
	not fx.has(v, "ETCD_INITIAL_CLUSTER_TOKEN")
	# without the parameter the name check applies
	fx.has(deny(object.union(fx.review_for("Pod", env_spec(env)), {"parameters": params})), "env ETCD_INITIAL_CLUSTER_TOKEN has a literal value")
}

# --- name and value normalisation (camelCase names, block scalars, wrapped base64) ---

test_camel_case_credential_names_are_words if {
	every name in ["dbPassword", "DbPassword", "apiKey", "APIKey", "clientSecret", "authToken", "privateKey", "secretKey", "mysqlRootPassword", "dbpassword", "MYSQLPASSWORD", "googleapikey", "db.password", "db password"] {
		credential_name_of(name)
	}
	every name in ["dbPasswordFile", "tokenUrl", "secretName", "apiKeyId", "passwordMinLength", "secretary", "tokenizer", "Tokens", "passwordless"] {
		not credential_name_of(name)
	}
}

credential_name_of(name) if nps.credential_name(name) with input as {"parameters": params}

test_camel_case_env_name_is_denied if {
	v := deny(object.union(fx.review_for("Deployment", env_spec([{"name": "dbPassword", "value": "hunter2"}])), {"parameters": params}))
	fx.has(v, "container app: env dbPassword has a literal value")
}

test_camel_case_configmap_key_is_denied if {
	every k in ["dbPassword", "apiKey", "clientSecret"] {
		fx.has(deny(creq(cmap({k: "hunter2"}))), sprintf("ConfigMap key %s holds a literal credential", [k]))
	}
}

# `password: |` in YAML gives "hunter2\n"; the trailing newline must not hide the value.
test_block_scalar_values_are_trimmed if {
	every v in ["hunter2\n", "hunter2\r\n", "  hunter2  \n", "\nhunter2\n"] {
		fx.has(deny(creq(cmap({"db-password": v}))), "ConfigMap key db-password holds a literal credential")
		fx.has(deny(object.union(fx.review_for("Pod", env_spec([{"name": "DB_PASSWORD", "value": v}])), {"parameters": params})), "env DB_PASSWORD has a literal value")
	}
	# a high-entropy token and a benign value behind a newline
	fx.has(deny(object.union(fx.review_for("Pod", env_spec([{"name": "SETTING", "value": "q7Xf9LmZ2vR8tK4wP1sY6nB3\n"}])), {"parameters": params})), "holds a literal high-entropy string")
	count(deny(creq(cmap({"db-password": "$(DB_PASSWORD)\n", "api-token": "\n", "tls-secret": "/etc/tls/key\n"})))) == 0
	count(deny(object.union(fx.review_for("Pod", env_spec([{"name": "FEATURE_TOKEN", "value": "true\n"}, {"name": "DB_PASSWORD", "value": " \n"}])), {"parameters": params}))) == 0
}

# The API server decodes binaryData ignoring line breaks: a key wrapped at 76 columns (base64 -w 76,
# PEM-style) or split anywhere is still a private key.
test_wrapped_base64_private_key_is_denied if {
	every v in [
		"LS0tLS1CRUdJTiBQUklWQVRF\nIEtFWS0tLS0tCg==",
		"LS0tLS1CRUdJTiBSU0EgUFJJ\r\nVkFURSBLRVktLS0tLQo=",
		"LS0tLS1CRUdJTiBFQyBQUklWQVRFIEt\nFWS0tLS0tCg==",
		"LS0tLS1CRUdJTiBQUklW QVRFIEtFWS0tLS0tCg==",
	] {
		fx.has(deny(creq({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "binaryData": {"k": v}})), "PEM private key at binaryData.k")
	}
}

test_credential_named_binary_data_is_denied if {
	v := deny(creq({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "binaryData": {"dbPassword": "aHVudGVyMg==", "logo.png": "iVBORw0KGgo=", "empty-token": ""}}))
	fx.has(v, "ConfigMap key dbPassword holds a literal credential")
	"binaryData.dbPassword" in fx.fields(v)
	count(v) == 1
}
