# METADATA
# title: strict container count
# custom:
#   severity: low
package regate.policies.strict

import data.regate.lib.shared

deny contains sprintf("strict: %d containers, at most %d", [count(shared.containers), shared.limit]) if shared.too_many

warn contains sprintf("strict: limit is %d", [shared.limit])
