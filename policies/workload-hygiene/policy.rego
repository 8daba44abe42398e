# METADATA
# title: Workload hygiene
# description: >-
#   Long-running containers declare liveness and readiness probes, and workloads carry the
#   app.kubernetes.io/name and app.kubernetes.io/version labels that audits and incident response rely
#   on. Reported as warnings by default (enforcement warn).
# custom:
#   severity: low
#   remediation: >-
#     Add livenessProbe and readinessProbe to every container (not init containers; Jobs, CronJobs and
#     Pods with restartPolicy Never or OnFailure are exempt) and the labels app.kubernetes.io/name and app.kubernetes.io/version to the workload.
#   controls: ["NIS-2 Art. 21(2)(c)", "DORA Art. 9(4)(e)", "CRA Annex I (1)(3)(j)"]
#   enforcement: warn
#   match:
#     operations: [CREATE, UPDATE]
#     kinds:
#       - apiGroups: [""]
#         kinds: [Pod, PodTemplate, ReplicationController]
#       - apiGroups: [apps, extensions]
#         kinds: [Deployment, ReplicaSet, StatefulSet, DaemonSet]
#       - apiGroups: [batch]
#         kinds: [Job, CronJob]
package regate.policies.workload_hygiene

import data.regate.lib.k8s

# Run-to-completion kinds have no use for probes (keyed on the request kind, which a tenant cannot set).
batch_kinds := {"Job", "CronJob"}

deny contains {"msg": sprintf("container %s has no %s", [c.name, probe]), "field": sprintf("%s.%s", [c.path, probe])} if {
	k8s.is_workload
	not k8s.kind in batch_kinds
	not _runs_to_completion
	some c in k8s.containers
	c.type == "containers"
	some probe in ["livenessProbe", "readinessProbe"]
	not _declares_probe(c.container, probe)
}

deny contains {"msg": sprintf("missing label %s (needed for auditing)", [label]), "field": sprintf("metadata.labels[%s]", [label])} if {
	k8s.is_workload
	is_object(input.review.object)
	some label in k8s.param("requiredLabels", ["app.kubernetes.io/name", "app.kubernetes.io/version"])
	not _has_label(label)
}

# A Pod that is never restarted (helm test pods, one-off tasks) runs to completion like a Job.
_runs_to_completion if {
	some ps in k8s.pod_specs
	k8s.kind == "Pod"
	object.get(ps.spec, "restartPolicy", "Always") in {"Never", "OnFailure"}
}

# The lookups happen inside these functions, not as operands of the `not`s above: Rego evaluates a
# negated call's operands outside the negation, so an absent probe or label would make those bodies
# undefined rather than the `not` true.
_declares_probe(container, probe) if is_object(container[probe])

_has_label(name) if _nonempty(k8s.labels[name])

_nonempty(v) if {
	is_string(v)
	v != ""
}
