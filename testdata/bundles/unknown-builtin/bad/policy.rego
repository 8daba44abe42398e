# METADATA
# title: Bad
package regate.policies.bad

deny contains "x" if {
	startswith(input.review.name, "a")
	time.now_ns() > 0
}
