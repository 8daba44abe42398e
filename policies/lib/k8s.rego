# Shared Kubernetes helpers for every regate policy: the request, the object being judged, its pod
# spec(s) and containers with their field paths. Policies never re-implement these, so a new workload
# kind or container list is added here once and every policy covers it.
#
# The kind is always the REQUEST kind (input.review.kind), never object.kind: for pods/ephemeralcontainers
# it is Pod, for */scale it is Scale (which holds no pod spec, so container rules see nothing), and it cannot
# be spoofed by the object's own apiVersion/kind fields.
package regate.lib.k8s

# A policy parameter from regate.yaml (`input.parameters`), or `default_value` when unset or null.
param(name, default_value) := v if {
	v := input.parameters[name]
	v != null
} else := default_value

operation := input.review.operation

# Request kind and API group (`Pod`/``, `Deployment`/`apps`, `Scale`/`autoscaling`).
kind := input.review.kind.kind

group := object.get(input.review, ["kind", "group"], "")

sub_resource := s if {
	s := input.review.subResource
	is_string(s)
} else := ""

# True for requests on the object itself (not a subresource such as status, scale or exec).
is_main_resource if sub_resource == ""

username := object.get(input.review, ["userInfo", "username"], "")

groups := object.get(input.review, ["userInfo", "groups"], [])

# The object being judged: `object`, or `oldObject` for DELETE (DELETE carries no object).
obj := input.review.oldObject if {
	input.review.operation == "DELETE"
	is_object(input.review.oldObject)
} else := input.review.object if {
	is_object(input.review.object)
}

# The previous state on UPDATE (and the deleted object on DELETE).
old_obj := input.review.oldObject if is_object(input.review.oldObject)

# The namespace of the request; for requests without one, the object's own metadata.namespace. A
# Namespace object is cluster-scoped and in no namespace, although the API server (Kubernetes 1.20+)
# puts its own name in request.namespace for every operation on it.
namespace := "" if {
	kind == "Namespace"
	group == ""
} else := ns if {
	ns := input.review.namespace
	is_string(ns)
	ns != ""
} else := ns if {
	ns := obj.metadata.namespace
	is_string(ns)
	ns != ""
} else := ""

is_namespaced if namespace != ""

labels := object.get(obj, ["metadata", "labels"], {})

annotations := object.get(obj, ["metadata", "annotations"], {})

name := n if {
	n := input.review.name
	is_string(n)
	n != ""
} else := object.get(obj, ["metadata", "name"], "")

# Kinds whose objects carry a pod spec, with the API groups they are served from.
workload_kinds := {
	"Pod": {""},
	"PodTemplate": {""},
	"ReplicationController": {""},
	"Deployment": {"apps", "extensions"},
	"ReplicaSet": {"apps", "extensions"},
	"StatefulSet": {"apps"},
	"DaemonSet": {"apps", "extensions"},
	"Job": {"batch"},
	"CronJob": {"batch"},
}

# The match stanza every container policy uses lists exactly these kinds.
is_workload if group in workload_kinds[kind]

_template_kinds := {"Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job", "ReplicationController"}

# Where the pod spec sits in an object of the request kind.
spec_path := ["spec"] if {
	kind == "Pod"
} else := ["template", "spec"] if {
	kind == "PodTemplate"
} else := ["spec", "jobTemplate", "spec", "template", "spec"] if {
	kind == "CronJob"
} else := ["spec", "template", "spec"] if {
	kind in _template_kinds
}

# Where the pod metadata (labels, annotations) sits: next to the pod spec.
_meta_path := array.concat(array.slice(spec_path, 0, count(spec_path) - 1), ["metadata"])

# Dotted field path (`spec.template.spec`) and JSON pointer (`/spec/template/spec`) of a path array.
dotted(path) := concat(".", path)

pointer(path) := concat("", [sprintf("/%s", [escape_pointer(p)]) | some p in path])

# RFC 6901 escaping of one reference token.
escape_pointer(token) := replace(replace(sprintf("%v", [token]), "~", "~0"), "/", "~1")

# The pod spec(s) of the object: {"spec", "metadata", "path", "pointer"}. One for every workload kind; none
# for other kinds (Scale, Binding, PodExecOptions, ...).
pod_specs contains ps if {
	is_workload
	spec := object.get(obj, spec_path, null)
	is_object(spec)
	ps := {
		"spec": spec,
		"metadata": object.get(obj, _meta_path, {}),
		"path": dotted(spec_path),
		"pointer": pointer(spec_path),
	}
}

# The previous pod spec on UPDATE (null when there was none).
# (Every else branch in this bundle ends with a test, not with an assignment that may be undefined:
# upstream regorus 0.14's compiled VM abandons the whole else chain when the last expression of a
# branch assigns undefined, where the interpreter moves on to the next branch; the vendored regorus is
# fixed, patch 19.)
old_pod_spec := s if {
	is_workload
	s := object.get(old_obj, spec_path, null)
	s != null
} else := null

new_pod_spec := s if {
	is_workload
	is_object(input.review.object)
	s := object.get(input.review.object, spec_path, null)
	s != null
} else := null

# True when an UPDATE leaves every pod spec as it was (metadata-only change such as labels or finalizers).
pod_spec_unchanged if {
	operation == "UPDATE"
	is_object(new_pod_spec)
	new_pod_spec == old_pod_spec
}

container_fields := ["containers", "initContainers", "ephemeralContainers"]

# Every container of every pod spec with its field path, e.g.
# {"container": {...}, "name": "app", "type": "initContainers", "index": 1,
#  "path": "spec.jobTemplate.spec.template.spec.initContainers[1]",
#  "pointer": "/spec/jobTemplate/spec/template/spec/initContainers/1"}.
containers contains c if {
	some ps in pod_specs
	some field in container_fields
	list := object.get(ps.spec, field, [])
	is_array(list)
	some i, container in list
	is_object(container)
	c := {
		"container": container,
		"name": object.get(container, "name", sprintf("%s[%d]", [field, i])),
		"type": field,
		"index": i,
		"path": sprintf("%s.%s[%d]", [ps.path, field, i]),
		"pointer": sprintf("%s/%s/%d", [ps.pointer, field, i]),
	}
}

# Every image the pod spec(s) run: container images, and `image` volumes (Kubernetes 1.31+), which
# mount an OCI image and must come from the same registries. `path` is the dotted field path,
# `pointer` the JSON pointer of the image string (for patches).
images contains {
	"image": c.container.image,
	"path": sprintf("%s.image", [c.path]),
	"pointer": sprintf("%s/image", [c.pointer]),
	"what": sprintf("container %s", [c.name]),
} if {
	some c in containers
	is_string(c.container.image)
}

images contains {
	"image": v.image.reference,
	"path": sprintf("%s.volumes[%d].image.reference", [ps.path, i]),
	"pointer": sprintf("%s/volumes/%d/image/reference", [ps.pointer, i]),
	"what": sprintf("volume %s", [object.get(v, "name", "")]),
} if {
	some ps in pod_specs
	some i, v in volumes_of(ps.spec)
	is_string(v.image.reference)
}

# The volumes of a pod spec (empty when absent or malformed).
volumes_of(spec) := v if {
	v := spec.volumes
	is_array(v)
} else := []

# Containers that list no image at all (a Pod without images is rejected by the API server, but a
# template is stored as written).
missing_images contains c if {
	some c in containers
	not _names_image(c.container)
}

# The lookup is inside the function so that `not _names_image(container)` holds when the image is
# absent (Rego evaluates a negated call's operands outside the negation: `not is_string(x.image)` is
# undefined, not true, for an absent image).
_names_image(container) if is_string(container.image)

# True when `selector` (a LabelSelector) is empty, i.e. selects everything.
empty_selector(selector) if {
	is_object(selector)
	count(object.get(selector, "matchLabels", {})) == 0
	count(object.get(selector, "matchExpressions", [])) == 0
}
