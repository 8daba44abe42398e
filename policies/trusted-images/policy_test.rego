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
	inp := with_verdicts(fx.review_for("Pod", pod(good)), {good: signed_by(["shop-ci"])})
	count(vdeny(inp)) == 0
	count(vwarn(inp)) == 0
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

# --- signer acceptance, registry errors, digest pinning ---

# fx.config plus signing keys: each tenant its CI key for its own projects, the platform key for the
# shared projects.
vconfig := object.union(fx.config, {
	"tenancy": {"tenants": {"shop": {"signingKeys": ["shop-ci"]}, "billing": {"signingKeys": ["billing-ci"]}}},
	"imageVerification": {"enabled": true, "projectKeys": {"library": ["platform-2026"], "base-images": ["platform-2026"]}},
})

signed_by(keys) := {"verified": true, "digest": d, "signers": keys, "reason": sprintf("signed by %s", [concat(", ", keys)]), "registryError": false}

registry_down := {"verified": false, "digest": "", "signers": [], "reason": "cannot resolve the tag to a digest: connection refused", "registryError": true}

vdeny(inp) := v if {
	v := ti.deny with input as inp with data.inventory as fx.inventory with data.regate.config as vconfig
}

vwarn(inp) := v if {
	v := ti.warn with input as inp with data.inventory as fx.inventory with data.regate.config as vconfig
}

vpatch(inp) := v if {
	v := ti.patch with input as inp with data.inventory as fx.inventory with data.regate.config as vconfig
}

# A Pod running `image`, with `verdict` for it.
signed_pod(image, verdict) := with_verdicts(fx.review_for("Pod", pod(image)), {image: verdict})

lib_image := sprintf("harbor.example.eu/library/nginx@%s", [d])

tag_only := "harbor.example.eu/shop/app:1.0"

# tag_only pinned to its verified digest (the same string as `good`).
pinned := sprintf("%s@%s", [tag_only, d])

test_other_tenants_key_is_denied if {
	v := vdeny(signed_pod(good, signed_by(["billing-ci"])))
	fx.msgs(v) == {`container app: image signed by [billing-ci], but tenant "shop" accepts [shop-ci] for project "shop"`}
	fx.fields(v) == {"spec.containers[0].image"}
}

test_any_accepted_signer_suffices if {
	count(vdeny(signed_pod(good, signed_by(["billing-ci", "shop-ci"])))) == 0
}

test_project_keys_accept_shared_project if {
	count(vdeny(signed_pod(lib_image, signed_by(["platform-2026"])))) == 0
	base := sprintf("harbor.example.eu/base-images/distroless/static@%s", [d])
	count(vdeny(signed_pod(base, signed_by(["platform-2026"])))) == 0
}

# A tenant key is accepted for the tenant's own projects only, a project key for its project only.
test_keys_are_scoped_to_projects if {
	fx.has(vdeny(signed_pod(lib_image, signed_by(["shop-ci"]))), `image signed by [shop-ci], but tenant "shop" accepts [platform-2026] for project "library"`)
	fx.has(vdeny(signed_pod(good, signed_by(["platform-2026"]))), `image signed by [platform-2026], but tenant "shop" accepts [shop-ci] for project "shop"`)
}

test_project_keys_add_to_tenant_keys if {
	cfg := object.union(vconfig, {"imageVerification": {"projectKeys": {"shop": ["platform-2026"]}}})
	inp := signed_pod(good, signed_by(["platform-2026"]))
	count(ti.deny) == 0 with input as inp with data.inventory as fx.inventory with data.regate.config as cfg
	count(vdeny(signed_pod(good, signed_by(["shop-ci"])))) == 0
}

test_no_configured_keys_accept_nothing if {
	v := deny(signed_pod(good, signed_by(["shop-ci"])))
	fx.msgs(v) == {`container app: image signed by [shop-ci], but tenant "shop" accepts no key for project "shop"`}
}

test_namespace_without_tenant_gets_project_keys_only if {
	r := signed_pod(lib_image, signed_by(["platform-2026"]))
	count(vdeny(object.union(r, {"review": {"namespace": "legacy"}}))) == 0
	r2 := signed_pod(lib_image, signed_by(["shop-ci"]))
	fx.has(vdeny(object.union(r2, {"review": {"namespace": "legacy"}})), `but namespace "legacy" (no tenant) accepts [platform-2026] for project "library"`)
}

# An image the registry/project rules deny gets no second, signer message.
test_no_signer_message_for_disallowed_images if {
	billing_image := sprintf("harbor.example.eu/billing/app@%s", [d])
	v := vdeny(signed_pod(billing_image, signed_by(["billing-ci"])))
	fx.msgs(v) == {`container app: Harbor project "billing" is not allowed for tenant "shop"`}
	ghcr := sprintf("ghcr.io/shop/app@%s", [d])
	v2 := vdeny(signed_pod(ghcr, signed_by(["evil"])))
	fx.msgs(v2) == {"container app: registry ghcr.io is not an allowed Harbor (harbor.example.eu)"}
}

test_malformed_key_config_accepts_nothing if {
	cfg := object.union(vconfig, {"imageVerification": {"projectKeys": ["platform-2026"]}, "tenancy": {"tenants": {"shop": {"signingKeys": "shop-ci"}}}})
	inp := signed_pod(lib_image, signed_by(["platform-2026"]))
	v := ti.deny with input as inp with data.inventory as fx.inventory with data.regate.config as cfg
	fx.has(v, `accepts no key for project "library"`)
	v2 := ti.deny with input as signed_pod(good, {"verified": true, "digest": d, "signers": "shop-ci"}) with data.inventory as fx.inventory with data.regate.config as cfg
	fx.has(v2, `image signed by no key, but tenant "shop" accepts no key for project "shop"`)
}

test_long_signer_lists_are_shortened if {
	keys := [sprintf("key-%d", [n]) | some n in numbers.range(10, 40)]
	some m in fx.msgs(vdeny(signed_pod(good, signed_by(keys))))
	startswith(m, "container app: image signed by [key-10, key-11")
	contains(m, "..., but tenant")
}

test_unverified_is_denied_with_reason_not_as_registry_error if {
	v := vdeny(signed_pod(good, {"verified": false, "digest": d, "signers": [], "reason": "no cosign signature found", "registryError": false}))
	fx.msgs(v) == {"container app: image signature not verified: no cosign signature found"}
	count(vwarn(signed_pod(good, {"verified": false, "reason": "x", "registryError": false}))) == 0
}

test_registry_error_denies_by_default if {
	msg := "container app: cannot verify image signature (registry unavailable): cannot resolve the tag to a digest: connection refused"
	fx.msgs(vdeny(signed_pod(good, registry_down))) == {msg}
	count(vwarn(signed_pod(good, registry_down))) == 0
	cfg := object.union(vconfig, {"imageVerification": {"onRegistryError": "deny"}})
	v := ti.deny with input as signed_pod(good, registry_down) with data.inventory as fx.inventory with data.regate.config as cfg
	fx.msgs(v) == {msg}
}

test_registry_error_warns_when_allowed if {
	inp := signed_pod(good, registry_down)
	v := ti.deny with input as inp with data.inventory as fx.inventory with data.regate.config as vconfig
		with data.regate.config.imageVerification as {"onRegistryError": "allow"}
	count(v) == 0
	w := ti.warn with input as inp with data.inventory as fx.inventory with data.regate.config as vconfig
		with data.regate.config.imageVerification as {"onRegistryError": "allow"}
	w == {{"msg": "container app: cannot verify image signature (registry unavailable): cannot resolve the tag to a digest: connection refused", "field": "spec.containers[0].image"}}
}

test_missing_verdict_with_signing_keys if {
	inp := with_verdicts(fx.review_for("Pod", pod(good)), {tag_only: signed_by(["shop-ci"])})
	fx.msgs(vdeny(inp)) == {sprintf("container app: no signature verdict for image %s", [_short_good])}
}

_short_good := concat("", [substring(good, 0, 57), "..."])

test_pinned_digest_mismatch_with_accepted_signer if {
	other := "sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"
	v := vdeny(signed_pod(good, object.union(signed_by(["shop-ci"]), {"digest": other})))
	fx.msgs(v) == {"container app: verified digest differs from the pinned digest"}
}

# --- mutation ---

test_patch_pins_verified_tag_only_image if {
	p := vpatch(signed_pod(tag_only, signed_by(["shop-ci"])))
	p == {{"op": "replace", "path": "/spec/containers/0/image", "value": pinned}}
}

test_patch_pins_every_list_and_image_volumes if {
	vol := "harbor.example.eu/library/models:2"
	spec := {
		"containers": [{"name": "a", "image": good}],
		"initContainers": [{"name": "b", "image": tag_only}],
		"volumes": [{"name": "models", "image": {"reference": vol}}],
	}
	verdicts := {good: signed_by(["shop-ci"]), tag_only: signed_by(["shop-ci"]), vol: signed_by(["platform-2026"])}
	p := vpatch(with_verdicts(fx.review_for("CronJob", spec), verdicts))
	p == {
		{"op": "replace", "path": "/spec/jobTemplate/spec/template/spec/initContainers/0/image", "value": pinned},
		{"op": "replace", "path": "/spec/jobTemplate/spec/template/spec/volumes/0/image/reference", "value": sprintf("%s@%s", [vol, d])},
	}
}

test_patch_on_update if {
	inp := with_verdicts(fx.update_for("Deployment", pod(good), pod(tag_only)), {tag_only: signed_by(["shop-ci"])})
	vpatch(inp) == {{"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": pinned}}
}

# An UPDATE that keeps an image the object already had (a label change) does not rewrite it: that would
# restart a running Pod's containers or roll out a Deployment.
test_no_patch_on_update_that_keeps_the_image if {
	inp := with_verdicts(fx.update_for("Deployment", pod(tag_only), pod(tag_only)), {tag_only: signed_by(["shop-ci"])})
	count(vpatch(inp)) == 0
}

# Only the image volume is new here: the kept container image is left alone, the volume is pinned.
test_patch_on_update_pins_only_new_references if {
	vol := "harbor.example.eu/library/models:2"
	old := {"containers": [{"name": "a", "image": tag_only}], "volumes": [{"name": "m", "image": {"reference": "harbor.example.eu/library/models:1"}}]}
	new := {"containers": [{"name": "a", "image": tag_only}], "volumes": [{"name": "m", "image": {"reference": vol}}]}
	verdicts := {tag_only: signed_by(["shop-ci"]), vol: signed_by(["platform-2026"])}
	p := vpatch(with_verdicts(fx.update_for("Deployment", old, new), verdicts))
	p == {{"op": "replace", "path": "/spec/template/spec/volumes/0/image/reference", "value": sprintf("%s@%s", [vol, d])}}
}

test_no_patch_for_untrusted_or_pinned_images if {
	every verdict in [
		{"verified": false, "digest": d, "signers": [], "reason": "no trusted signature", "registryError": false},
		registry_down,
		signed_by(["billing-ci"]),
		{"verified": true, "digest": "", "signers": ["shop-ci"]},
		{"verified": true, "digest": "md5:abc", "signers": ["shop-ci"]},
	] {
		count(vpatch(signed_pod(tag_only, verdict))) == 0
	}
	count(vpatch(signed_pod(good, signed_by(["shop-ci"])))) == 0
	billing := "harbor.example.eu/billing/app:1.0"
	count(vpatch(signed_pod(billing, signed_by(["billing-ci"])))) == 0
}

test_no_patch_on_delete if {
	r := signed_pod(tag_only, signed_by(["shop-ci"]))
	inp := object.union(r, {"review": {"operation": "DELETE", "oldObject": r.review.object, "object": null}})
	count(vpatch(inp)) == 0
}

# With requireDigest the validating webhook denies a tag-only image; after the mutation pinned it, it sees
# the pinned reference and finds its verdict under that key.
test_validation_after_pinning_is_clean if {
	fx.has(vdeny(signed_pod(tag_only, signed_by(["shop-ci"]))), "image is not pinned by digest")
	inp := with_verdicts(fx.review_for("Pod", pod(pinned)), {tag_only: signed_by(["shop-ci"]), pinned: signed_by(["shop-ci"])})
	count(vdeny(inp)) == 0
}

# Without input.images (verification off) no signature rule fires and nothing is pinned.
test_nothing_fires_without_verdicts if {
	inp := object.union(fx.review_for("Pod", pod(tag_only)), {"parameters": {"requireDigest": false}})
	count(vdeny(inp)) == 0
	count(vwarn(inp)) == 0
	count(vpatch(inp)) == 0
	w := ti.warn with input as inp with data.inventory as fx.inventory with data.regate.config as vconfig
		with data.regate.config.imageVerification as {"onRegistryError": "allow"}
	count(w) == 0
}
