# METADATA
# title: names
# custom:
#   severity: low
package regate.policies.names

import data.regate.lib.names

deny contains msg if {
	some c in input.review.object.spec.containers
	msg := sprintf("names %s %s %s %s", [names.shout(c.name), names.tagged(c.name), names.limited(c.name), names.tagged_shout(c.name)])
}
