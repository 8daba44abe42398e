package regate.lib.util

double(x) := x * 2
