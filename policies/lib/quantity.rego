# Kubernetes resource quantities ("500m", "1.5", "512Mi", "1e3", "2G"), parsed exactly.
#
# regorus has `units.parse`/`units.parse_bytes`, but they do not follow the Kubernetes grammar:
# units.parse accepts suffixes Kubernetes rejects ("K", "ki", "d", "h", "da") and rejects "u" (micro),
# and units.parse_bytes reads "m" as mega. So quantities are parsed here, as a rational number
# num/den of base units (cores, bytes), and converted with Kubernetes' rounding (up): millicores for CPU,
# bytes for memory. Integer arithmetic keeps comparisons exact ("0.1" is 100m, not 100.00000000000001).
package regate.lib.quantity

# Kubernetes' grammar (apimachinery resource.Quantity):
#   <quantity>        ::= <signedNumber><suffix>
#   <signedNumber>    ::= <sign><numericalValue> | <numericalValue>
#   <numericalValue>  ::= <digits> | <digits>.<digits> | <digits>. | .<digits>
#   <suffix>          ::= Ki | Mi | Gi | Ti | Pi | Ei | n | u | m | "" | k | M | G | T | P | E
#                       | e<signedNumber> | E<signedNumber>
# Digit groups may start with zeros ("0.05", "1.05Gi", "007"). The exponent is an integer (Kubernetes
# reads it with ParseInt); exponents beyond 99 are rejected here (no resource value needs them, and they
# would only build enormous numbers). A lone sign or point (".", "+"), which the grammar excludes, is
# rejected too.
_re := `^([+-]?)([0-9]*)(?:\.([0-9]*))?(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?[0-9]+)?$`

_exponent_re := `^[eE]([+-]?)([0-9]+)$`

_suffix := {
	"": [1, 1],
	"n": [1, 1000000000],
	"u": [1, 1000000],
	"m": [1, 1000],
	"k": [1000, 1],
	"M": [1000000, 1],
	"G": [1000000000, 1],
	"T": [1000000000000, 1],
	"P": [1000000000000000, 1],
	"E": [1000000000000000000, 1],
	"Ki": [1024, 1],
	"Mi": [1048576, 1],
	"Gi": [1073741824, 1],
	"Ti": [1099511627776, 1],
	"Pi": [1125899906842624, 1],
	"Ei": [1152921504606846976, 1],
}

# 10^k for k >= 0: a table for the usual exponents (digits after the point, suffix exponents), a product
# above it.
_pow10 := [
	1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000, 1000000000, 10000000000,
	100000000000, 1000000000000, 10000000000000, 100000000000000, 1000000000000000,
	10000000000000000, 100000000000000000, 1000000000000000000,
]

pow10(k) := p if {
	p := _pow10[k]
} else := product([10 | some _ in numbers.range(1, k)]) if {
	k > 0
}

# One definition with `else`, so the named suffixes (the usual case) never run the exponent regex.
_multiplier(s) := m if {
	m := _suffix[s]
} else := [pow10(e), 1] if {
	x := regex.find_all_string_submatch_n(_exponent_re, s, 1)[0]
	x[1] != "-"
	e := _digits(x[2])
	e <= 99
} else := [1, pow10(e)] if {
	x := regex.find_all_string_submatch_n(_exponent_re, s, 1)[0]
	x[1] == "-"
	e := _digits(x[2])
	e <= 99
}

_sign(s) := -1 if s == "-" else := 1

# A digit string as a number. Leading zeros are stripped first: Kubernetes reads "05" as 5, OPA's
# to_number too, but regorus's to_number rejects leading zeros (and a leading "+").
_digits(s) := 0 if {
	trim_left(s, "0") == ""
} else := to_number(trim_left(s, "0"))

# The quantity as {"num", "den"} base units; undefined when `q` is not a valid quantity.
parse(q) := {"num": q, "den": 1} if {
	is_number(q)
} else := {"num": sign * ((_digits(m[2]) * scale) + _digits(m[3])) * mult[0], "den": scale * mult[1]} if {
	is_string(q)
	m := regex.find_all_string_submatch_n(_re, q, 1)[0]
	concat("", [m[2], m[3]]) != ""
	sign := _sign(m[1])
	scale := pow10(count(m[3]))
	mult := _multiplier(m[4])
}

valid(q) if parse(q)

# CPU in millicores, rounded up like Kubernetes' MilliValue.
millicores(q) := ceil((p.num * 1000) / p.den) if p := parse(q)

# Memory in bytes, rounded up like Kubernetes' Value.
bytes(q) := ceil(p.num / p.den) if p := parse(q)

# The quantity in the unit used for `resource` (millicores for cpu, bytes otherwise).
in_units("cpu", q) := millicores(q)

in_units(resource, q) := bytes(q) if resource != "cpu"
