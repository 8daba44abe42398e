package regate.policies.trusted_images_test

import data.regate.lib.testing as fx
import data.regate.policies.trusted_images as ti

d := fx.digest

good := sprintf("harbor.example.eu/shop/app:1.0@%s", [d])

pod(image) := {"containers": [{"name": "app", "image": image}]}

deny(inp) := v if {
	v := ti.deny with input as inp with data.inventory as fx.inventory with data.regate.config as fx.config
}

deny_image(image) := deny(fx.review_for("Pod", pod(image)))

test_pinned_image_from_tenant_project_is_allowed if {
	count(deny_image(good)) == 0
}

test_shared_project_is_allowed if {
	count(deny_image(sprintf("harbor.example.eu/library/nginx@%s", [d]))) == 0
	count(deny_image(sprintf("harbor.example.eu/base-images/distroless/static@%s", [d]))) == 0
}

test_host_case_is_ignored if {
	count(deny_image(sprintf("HARBOR.Example.EU/shop/app@%s", [d]))) == 0
}

test_implicit_docker_hub_is_denied if {
	v := deny_image("nginx")
	fx.has(v, "container app: registry docker.io is not an allowed Harbor (harbor.example.eu)")
	fx.has(v, "container app: image is not pinned by digest")
}

test_other_tenants_project_is_denied if {
	fx.has(deny_image(sprintf("harbor.example.eu/billing/app@%s", [d])), `Harbor project "billing" is not allowed for tenant "shop"`)
}

test_project_of_namespace_without_tenant if {
	r := fx.review_for("Pod", pod(good))
	v := deny({"review": object.union(r.review, {"namespace": "legacy"})})
	fx.has(v, `Harbor project "shop" is not allowed for namespace "legacy" (no tenant)`)
}

test_unpinned_image_is_denied if {
	v := deny_image("harbor.example.eu/shop/app:1.0")
	fx.has(v, "container app: image is not pinned by digest (@sha256:...)")
	"spec.containers[0].image" in fx.fields(v)
}

test_digest_not_required_when_disabled if {
	r := fx.review_for("Pod", pod("harbor.example.eu/shop/app:1.0"))
	count(deny(object.union(r, {"parameters": {"requireDigest": false}}))) == 0
}

test_digest_without_tag_is_allowed if {
	count(deny_image(sprintf("harbor.example.eu/shop/app@%s", [d]))) == 0
}

# Evasions: every one must be denied.
test_reference_evasions_are_denied if {
	every ref, fragment in {
		sprintf("harbor.example.eu.evil.io/shop/app@%s", [d]): "registry harbor.example.eu.evil.io is not an allowed Harbor",
		"harbor.example.eu@evil": "invalid image reference: digest must be",
		sprintf("harbor.example.eu:443/shop/app@%s", [d]): "registry port 443 is not allowed",
		sprintf("harbor.example.eu:5000/shop/app@%s", [d]): "registry port 5000 is not allowed",
		sprintf("evil.io/harbor.example.eu/shop/app@%s", [d]): "registry evil.io is not an allowed Harbor",
		sprintf("harbor.example.eu/Shop/app@%s", [d]): "must be lower-case",
		sprintf("user@harbor.example.eu/shop/app@%s", [d]): "more than one @",
		"harbor.example.eu/shop/app@sha256:abc": "invalid image reference",
		sprintf("harbor.example.eu/shop/../billing/app@%s", [d]): "invalid repository component",
		sprintf("shop/app@%s", [d]): "registry docker.io",
		sprintf("localhost/shop/app@%s", [d]): "registry localhost",
		sprintf("harbor.example.eu/shopping/app@%s", [d]): `Harbor project "shopping"`,
	} {
		fx.has(deny_image(ref), fragment)
	}
}

test_every_container_list_and_kind if {
	spec := {
		"containers": [{"name": "a", "image": good}],
		"initContainers": [{"name": "b", "image": "busybox"}],
		"ephemeralContainers": [{"name": "c", "image": "busybox"}],
	}
	every kind, path in fx.spec_paths {
		v := deny(fx.review_for(kind, spec))
		sprintf("%s.initContainers[0].image", [path]) in fx.fields(v)
		sprintf("%s.ephemeralContainers[0].image", [path]) in fx.fields(v)
		not sprintf("%s.containers[0].image", [path]) in fx.fields(v)
	}
}

test_image_volume_is_checked if {
	spec := {"containers": [{"name": "a", "image": good}], "volumes": [{"name": "models", "image": {"reference": "ghcr.io/x/models:1"}}]}
	v := deny(fx.review_for("Pod", spec))
	fx.has(v, "volume models: registry ghcr.io is not an allowed Harbor")
	"spec.volumes[0].image.reference" in fx.fields(v)
}

test_missing_image_is_denied if {
	fx.has(deny(fx.review_for("Deployment", {"containers": [{"name": "a"}]})), "container a has no image")
}

test_non_string_image_is_denied if {
	fx.has(deny(fx.review_for("Deployment", {"containers": [{"name": "a", "image": 42}]})), "container a has no image")
}

# UPDATE that swaps the image of a compliant workload.
test_update_swapping_image_is_denied if {
	v := deny(fx.update_for("Deployment", pod(good), pod("docker.io/evil/miner:latest")))
	fx.has(v, "registry docker.io is not an allowed Harbor")
}

# --- signature verdicts ---

with_verdicts(inp, verdicts) := object.union(inp, {"images": verdicts})

test_signature_checks_skipped_without_verdicts if {
	count(deny_image(good)) == 0
}

test_verified_signature_is_allowed if {
	inp := with_verdicts(fx.review_for("Pod", pod(good)), {good: {"verified": true, "digest": d, "reason": "signed by shop CI"}})
	count(deny(inp)) == 0
}

test_missing_verdict_is_denied if {
	inp := with_verdicts(fx.review_for("Pod", pod(good)), {})
	fx.has(deny(inp), "container app: no signature verdict for image")
}

test_unverified_signature_is_denied_with_reason if {
	inp := with_verdicts(fx.review_for("Pod", pod(good)), {good: {"verified": false, "reason": "no matching signatures"}})
	fx.has(deny(inp), "container app: image signature not verified: no matching signatures")
}

test_verified_must_be_boolean_true if {
	inp := with_verdicts(fx.review_for("Pod", pod(good)), {good: {"verified": "true"}})
	fx.has(deny(inp), "image signature not verified: no reason given")
}

test_verdict_is_keyed_by_the_reference_as_written if {
	inp := with_verdicts(fx.review_for("Pod", pod(good)), {sprintf("harbor.example.eu/shop/app@%s", [d]): {"verified": true}})
	fx.has(deny(inp), "no signature verdict")
}

test_verified_digest_must_match_pinned_digest if {
	other := "sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"
	inp := with_verdicts(fx.review_for("Pod", pod(good)), {good: {"verified": true, "digest": other}})
	fx.has(deny(inp), "verified digest differs from the pinned digest")
}

test_long_reason_is_shortened if {
	reason := concat("", ["x" | some _ in numbers.range(1, 200)])
	inp := with_verdicts(fx.review_for("Pod", pod(good)), {good: {"verified": false, "reason": reason}})
	some m in fx.msgs(deny(inp))
	endswith(m, "...")
	count(m) < 120
}
