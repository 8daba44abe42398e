# METADATA
# title: Spins
# custom:
#   severity: medium
package regate.policies.spin

# 10^10 iterations: only the evaluation budget stops it.
deny contains "impossible" if {
	some x in numbers.range(1, 100000)
	some y in numbers.range(1, 100000)
	x * y == -1
}
