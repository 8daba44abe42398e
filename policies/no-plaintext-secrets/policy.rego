# METADATA
# title: No plaintext secrets
# description: >-
#   Secret material never comes from manifests: Secrets are accepted only from External Secrets Operator,
#   cert-manager, Helm's release storage, service-account token requests or allow-listed controllers;
#   literal env values that look like credentials and ConfigMaps holding private keys or credentials are
#   denied. Findings name what was found and where, never the value.
# custom:
#   severity: high
#   remediation: >-
#     Store the value in the secret manager and sync it with an ExternalSecret; reference it from the pod
#     with env[].valueFrom.secretKeyRef or a secret volume. Never commit Secret data, stringData or
#     credentials in ConfigMaps or env values.
#   controls: ["GDPR Art. 32(1)(a)", "NIS-2 Art. 21(2)(h)", "NIS-2 Art. 21(2)(j)", "DORA Art. 9(4)(d)", "CRA Annex I (1)(3)(c)"]
#   match:
#     operations: [CREATE, UPDATE]
#     kinds:
#       - apiGroups: [""]
#         kinds: [Secret, ConfigMap, Pod, PodTemplate, ReplicationController]
#       - apiGroups: [apps, extensions]
#         kinds: [Deployment, ReplicaSet, StatefulSet, DaemonSet]
#       - apiGroups: [batch]
#         kinds: [Job, CronJob]
package regate.policies.no_plaintext_secrets

import data.regate.lib.k8s

# --- Secrets -------------------------------------------------------------------------------------

is_secret if {
	k8s.kind == "Secret"
	k8s.group == ""
}

secret := input.review.object if {
	is_secret
	is_object(input.review.object)
}

_map(x) := x if is_object(x) else := {}

# Every non-empty value of data and stringData, with its field path. Values are never put in messages.
material contains {"field": sprintf("%s.%s", [f, k]), "section": f, "key": k} if {
	some f in ["data", "stringData"]
	some k, v in _map(secret[f])
	v != ""
	v != null
}

_type := object.get(secret, "type", "Opaque")

_user := k8s.username

# Any Secret written by an allow-listed controller identity.
exempt if _user in k8s.param("allowedControllers", [])

# External Secrets Operator: its ownership markers, written by the ESO controller itself. A tenant can
# set the markers (labels, annotations, even an ownerReference), so markers alone never exempt.
exempt if {
	eso_marked
	_user in k8s.param("esoControllers", [])
}

eso_marked if {
	some o in object.get(secret, ["metadata", "ownerReferences"], [])
	o.kind == "ExternalSecret"
	startswith(o.apiVersion, "external-secrets.io/")
}

eso_marked if {
	some section in ["labels", "annotations"]
	some k, _ in _map(object.get(secret, ["metadata", section], {}))
	startswith(k, "reconcile.external-secrets.io/")
}

# cert-manager: a kubernetes.io/tls Secret with cert-manager.io/* annotations, written by cert-manager.
exempt if {
	cert_manager_marked
	_user in k8s.param("certManagerControllers", [])
}

cert_manager_marked if {
	_type == "kubernetes.io/tls"
	some k, _ in _map(object.get(secret, ["metadata", "annotations"], {}))
	startswith(k, "cert-manager.io/")
}

# Helm's release storage, checked structurally because Helm writes it with the user's own identity:
# name sh.helm.release.v1.<release>.v<N>, label owner=helm, a single `release` key holding base64 of
# Helm's base64-encoded gzip payload ("H4sI..."), nothing in stringData.
exempt if helm_release_storage

helm_release_storage if {
	_type == "helm.sh/release.v1"
	regex.match(`^sh\.helm\.release\.v1\.[a-z0-9]([-a-z0-9.]*[a-z0-9])?\.v[0-9]+$`, object.get(secret, ["metadata", "name"], ""))
	object.get(secret, ["metadata", "labels", "owner"], "") == "helm"
	object.keys(_map(secret.data)) == {"release"}
	count(_map(object.get(secret, "stringData", {}))) == 0
	startswith(secret.data.release, "SDRzS")
}

# An UPDATE that leaves data and stringData as they were adds no secret material (label, annotation or
# finalizer changes of an existing Secret, including a terminating one).
exempt if {
	k8s.operation == "UPDATE"
	is_object(k8s.old_obj)
	_map(object.get(secret, "data", {})) == _map(object.get(k8s.old_obj, "data", {}))
	count(_map(object.get(secret, "stringData", {}))) == 0
}

deny contains {"msg": msg, "field": m.field} if {
	some m in material
	not exempt
	msg := sprintf("Secret holds a plaintext value at %s%s; sync it with an ExternalSecret", [m.field, _type_hint])
}

_type_hint := " (not valid Helm release storage)" if {
	_type == "helm.sh/release.v1"
} else := " (service-account tokens are filled by Kubernetes)" if {
	_type == "kubernetes.io/service-account-token"
} else := ""

# --- env values ----------------------------------------------------------------------------------

deny contains {"msg": msg, "field": field} if {
	some c in k8s.containers
	some i, e in _list(c.container.env)
	is_string(e.value)
	trim_space(e.value) != ""
	what := env_finding(e.name, trim_space(e.value))
	field := sprintf("%s.env[%d].value", [c.path, i])
	msg := sprintf("container %s: env %s %s; use valueFrom.secretKeyRef", [c.name, e.name, what])
}

_list(x) := x if is_array(x) else := []

# Why a literal env value is a credential; undefined when it is not.
# (Each else branch ends with a test, never with an assignment that may be undefined: upstream regorus
# 0.14's compiled VM otherwise abandons the whole else chain; the vendored one is fixed, patch 19.)
env_finding(name, value) := sprintf("holds a literal %s", [p]) if {
	p := credential_pattern(value)
	is_string(p)
} else := "has a literal value" if {
	credential_name(name)
	not benign_value(value)
} else := "holds a literal high-entropy string" if {
	high_entropy(value)
}

# --- ConfigMaps ----------------------------------------------------------------------------------

is_configmap if {
	k8s.kind == "ConfigMap"
	k8s.group == ""
	is_object(input.review.object)
}

deny contains {"msg": msg, "field": field} if {
	is_configmap
	some k, v in _map(input.review.object.data)
	is_string(v)
	p := credential_pattern(v)
	field := sprintf("data.%s", [k])
	msg := sprintf("ConfigMap holds a %s at %s; use a Secret synced by an ExternalSecret", [p, field])
}

# A value is judged without surrounding white space: a YAML block scalar (`key: |`) ends in a newline
# that the application reading the key usually strips, so "s3cr3t\n" is a single-line value.
deny contains {"msg": msg, "field": field} if {
	is_configmap
	some k, raw in _map(input.review.object.data)
	is_string(raw)
	v := trim_space(raw)
	v != ""
	not credential_pattern(v)
	not contains(v, "\n")
	credential_name(k)
	not benign_value(v)
	field := sprintf("data.%s", [k])
	msg := sprintf("ConfigMap key %s holds a literal credential; use a Secret synced by an ExternalSecret", [k])
}

# binaryData is base64: a PEM private key shows as one of three encodings of "PRIVATE KEY---". The API
# server's base64 decoder skips line breaks (and a client may wrap the encoding at 76 columns), so white
# space is removed before searching.
deny contains {"msg": msg, "field": field} if {
	is_configmap
	some k, v in _map(input.review.object.binaryData)
	is_string(v)
	regex.match(`UFJJVkFURSBLRVktLS0t|SVZBVEUgS0VZLS0t|UklWQVRFIEtFWS0t`, regex.replace(v, `\s+`, ""))
	field := sprintf("binaryData.%s", [k])
	msg := sprintf("ConfigMap holds a PEM private key at %s; use a Secret synced by an ExternalSecret", [field])
}

# A credential-named binaryData key: binary content under such a name is the credential itself.
deny contains {"msg": msg, "field": field} if {
	is_configmap
	some k, v in _map(input.review.object.binaryData)
	is_string(v)
	v != ""
	credential_name(k)
	field := sprintf("binaryData.%s", [k])
	msg := sprintf("ConfigMap key %s holds a literal credential; use a Secret synced by an ExternalSecret", [k])
}

# --- detectors -----------------------------------------------------------------------------------

# Well-known credential formats, by the name shown in messages.
patterns := {
	"PEM private key": `-----BEGIN [A-Z0-9 ]*PRIVATE KEY[A-Z ]*-----`,
	"AWS access key": `\b(AKIA|ASIA)[0-9A-Z]{16}\b`,
	"JWT": `\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}`,
	"GitHub token": `\b(gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})`,
	"GitLab token": `\bglpat-[A-Za-z0-9_-]{20,}`,
	"Slack token": `\bxox[abposr]-[A-Za-z0-9-]{10,}`,
	"Google API key": `\bAIza[0-9A-Za-z_-]{35}`,
	"Stripe live key": `\b[rs]k_live_[0-9A-Za-z]{16,}`,
}

# The first credential format found in `value` (by name), undefined when none.
credential_pattern(value) := p if {
	found := [name | some name, re in patterns; regex.match(re, value)]
	count(found) > 0
	p := sort(found)[0]
} else := "URL with an embedded password" if {
	url_with_password(value)
}

# scheme://user:password@host, unless the password is a reference such as $(DB_PASSWORD) or ${...}.
url_with_password(value) if {
	some m in regex.find_all_string_submatch_n(`[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]*:([^/\s@]+)@`, value, -1)
	not regex.match(`^(\$\(|\$\{|\{\{|%24)`, m[1])
}

# Env and ConfigMap key names that announce a credential: a credential word as a word of the name, or
# ending a word for the unmistakable ones (`dbpassword`, `MYSQLPASSWORD`, `googleapikey`). A name whose last part says it holds a
# reference or a command (..._FILE, _PATH, _NAME, _REF, _URL, _ENABLED, _CMD, _USERNAME, ...) is not one,
# nor are names listed in the parameter notCredentialNames (identifiers that merely contain TOKEN, such as
# ETCD_INITIAL_CLUSTER_TOKEN). Value patterns and the entropy check still apply to those.
credential_name(name) if {
	n := _name_words(name)
	regex.match(`((^|_)(SECRET|TOKEN|API_KEY|ACCESS_KEY|SECRET_KEY|PRIVATE_KEY|CREDENTIALS?|AUTH_KEY)|PASSWORD|PASSWD|PASSPHRASE|APIKEY|SECRETKEY|PRIVATEKEY)(_|$)`, n)
	not regex.match(`_(FILE|FILES|PATH|DIR|NAME|NAMES|REF|URL|URI|ENDPOINT|HOST|PORT|ENABLED|ENABLE|DISABLED|REQUIRED|TTL|EXPIRY|EXPIRATION|LIFETIME|TIMEOUT|LENGTH|TYPE|MODE|HEADER|FIELD|ID|ISSUER|AUDIENCE|SCOPE|SCOPES|VERSION|ALGORITHM|SIZE|LIMIT|PROVIDER|FORMAT|LOCATION|KIND|KEY_NAME|SOURCE|MOUNT|POLICY|ROLE|CMD|COMMAND|USER|USERNAME)$`, n)
	not name in k8s.param("notCredentialNames", [])
}

# A name as upper-case words joined by `_`: `-`, `.` and white space separate words, and so do camelCase
# humps (`dbPassword` -> DB_PASSWORD, `APIKey` -> API_KEY, `clientSecret2` -> CLIENT_SECRET2).
_name_words(name) := upper(regex.replace(
	regex.replace(regex.replace(name, `[-.\s]+`, "_"), `([a-z0-9])([A-Z])`, "${1}_${2}"),
	`([A-Z])([A-Z][a-z])`, "${1}_${2}",
))

# Values that are evidently not a credential: references, switches, numbers, paths, plain URLs.
benign_value(v) if regex.match(`^\$\([A-Za-z_][A-Za-z0-9_]*\)$`, v)

benign_value(v) if regex.match(`^\$\{[A-Za-z_][A-Za-z0-9_.-]*\}$`, v)

benign_value(v) if regex.match(`(?i)^(true|false|yes|no|on|off|enabled|disabled|none|null|required|optional|[0-9]+[smhd]?)$`, v)

benign_value(v) if startswith(v, "/")

benign_value(v) if {
	regex.match(`^[a-z][a-z0-9+.-]*://`, v)
	not url_with_password(v)
}

# A token-like string (letters and digits, base64/base64url alphabet, 20+ characters) whose Shannon
# entropy over its first 128 characters reaches `minEntropy` bits per character (lowered for short
# strings, whose entropy is bounded by log2 of their length).
high_entropy(v) if {
	n := count(v)
	n >= 20
	regex.match(`^[A-Za-z0-9+/=_-]+$`, v)
	regex.match(`[0-9]`, v)
	regex.match(`[A-Za-z]`, v)
	s := substring(v, 0, 128)
	entropy(s) >= min([k8s.param("minEntropy", 4.2), 0.85 * _log2[count(s)]])
}

# Shannon entropy in bits per character of a string of at most 128 characters.
entropy(s) := h if {
	chars := split(s, "")
	n := count(chars)
	counts := [c | some ch in {x | some x in chars}; c := count([1 | some x in chars; x == ch])]
	h := _log2[n] - (sum([x | some c in counts; x := c * _log2[c]]) / n)
}

# log2(k) for k = 0..128 (Rego has no logarithm builtin); index 0 is unused.
_log2 := [
	0, 0.0, 1.0, 1.584963, 2.0, 2.321928, 2.584963, 2.807355, 3.0, 3.169925, 3.321928, 3.459432, 3.584963,
	3.70044, 3.807355, 3.906891, 4.0, 4.087463, 4.169925, 4.247928, 4.321928, 4.392317, 4.459432, 4.523562,
	4.584963, 4.643856, 4.70044, 4.754888, 4.807355, 4.857981, 4.906891, 4.954196, 5.0, 5.044394, 5.087463,
	5.129283, 5.169925, 5.209453, 5.247928, 5.285402, 5.321928, 5.357552, 5.392317, 5.426265, 5.459432,
	5.491853, 5.523562, 5.554589, 5.584963, 5.61471, 5.643856, 5.672425, 5.70044, 5.72792, 5.754888, 5.78136,
	5.807355, 5.83289, 5.857981, 5.882643, 5.906891, 5.930737, 5.954196, 5.97728, 6.0, 6.022368, 6.044394,
	6.066089, 6.087463, 6.108524, 6.129283, 6.149747, 6.169925, 6.189825, 6.209453, 6.228819, 6.247928,
	6.266787, 6.285402, 6.303781, 6.321928, 6.33985, 6.357552, 6.375039, 6.392317, 6.409391, 6.426265,
	6.442943, 6.459432, 6.475733, 6.491853, 6.507795, 6.523562, 6.539159, 6.554589, 6.569856, 6.584963,
	6.599913, 6.61471, 6.629357, 6.643856, 6.658211, 6.672425, 6.686501, 6.70044, 6.714246, 6.72792,
	6.741467, 6.754888, 6.768184, 6.78136, 6.794416, 6.807355, 6.820179, 6.83289, 6.84549, 6.857981,
	6.870365, 6.882643, 6.894818, 6.906891, 6.918863, 6.930737, 6.942515, 6.954196, 6.965784, 6.97728,
	6.988685, 7.0,
]
