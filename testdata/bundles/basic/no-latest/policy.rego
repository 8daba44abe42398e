# METADATA
# title: No latest tag
# description: Containers pin an image tag other than latest.
# custom:
#   severity: high
#   remediation: Use an explicit version tag or a digest.
#   controls: ["CRA Annex I (1)(3)"]
#   match:
#     kinds: [{apiGroups: ["", apps], kinds: [Pod, Deployment]}]
package regate.policies.no_latest

pod_spec := input.review.object.spec if input.review.kind.kind == "Pod"

pod_spec := input.review.object.spec.template.spec if input.review.kind.kind == "Deployment"

prefix := "spec" if input.review.kind.kind == "Pod"

prefix := "spec.template.spec" if input.review.kind.kind == "Deployment"

deny contains {"msg": sprintf("container %q uses the latest tag", [c.name]), "field": sprintf("%s.containers[%d].image", [prefix, i])} if {
	some i, c in pod_spec.containers
	endswith(c.image, ":latest")
}

patch contains {"op": "add", "path": "/metadata/labels/checked-by", "value": "regate"} if {
	not input.review.object.metadata.labels["checked-by"]
}
