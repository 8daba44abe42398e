# METADATA
# title: Owner label
# custom:
#   severity: low
#   enforcement: warn
#   remediation: Add an owner label.
package regate.policies.hygiene

deny contains "object has no owner label" if {
	input.review.object.metadata.name
	not input.review.object.metadata.labels.owner
}

warn contains "object has no description annotation" if {
	input.review.object.metadata.name
	not input.review.object.metadata.annotations.description
}

# Mutation adds the checked-by label first (no-latest's patch), so this never fires in `check`.
deny contains "not checked" if {
	input.review.operation == "CREATE"
	not input.review.object.metadata.labels["checked-by"]
}
