package regate.policies.workload_hygiene_test

import data.regate.lib.testing as fx
import data.regate.policies.workload_hygiene as wh

deny(inp) := v if {
	v := wh.deny with input as inp
}

probed := fx.good_container("app")

bare := {"name": "app", "image": "x"}

test_probes_and_labels_present_is_clean if {
	every kind, _ in fx.spec_paths {
		count(deny(fx.review_for(kind, {"containers": [probed], "initContainers": [bare]}))) == 0
	}
}

test_missing_probes_are_reported if {
	v := deny(fx.review_for("Deployment", {"containers": [bare]}))
	fx.has(v, "container app has no livenessProbe")
	fx.has(v, "container app has no readinessProbe")
	"spec.template.spec.containers[0].readinessProbe" in fx.fields(v)
}

test_init_and_ephemeral_containers_need_no_probes if {
	count(deny(fx.review_for("StatefulSet", {"containers": [probed], "initContainers": [bare], "ephemeralContainers": [bare]}))) == 0
}

test_batch_kinds_need_no_probes if {
	count(deny(fx.review_for("Job", {"containers": [bare]}))) == 0
	count(deny(fx.review_for("CronJob", {"containers": [bare]}))) == 0
}

test_missing_labels_are_reported if {
	r := fx.review_for("Deployment", {"containers": [probed]})
	obj := object.union(object.remove(r.review.object, ["metadata"]), {"metadata": {"name": "web", "labels": {"app.kubernetes.io/name": "web", "app.kubernetes.io/version": ""}}})
	v := deny({"review": object.union(object.remove(r.review, ["object"]), {"object": obj})})
	fx.has(v, "missing label app.kubernetes.io/version (needed for auditing)")
	not fx.has(v, "app.kubernetes.io/name")
	"metadata.labels[app.kubernetes.io/version]" in fx.fields(v)
}

test_required_labels_are_configurable if {
	r := fx.review_for("Deployment", {"containers": [probed]})
	fx.has(deny(object.union(r, {"parameters": {"requiredLabels": ["team"]}})), "missing label team")
}

test_delete_is_ignored if {
	r := fx.review_for("Deployment", {"containers": [bare]})
	inp := {"review": object.union(r.review, {"operation": "DELETE", "object": null, "oldObject": r.review.object})}
	not fx.has(deny(inp), "missing label")
}

test_pods_that_run_to_completion_need_no_probes if {
	every policy in ["Never", "OnFailure"] {
		count(deny(fx.review_for("Pod", {"restartPolicy": policy, "containers": [bare]}))) == 0
	}
	fx.has(deny(fx.review_for("Pod", {"restartPolicy": "Always", "containers": [bare]})), "has no livenessProbe")
	# restartPolicy on a Deployment template cannot be Never; only Pods are exempted.
	fx.has(deny(fx.review_for("Deployment", {"restartPolicy": "Never", "containers": [bare]})), "has no livenessProbe")
}
