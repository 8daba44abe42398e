# METADATA
# title: Trusted images
# description: >-
#   Images come from the configured Harbor host(s), from the tenant's own Harbor projects or the shared
#   ones, pinned by digest, and (when the entry point verifies signatures) with a verified signature.
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
_invalid[ref] := reason if {
	some i in k8s.images
	ref := i.image
	reason := images.invalid_reason(ref)
}

_parsed[ref] := p if {
	some i in k8s.images
	ref := i.image
	p := images.parse(ref)
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

# Signature verdicts, when the entry point verified signatures: input.images is keyed by the image
# reference exactly as written in the pod spec. Absent input.images means verification is off here.
deny contains {"msg": msg, "field": i.path} if {
	is_object(input.images)
	some i in k8s.images
	not is_object(input.images[i.image])
	msg := sprintf("%s: no signature verdict for image %s", [i.what, _short(i.image)])
}

deny contains {"msg": msg, "field": i.path} if {
	is_object(input.images)
	some i in k8s.images
	verdict := input.images[i.image]
	is_object(verdict)
	object.get(verdict, "verified", false) != true
	msg := sprintf("%s: image signature not verified: %s", [i.what, _short(object.get(verdict, "reason", "no reason given"))])
}

# The verified digest must be the pinned one (no tag/digest switch between verification and pull).
deny contains {"msg": msg, "field": i.path} if {
	is_object(input.images)
	some i in k8s.images
	verdict := input.images[i.image]
	object.get(verdict, "verified", false) == true
	p := _parsed[i.image]
	p.digest != ""
	d := object.get(verdict, "digest", "")
	d != ""
	d != p.digest
	msg := sprintf("%s: verified digest differs from the pinned digest", [i.what])
}

_short(s) := concat("", [substring(s, 0, 57), "..."]) if {
	is_string(s)
	count(s) > 60
} else := s if {
	is_string(s)
} else := sprintf("%v", [s])
