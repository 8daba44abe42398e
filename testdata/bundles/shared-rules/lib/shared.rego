# Library rules shared by the policies of this bundle: `containers` reads only the review (reused from
# one policy to the next), `limit` reads the policy's parameters (never reused across policies).
package regate.lib.shared

containers contains c if some c in input.review.object.spec.containers

limit := object.get(input.parameters, "maxContainers", 1)

too_many if count(containers) > limit
