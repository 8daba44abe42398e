# METADATA
# title: regorus compiled-VM quirks
# description: >-
#   Minimal reproducers of the places where regorus 0.14's compiled VM (RVM) and its interpreter
#   disagree. Every rule below must stay silent under Rego semantics; the messages name the quirk.
package regate.policies.rvm_quirks

# 1. An assignment of an undefined value does not fail the body on the VM: `not` then succeeds.
deny contains "quirk 1: undefined assignment, then not" if {
	x := input.review.object.missing
	not startswith(x, "a")
}

# 2. An else chain whose branch iterates with `some` and finds nothing is abandoned on the VM.
found(xs) := "first" if {
	some c in xs
	c == "X"
} else := "second"

deny contains "quirk 2: else after failed iteration" if {
	not found(["a", "b"])
}

# 3. An else branch ending with an assignment of an undefined value abandons the chain on the VM.
maybe(v) := "yes" if v == "never"

last(v) := p if {
	p := maybe(v)
} else := "else"

deny contains "quirk 3: else after undefined last assignment" if {
	not last("z")
}
