package regate.lib.quantity_test

import data.regate.lib.quantity as q

test_cpu_quantities if {
	every s, m in {"500m": 500, "1.5": 1500, "1": 1000, "0.1": 100, ".5": 500, "1.": 1000, "2k": 2000000, "100u": 1, "1n": 1, "1e3": 1000000, "1E-3": 1, "+2": 2000, "250m": 250, "0": 0} {
		q.millicores(s) == m
	}
	q.millicores(2) == 2000
	q.millicores(0.25) == 250
}

test_memory_quantities if {
	every s, b in {"512Mi": 536870912, "1Gi": 1073741824, "1.5Gi": 1610612736, "1G": 1000000000, "128M": 128000000, "1Ki": 1024, "1k": 1000, "2Ti": 2199023255552, "1e6": 1000000, "1500m": 2, "1Ei": 1152921504606846976, "8Gi": 8589934592} {
		q.bytes(s) == b
	}
	q.bytes(1073741824) == 1073741824
}

test_negative if {
	q.millicores("-1") == -1000
}

test_invalid_quantities if {
	every s in ["", "abc", "1K", "1ki", "1 Gi", "1.5.5", "Gi", ".", "1d", "1h", "1da", "1Gib", "--1", "1e", "1e999", "0x10", "1,5"] {
		not q.valid(s)
		not q.millicores(s)
		not q.bytes(s)
	}
	not q.valid(null)
	not q.valid(true)
}

test_in_units if {
	q.in_units("cpu", "1") == 1000
	q.in_units("memory", "1Ki") == 1024
	q.in_units("ephemeral-storage", "1k") == 1000
}

test_exponent_table_end if q.pow10(18) == 1000000000000000000
test_exponent_beyond_table if q.pow10(20) == 100000000000000000000
test_large_exponent_suffix if q.bytes("1e20") == 100000000000000000000
