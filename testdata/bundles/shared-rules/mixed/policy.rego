# METADATA
# title: Uses with (interpreter) between two VM policies
# custom:
#   severity: low
package regate.policies.mixed

import data.regate.lib.shared

deny contains "mixed: over its own limit" if {
	shared.too_many with input.parameters as {"maxContainers": 0}
}
