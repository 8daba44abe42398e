package regate.lib.broken_test

test_ok if {
	data.regate.lib.broken.ok == 1
}
