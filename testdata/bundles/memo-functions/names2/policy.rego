# METADATA
# title: names2
# custom:
#   severity: low
package regate.policies.names2

import data.regate.lib.names

deny contains msg if {
	some c in input.review.object.spec.containers
	msg := sprintf("names2 %s %s %s %s", [names.shout(c.name), names.tagged(c.name), names.limited(c.name), names.tagged_shout(c.name)])
}
