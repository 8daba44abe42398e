package regate.slow_test

test_fast if {
	true
}

# Ten billion iterations: only the per-test time budget ends it.
test_runaway if {
	some i in numbers.range(1, 100000)
	some j in numbers.range(1, 100000)
	i * j < 0
}
