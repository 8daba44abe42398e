# METADATA
# title: Trusted images
# description: >-
#   Images come from the configured Harbor host(s), from the tenant's own Harbor projects or the shared
#   ones, pinned by digest, and (when the entry point verifies signatures) signed with a key the tenant or
#   the image's project accepts; the mutating webhook pins verified tag-only references to their digest.
#   References are parsed, never compared by string prefix.
# custom:
#   severity: critical
#   remediation: >-
#     Push the image to your tenant's Harbor project (or use a shared base image) and reference it by
#     digest, e.g. harbor.example.eu/shop/app:1.4.2@sha256:<digest>; sign it in the pipeline.
#   controls: ["NIS-2 Art. 21(2)(d)", "NIS-2 Art. 21(2)(e)", "DORA Art. 9(3)", "CRA Annex I (1)(3)(f)", "CRA Annex I (2)(1)"]
#   requiresInventory: true
#   match:
#     operations: [CREATE, UPDATE]
#     kinds:
#       - apiGroups: [""]
#         kinds: [Pod, PodTemplate, ReplicationController]
#       - apiGroups: [apps, extensions]
#         kinds: [Deployment, ReplicaSet, StatefulSet, DaemonSet]
#       - apiGroups: [batch]
#         kinds: [Job, CronJob]
package regate.policies.trusted_images

import data.regate.lib.images
import data.regate.lib.k8s
import data.regate.lib.tenancy

_registries := r if {
	r := data.regate.config.registries
	is_object(r)
} else := {}

# Allowed registries as configured: host, or host:port when a port is allowed explicitly.
harbor := {lower(h) | some h in object.get(_registries, "harbor", [])}

harbor_hosts := {split(h, ":")[0] | some h in harbor}

shared_projects := {p | some p in object.get(_registries, "sharedProjects", [])}

tenant_projects := {p | some p in object.get(tenancy.tenant_config(tenancy.tenant), "harborProjects", [])}

allowed_projects := shared_projects | tenant_projects

_harbor_text := concat(", ", sort([h | some h in harbor]))

_tenant_text := sprintf("tenant %q", [tenancy.tenant]) if {
	tenancy.tenant
} else := sprintf("namespace %q (no tenant)", [k8s.namespace])

# Every image reference of the request, checked and parsed once per evaluation (rules are memoised,
# function calls are not; the deny rules below read these instead of re-parsing).
_checked[ref] := images.check(ref) if {
	some i in k8s.images
	ref := i.image
}

_invalid[ref] := reason if {
	some ref, c in _checked
	reason := c.invalid
	is_string(reason)
}

_parsed[ref] := p if {
	some ref, c in _checked
	p := c.parsed
	is_object(p)
}

deny contains {"msg": msg, "field": i.path} if {
	some i in k8s.images
	reason := _invalid[i.image]
	msg := sprintf("%s: invalid image reference: %s", [i.what, reason])
}

deny contains {"msg": msg, "field": c.path} if {
	some c in k8s.missing_images
	msg := sprintf("container %s has no image", [c.name])
}

# Host and port as written must match a configured Harbor (a port only when configured with one).
deny contains {"msg": msg, "field": i.path} if {
	some i in k8s.images
	p := _parsed[i.image]
	not p.registry in harbor
	msg := _registry_msg(i.what, p)
}

_registry_msg(what, p) := sprintf("%s: registry port %s is not allowed; use %s", [what, p.port, _harbor_text]) if {
	p.port != ""
	p.host in harbor_hosts
} else := sprintf("%s: registry %s is not an allowed Harbor (%s)", [what, p.registry, _harbor_text])

deny contains {"msg": msg, "field": i.path} if {
	some i in k8s.images
	p := _parsed[i.image]
	p.registry in harbor
	not p.project in allowed_projects
	msg := sprintf("%s: Harbor project %q is not allowed for %s", [i.what, p.project, _tenant_text])
}

deny contains {"msg": msg, "field": i.path} if {
	k8s.param("requireDigest", true) == true
	some i in k8s.images
	p := _parsed[i.image]
	p.digest == ""
	msg := sprintf("%s: image is not pinned by digest (@sha256:...)", [i.what])
}

# --- signatures -----------------------------------------------------------------------------------

# Signature verdicts, when the entry point verified signatures: input.images is keyed by the image
# reference exactly as written in the pod spec (plus `<ref>@<digest>` for a verified reference without a
# digest, the form the mutation below pins it to). Absent input.images means verification is off here,
# and no rule of this section fires.
_verification := c if {
	c := data.regate.config.imageVerification
	is_object(c)
} else := {}

_project_keys := k if {
	k := _verification.projectKeys
	is_object(k)
} else := {}

# `deny` (default, also for any value other than `allow`) or `allow` (admit with a warning).
_registry_error_allowed if _verification.onRegistryError == "allow"

# Key names from a config list (anything but a list of strings counts as none).
_key_names(list) := {k | some k in list; is_string(k)} if is_array(list) else := set()

# Keys the tenant of the request's namespace accepts for images of its own harborProjects.
_tenant_keys := ks if {
	t := tenancy.tenant
	is_string(t)
	ks := _key_names(object.get(tenancy.tenant_config(t), "signingKeys", []))
	is_set(ks)
} else := set()

# The verdict of every image of the request, looked up once.
_verdict[ref] := v if {
	is_object(input.images)
	some i in k8s.images
	ref := i.image
	v := input.images[ref]
	is_object(v)
}

# Keys accepted for each Harbor project of the request: projectKeys[P], plus the tenant's signingKeys
# when P is one of the tenant's own projects.
_accepted[project] := keys if {
	is_object(input.images)
	some p in _parsed
	project := p.project
	is_string(project)
	keys := _key_names(object.get(_project_keys, project, [])) | _own_keys(project)
}

# (A function, not `{k | project in tenant_projects; some k in ...}`: on regorus 0.14's compiled VM a
# comprehension whose FIRST expression is a failing test fails the enclosing rule body instead of
# yielding an empty set.)
_own_keys(project) := _tenant_keys if project in tenant_projects else := set()

# Verified images from an allowed Harbor registry and project: the ones whose signers are judged.
_judged[ref] := v if {
	some ref, v in _verdict
	v.verified == true
	p := _parsed[ref]
	is_object(p)
	p.registry in harbor
	p.project in allowed_projects
}

# Judged images with at least one signer the project accepts.
_trusted contains ref if {
	some ref, v in _judged
	keys := _accepted[_parsed[ref].project]
	is_set(keys)
	some s in _key_names(object.get(v, "signers", []))
	s in keys
}

deny contains {"msg": msg, "field": i.path} if {
	is_object(input.images)
	some i in k8s.images
	not _has_verdict(i.image)
	msg := sprintf("%s: no signature verdict for image %s", [i.what, _short(i.image)])
}

# The lookup is inside the function so that `not _has_verdict(image)` holds when the image has no
# verdict (Rego evaluates a negated call's operands outside the negation: `not
# is_object(input.images[image])` is undefined, not true, for an image without one).
_has_verdict(image) if is_object(input.images[image])

deny contains {"msg": msg, "field": i.path} if {
	some i in k8s.images
	v := _verdict[i.image]
	is_object(v)
	object.get(v, "verified", false) != true
	object.get(v, "registryError", false) != true
	msg := sprintf("%s: image signature not verified: %s", [i.what, _reason(v)])
}

# The registry could not be asked: deny, or admit with a warning when onRegistryError is allow.
_registry_errors contains {"msg": msg, "field": i.path} if {
	some i in k8s.images
	v := _verdict[i.image]
	is_object(v)
	object.get(v, "verified", false) != true
	object.get(v, "registryError", false) == true
	msg := sprintf("%s: cannot verify image signature (registry unavailable): %s", [i.what, _reason(v)])
}

deny contains f if {
	not _registry_error_allowed
	some f in _registry_errors
}

warn contains f if {
	_registry_error_allowed
	some f in _registry_errors
}

# Signed, but by no key the image's project accepts in this namespace (another tenant's CI key, say).
deny contains {"msg": msg, "field": i.path} if {
	some i in k8s.images
	v := _judged[i.image]
	is_object(v)
	not i.image in _trusted
	p := _parsed[i.image]
	keys := object.get(_accepted, p.project, set())
	signers := _key_names(object.get(v, "signers", []))
	msg := sprintf("%s: image signed by %s, but %s accepts %s for project %q", [i.what, _short(_names_text(signers)), _tenant_text, _short(_names_text(keys)), p.project])
}

_names_text(names) := sprintf("[%s]", [concat(", ", sort(names))]) if count(names) > 0 else := "no key"

_reason(v) := _short(object.get(v, "reason", "no reason given"))

# The verified digest must be the pinned one (no tag/digest switch between verification and pull).
deny contains {"msg": msg, "field": i.path} if {
	some i in k8s.images
	v := _verdict[i.image]
	is_object(v)
	object.get(v, "verified", false) == true
	p := _parsed[i.image]
	p.digest != ""
	d := object.get(v, "digest", "")
	d != ""
	d != p.digest
	msg := sprintf("%s: verified digest differs from the pinned digest", [i.what])
}

# --- mutation: pin trusted tag-only references to the verified digest -----------------------------

# `repo:tag` becomes `repo:tag@sha256:...` (the runtime then pulls exactly what was verified); the
# validating webhook finds the same verdict under the pinned reference. Digest references are left alone.
patch contains {"op": "replace", "path": i.pointer, "value": sprintf("%s@%s", [i.image, d])} if {
	k8s.operation in {"CREATE", "UPDATE"}
	some i in k8s.images
	i.image in _trusted
	p := _parsed[i.image]
	p.digest == ""
	not i.image in _previous_images
	d := _judged[i.image].digest
	is_string(d)
	startswith(d, "sha256:")
}

# Image references the object already had before this UPDATE. They are not pinned: rewriting them would
# restart a running Pod's containers, or roll out a Deployment, on an unrelated change (labels, replicas);
# only references the request introduces are pinned.
_previous_images contains c.image if {
	k8s.operation == "UPDATE"
	spec := object.get(k8s.old_obj, k8s.spec_path, {})
	some field in k8s.container_fields
	some c in object.get(spec, field, [])
	is_string(c.image)
}

_previous_images contains v.image.reference if {
	k8s.operation == "UPDATE"
	spec := object.get(k8s.old_obj, k8s.spec_path, {})
	some v in object.get(spec, "volumes", [])
	is_string(v.image.reference)
}

_short(s) := concat("", [substring(s, 0, 57), "..."]) if {
	is_string(s)
	count(s) > 60
} else := s if {
	is_string(s)
} else := sprintf("%v", [s])
