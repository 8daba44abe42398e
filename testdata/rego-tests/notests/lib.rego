package regate.lib.notests

answer := 42
