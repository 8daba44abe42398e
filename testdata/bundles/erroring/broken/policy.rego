# METADATA
# title: Broken at runtime
# custom:
#   severity: medium
package regate.policies.broken

deny contains "never" if {
	to_number(input.review.object.metadata.name) > 3
}
