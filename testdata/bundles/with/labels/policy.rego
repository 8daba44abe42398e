# METADATA
# title: Needs a team label
# custom:
#   severity: medium
package regate.policies.labels

missing(obj) if not obj.metadata.labels.team

deny contains "object has no team label" if {
	missing(input.review.object)
	# `with` keeps this policy on the interpreter.
	not missing(input.review.object) with input.review.object as {"metadata": {"labels": {"team": "x"}}}
}
