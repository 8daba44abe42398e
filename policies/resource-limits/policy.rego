# METADATA
# title: Resource requests and limits
# description: >-
#   Every container and init container requests and limits cpu and memory, with limits within the
#   configured maxima and a bounded limit/request ratio. The mutation adds the configured defaults when a
#   value is missing. Ephemeral containers are skipped: the API server forbids resources on them.
# custom:
#   severity: medium
#   remediation: >-
#     Set resources.requests and resources.limits for cpu and memory on every container, e.g. requests
#     {cpu: 100m, memory: 128Mi}, limits {cpu: 400m, memory: 256Mi}, within the platform maxima.
#   controls: ["NIS-2 Art. 21(2)(c)", "DORA Art. 9(2)", "CRA Annex I (1)(3)(h)"]
#   match:
#     operations: [CREATE, UPDATE]
#     # pods/resize changes resources in place; pods/ephemeralcontainers cannot (the API server forbids
#     # resources on ephemeral containers and keeps the other containers as they were).
#     resources: [pods, pods/resize, podtemplates, replicationcontrollers, deployments, replicasets, statefulsets, daemonsets, jobs, cronjobs]
#     kinds:
#       - apiGroups: [""]
#         kinds: [Pod, PodTemplate, ReplicationController]
#       - apiGroups: [apps, extensions]
#         kinds: [Deployment, ReplicaSet, StatefulSet, DaemonSet]
#       - apiGroups: [batch]
#         kinds: [Job, CronJob]
package regate.policies.resource_limits

import data.regate.lib.k8s
import data.regate.lib.quantity

resources := ["cpu", "memory"]

sides := ["requests", "limits"]

max_for := {"cpu": k8s.param("maxCpu", "4"), "memory": k8s.param("maxMemory", "8Gi")}

max_ratio := k8s.param("maxLimitRequestRatio", 4)

defaults := {
	"requests": object.union({"cpu": "100m", "memory": "128Mi"}, _obj(k8s.param("defaultRequests", {}))),
	"limits": object.union({"cpu": "400m", "memory": "256Mi"}, _obj(k8s.param("defaultLimits", {}))),
}

_obj(x) := x if is_object(x) else := {}

# Containers that can carry resources (not ephemeral containers).
subjects contains c if {
	some c in k8s.containers
	c.type != "ephemeralContainers"
}

value(c, side, res) := v if {
	v := c.container.resources[side][res]
	v != null
}

# Every quantity of every subject in units (millicores for cpu, bytes otherwise), parsed once per request
# ({path: {side: {resource: units}}}); a missing or invalid quantity has no entry. Functions are not
# memoised in Rego, and the rules below ask for the same quantity several times.
_units := {c.path: {side: {res: u |
	some res in resources
	u := quantity.in_units(res, value(c, side, res))
} |
	some side in sides
} |
	some c in subjects
}

units(c, side, res) := _units[c.path][side][res]

# The configured maxima in units.
max_units := {res: quantity.in_units(res, max_for[res]) | some res in resources}

deny contains {"msg": msg, "field": sprintf("%s.resources.%s.%s", [c.path, side, res])} if {
	some c in subjects
	some side in sides
	some res in resources
	not value(c, side, res)
	msg := sprintf("container %s: missing resources.%s.%s", [c.name, side, res])
}

deny contains {"msg": msg, "field": sprintf("%s.resources.%s.%s", [c.path, side, res])} if {
	some c in subjects
	some side in sides
	some res in resources
	v := value(c, side, res)
	not units(c, side, res)
	msg := sprintf("container %s: resources.%s.%s %v is not a valid quantity", [c.name, side, res, v])
}

deny contains {"msg": msg, "field": sprintf("%s.resources.requests.%s", [c.path, res])} if {
	some c in subjects
	some res in resources
	units(c, "requests", res) <= 0
	msg := sprintf("container %s: resources.requests.%s must be greater than 0", [c.name, res])
}

deny contains {"msg": msg, "field": sprintf("%s.resources.limits.%s", [c.path, res])} if {
	some c in subjects
	some res in resources
	limit := units(c, "limits", res)
	limit > max_units[res]
	msg := sprintf("container %s: limits.%s %v exceeds the maximum %v", [c.name, res, value(c, "limits", res), max_for[res]])
}

deny contains {"msg": msg, "field": sprintf("%s.resources.limits.%s", [c.path, res])} if {
	some c in subjects
	some res in resources
	limit := units(c, "limits", res)
	request := units(c, "requests", res)
	request > 0
	limit > max_ratio * request
	msg := sprintf("container %s: limits.%s is %v x requests.%s, above the allowed ratio %v", [c.name, res, round((limit * 10) / request) / 10, res, max_ratio])
}

# --- mutation: configured defaults for missing values --------------------------------------------

patch contains {"op": "add", "path": sprintf("%s/resources/%s/%s", [c.pointer, side, res]), "value": v} if {
	some c in subjects
	some side in sides
	some res in resources
	not value(c, side, res)
	v := fill(c, side, res)
}

# Both missing: the default. Only the request missing: the default request when it keeps request <= limit
# within the ratio, else the limit (as Kubernetes defaults a missing request). Only the limit missing:
# the default limit when it is >= the request, within the ratio and the maximum, else the request.
fill(c, side, res) := defaults[side][res] if {
	not value(c, _other[side], res)
} else := defaults.requests[res] if {
	side == "requests"
	limit := units(c, "limits", res)
	d := quantity.in_units(res, defaults.requests[res])
	d <= limit
	limit <= max_ratio * d
} else := value(c, "limits", res) if {
	side == "requests"
	units(c, "limits", res)
} else := defaults.limits[res] if {
	side == "limits"
	request := units(c, "requests", res)
	d := quantity.in_units(res, defaults.limits[res])
	d >= request
	d <= max_ratio * request
	d <= quantity.in_units(res, max_for[res])
} else := value(c, "requests", res) if {
	side == "limits"
	units(c, "requests", res)
}

_other := {"requests": "limits", "limits": "requests"}
