# METADATA
# title: Bad
package regate.policies.bad

deny contains "x" if {
	input.review.name ==
}
