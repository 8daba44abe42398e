package regate.lib.k8s_test

import data.regate.lib.k8s
import data.regate.lib.testing as fx

# Every workload kind yields its pod spec at the right path, with containers of all three lists.
test_every_workload_kind_yields_containers if {
	every kind, path in fx.spec_paths {
		paths := {c.path | some c in k8s.containers} with input as fx.review_for(kind, fx.three_container_spec)
		paths == {
			sprintf("%s.containers[0]", [path]),
			sprintf("%s.initContainers[0]", [path]),
			sprintf("%s.ephemeralContainers[0]", [path]),
		}
	}
}

test_cronjob_paths_and_pointers if {
	cs := k8s.containers with input as fx.review_for("CronJob", fx.three_container_spec)
	some c in cs
	c.type == "initContainers"
	c.path == "spec.jobTemplate.spec.template.spec.initContainers[0]"
	c.pointer == "/spec/jobTemplate/spec/template/spec/initContainers/0"
	c.name == "init"
}

test_pod_metadata_is_template_metadata if {
	r := fx.review_for("Deployment", fx.three_container_spec)
	some ps in k8s.pod_specs with input as r
	ps.metadata.labels.app == "web"
}

test_scale_has_no_pod_spec if {
	count(k8s.pod_specs) == 0 with input as fx.scale_review
	count(k8s.containers) == 0 with input as fx.scale_review
}

test_kind_with_foreign_group_is_not_a_workload if {
	r := fx.review_for("Deployment", fx.three_container_spec)
	not k8s.is_workload with input as {"review": object.union(r.review, {"kind": {"group": "example.com"}})}
	count(k8s.containers) == 0 with input as {"review": object.union(r.review, {"kind": {"group": "example.com"}})}
}

test_delete_judges_old_object if {
	r := {"operation": "DELETE", "namespace": "shop-prod", "kind": {"group": "", "version": "v1", "kind": "Pod"}, "object": null, "oldObject": {"metadata": {"name": "old"}, "spec": {"containers": [{"name": "a", "image": "x"}]}}}
	k8s.obj.metadata.name == "old" with input as {"review": r}
	count(k8s.containers) == 1 with input as {"review": r}
}

test_namespace_falls_back_to_object if {
	k8s.namespace == "shop-prod" with input as {"review": {"operation": "CREATE", "object": {"metadata": {"namespace": "shop-prod"}}}}
	k8s.namespace == "" with input as {"review": {"operation": "CREATE", "object": {"metadata": {}}}}
}

test_malformed_container_lists_are_ignored if {
	r := {"operation": "CREATE", "kind": {"group": "", "kind": "Pod"}, "object": {"spec": {"containers": null, "initContainers": {"a": 1}, "volumes": null}}}
	count(k8s.containers) == 0 with input as {"review": r}
	count(k8s.images) == 0 with input as {"review": r}
}

test_images_include_image_volumes if {
	spec := {"containers": [{"name": "a", "image": "x"}], "volumes": [{"name": "models", "image": {"reference": "y"}}]}
	imgs := {i.path | some i in k8s.images} with input as fx.review_for("Pod", spec)
	imgs == {"spec.containers[0].image", "spec.volumes[0].image.reference"}
}

test_image_pointers if {
	spec := {"containers": [{"name": "a", "image": "x"}], "volumes": [{"name": "models", "image": {"reference": "y"}}]}
	ptrs := {i.image: i.pointer | some i in k8s.images} with input as fx.review_for("CronJob", spec)
	ptrs == {
		"x": "/spec/jobTemplate/spec/template/spec/containers/0/image",
		"y": "/spec/jobTemplate/spec/template/spec/volumes/0/image/reference",
	}
}

test_missing_image_is_reported if {
	spec := {"containers": [{"name": "a"}]}
	count(k8s.missing_images) == 1 with input as fx.review_for("Pod", spec)
}

test_pod_spec_unchanged if {
	spec := {"containers": [{"name": "a", "image": "x"}]}
	r := {"operation": "UPDATE", "kind": {"group": "", "kind": "Pod"}, "object": {"spec": spec}, "oldObject": {"spec": spec}}
	k8s.pod_spec_unchanged with input as {"review": r}
	r2 := object.union(r, {"object": {"spec": {"containers": [{"name": "a", "image": "y"}]}}})
	not k8s.pod_spec_unchanged with input as {"review": r2}
}

test_escape_pointer if {
	k8s.escape_pointer("regate.dev/tenant") == "regate.dev~1tenant"
	k8s.escape_pointer("a~b") == "a~0b"
	k8s.pointer(["spec", 0]) == "/spec/0"
}

test_empty_selector if {
	k8s.empty_selector({})
	k8s.empty_selector({"matchLabels": {}})
	not k8s.empty_selector({"matchLabels": {"a": "b"}})
	not k8s.empty_selector(null)
}

test_name_prefers_request_name if {
	k8s.name == "n" with input as {"review": {"name": "n", "object": {"metadata": {"name": "o"}}}}
	k8s.name == "o" with input as {"review": {"object": {"metadata": {"name": "o"}}}}
}

test_param_defaults if {
	k8s.param("x", 1) == 1 with input as {}
	k8s.param("x", 1) == 1 with input as {"parameters": {"x": null}}
	k8s.param("x", 1) == 2 with input as {"parameters": {"x": 2}}
	k8s.param("x", true) == false with input as {"parameters": {"x": false}}
}

test_namespace_object_is_in_no_namespace if {
	r := {"operation": "UPDATE", "namespace": "shop-prod", "name": "shop-prod", "kind": {"group": "", "version": "v1", "kind": "Namespace"}, "object": {"metadata": {"name": "shop-prod"}}}
	k8s.namespace == "" with input as {"review": r}
	not k8s.is_namespaced with input as {"review": r}
	k8s.name == "shop-prod" with input as {"review": r}
	# another group's Namespace kind is not the core Namespace
	k8s.namespace == "shop-prod" with input as {"review": object.union(r, {"kind": {"group": "example.io", "kind": "Namespace"}})}
}
