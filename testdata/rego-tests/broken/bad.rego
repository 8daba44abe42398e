package regate.lib.broken

ok := 1

oops := [1, 2
