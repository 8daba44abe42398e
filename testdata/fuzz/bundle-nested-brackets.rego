# Library functions for the function-memo tests: `shout` dmeters (never memoized).
package regate.lib.names

shout[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[(s) := upper(s)

tagged(s) := sprintf("%s@%s", [s, input.review.object.metadata.name])

limited(s) := sprintf("%s<=%d", [s, object.get(input.parameters, "max", 0)])

# Calls an input-reading function: not memoized either.
tagged_shout(s) := shout(tagged(s))
