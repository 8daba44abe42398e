package regate.policies.sample_test

# Full references (not an import alias): through an alias regorus evaluates every rule of the
# package, which would count the untested warn rule as partly covered.

pod(labels, image) := {"review": {"object": {
	"metadata": {"labels": labels},
	"spec": {"containers": [{"name": "app", "image": image}]},
}}}

test_owner_label_missing_is_denied if {
	denials := data.regate.policies.sample.deny with input as pod({}, "registry.example.com/app:1.0")
	denials == {"pod has no owner label"}
}

test_latest_tag_is_denied if {
	denials := data.regate.policies.sample.deny with input as pod({"owner": "team-a"}, "nginx:latest")
	denials == {"container app uses the latest tag"}
}

test_compliant_pod_is_allowed if {
	denials := data.regate.policies.sample.deny with input as pod({"owner": "team-a"}, "nginx:1.27")
	count(denials) == 0
}
