# METADATA
# title: Sample policy for the regate test fixtures
# description: Pods carry an owner label, do not use the latest tag and do not use the host network.
# custom:
#   severity: low
#   enforcement: deny
#   match:
#     kinds:
#       - apiGroups: [""]
#         kinds: [Pod]
package regate.policies.sample

deny contains "pod has no owner label" if {
	not input.review.object.metadata.labels.owner
}

deny contains msg if {
	some c in input.review.object.spec.containers
	endswith(c.image, ":latest")
	msg := sprintf("container %s uses the latest tag", [c.name])
}

# Never exercised by the tests: lines 24 to 26 stay uncovered.
warn contains msg if {
	input.review.object.spec.hostNetwork
	msg := "pod uses the host network"
}
