# METADATA
# title: lenient container count
# custom:
#   severity: low
package regate.policies.lenient

import data.regate.lib.shared

deny contains sprintf("lenient: %d containers, at most %d", [count(shared.containers), shared.limit]) if shared.too_many

warn contains sprintf("lenient: limit is %d", [shared.limit])
