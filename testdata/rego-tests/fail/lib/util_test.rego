package regate.lib.util_test

import data.regate.lib.util

test_double_passes if {
	util.double(2) == 4
}

test_double_fails if {
	print("double(2) is", util.double(2))
	util.double(2) == 5
}

# regate evaluates with strict builtin errors: this is an error, not a failure.
test_number_errors if {
	to_number("x") == 1
}
