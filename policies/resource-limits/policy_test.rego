package regate.policies.resource_limits_test

import data.regate.lib.testing as fx
import data.regate.policies.resource_limits as rl

params := {
	"maxCpu": "4",
	"maxMemory": "8Gi",
	"maxLimitRequestRatio": 4,
	"defaultRequests": {"cpu": "100m", "memory": "128Mi"},
	"defaultLimits": {"cpu": "400m", "memory": "256Mi"},
}

res(req, lim) := {"requests": req, "limits": lim}

spec(resources) := {"containers": [{"name": "app", "image": "x", "resources": resources}]}

inp(kind, resources) := object.union(fx.review_for(kind, spec(resources)), {"parameters": params})

deny(i) := v if {
	v := rl.deny with input as i
}

patch(i) := v if {
	v := rl.patch with input as i
}

ok := res({"cpu": "250m", "memory": "256Mi"}, {"cpu": "1", "memory": "512Mi"})

test_compliant_resources_are_allowed if {
	count(deny(inp("Deployment", ok))) == 0
	count(patch(inp("Deployment", ok))) == 0
}

test_missing_values_are_denied_with_field if {
	v := deny(inp("Pod", res({"cpu": "100m"}, {"memory": "256Mi"})))
	fx.has(v, "container app: missing resources.requests.memory")
	fx.has(v, "container app: missing resources.limits.cpu")
	"spec.containers[0].resources.limits.cpu" in fx.fields(v)
	count(v) == 2
}

test_no_resources_at_all if {
	v := deny(inp("Pod", null))
	count(v) == 4
}

test_every_kind_and_init_containers_but_not_ephemeral if {
	s := {"containers": [{"name": "a", "image": "x", "resources": ok}], "initContainers": [{"name": "b", "image": "x"}], "ephemeralContainers": [{"name": "c", "image": "x"}]}
	every kind, path in fx.spec_paths {
		fs := fx.fields(deny(object.union(fx.review_for(kind, s), {"parameters": params})))
		sprintf("%s.initContainers[0].resources.limits.memory", [path]) in fs
		count(fs) == 4
	}
}

test_limit_above_maximum_is_denied if {
	v := deny(inp("Deployment", res({"cpu": "2", "memory": "4Gi"}, {"cpu": "6", "memory": "16Gi"})))
	fx.has(v, "container app: limits.cpu 6 exceeds the maximum 4")
	fx.has(v, "container app: limits.memory 16Gi exceeds the maximum 8Gi")
}

test_limit_at_maximum_is_allowed if {
	count(deny(inp("Deployment", res({"cpu": "1", "memory": "2Gi"}, {"cpu": "4000m", "memory": "8192Mi"})))) == 0
}

test_ratio_is_bounded if {
	v := deny(inp("Deployment", res({"cpu": "100m", "memory": "64Mi"}, {"cpu": "1", "memory": "256Mi"})))
	fx.has(v, "container app: limits.cpu is 10 x requests.cpu, above the allowed ratio 4")
	not fx.has(v, "limits.memory is")
}

test_ratio_is_exact if {
	count(deny(inp("Deployment", res({"cpu": "0.1", "memory": "0.5Gi"}, {"cpu": "400m", "memory": "2Gi"})))) == 0
}

test_invalid_quantity_is_denied if {
	v := deny(inp("Deployment", res({"cpu": "lots", "memory": "1K"}, {"cpu": "1", "memory": "1Gi"})))
	fx.has(v, "resources.requests.cpu lots is not a valid quantity")
	fx.has(v, "resources.requests.memory 1K is not a valid quantity")
}

test_zero_request_is_denied if {
	fx.has(deny(inp("Deployment", res({"cpu": "0", "memory": "128Mi"}, {"cpu": "1", "memory": "256Mi"}))), "resources.requests.cpu must be greater than 0")
}

test_numeric_quantities if {
	count(deny(inp("Deployment", res({"cpu": 1, "memory": 134217728}, {"cpu": 2, "memory": 268435456})))) == 0
}

test_update_raising_limits_is_denied if {
	new := spec(res({"cpu": "2", "memory": "1Gi"}, {"cpu": "8", "memory": "1Gi"}))
	v := deny(object.union(fx.update_for("Deployment", spec(ok), new), {"parameters": params}))
	fx.has(v, "limits.cpu 8 exceeds the maximum 4")
}

test_defaults_without_parameters if {
	v := deny(fx.review_for("Pod", spec(res({"cpu": "1", "memory": "1Gi"}, {"cpu": "5", "memory": "1Gi"}))))
	fx.has(v, "limits.cpu 5 exceeds the maximum 4")
}

# --- mutation ---

ops(i) := {[o.path, o.value] | some o in patch(i)}

test_patch_adds_all_defaults if {
	ops(inp("Deployment", null)) == {
		["/spec/template/spec/containers/0/resources/requests/cpu", "100m"],
		["/spec/template/spec/containers/0/resources/requests/memory", "128Mi"],
		["/spec/template/spec/containers/0/resources/limits/cpu", "400m"],
		["/spec/template/spec/containers/0/resources/limits/memory", "256Mi"],
	}
	every o in patch(inp("Deployment", null)) {
		o.op == "add"
	}
}

test_patch_cronjob_init_container_pointer if {
	s := {"containers": [{"name": "a", "image": "x", "resources": ok}], "initContainers": [{"name": "b", "image": "x", "resources": res({"cpu": "100m", "memory": "128Mi"}, {})}]}
	ops(object.union(fx.review_for("CronJob", s), {"parameters": params})) == {
		["/spec/jobTemplate/spec/template/spec/initContainers/0/resources/limits/cpu", "400m"],
		["/spec/jobTemplate/spec/template/spec/initContainers/0/resources/limits/memory", "256Mi"],
	}
}

test_patch_request_from_limit_when_default_breaks_the_ratio if {
	ops(inp("Pod", res({}, {"cpu": "2", "memory": "256Mi"}))) == {
		["/spec/containers/0/resources/requests/cpu", "2"],
		["/spec/containers/0/resources/requests/memory", "128Mi"],
	}
}

test_patch_request_from_limit_when_default_exceeds_limit if {
	ops(inp("Pod", res({}, {"cpu": "50m", "memory": "64Mi"}))) == {
		["/spec/containers/0/resources/requests/cpu", "50m"],
		["/spec/containers/0/resources/requests/memory", "64Mi"],
	}
}

test_patch_limit_from_request_when_default_is_too_small if {
	ops(inp("Pod", res({"cpu": "1", "memory": "32Mi"}, {}))) == {
		["/spec/containers/0/resources/limits/cpu", "1"],
		["/spec/containers/0/resources/limits/memory", "32Mi"],
	}
}

test_patch_default_limit_when_it_fits if {
	ops(inp("Pod", res({"cpu": "200m", "memory": "200Mi"}, {}))) == {
		["/spec/containers/0/resources/limits/cpu", "400m"],
		["/spec/containers/0/resources/limits/memory", "256Mi"],
	}
}

test_patched_object_passes_validation if {
	every r in [null, res({}, {"cpu": "2"}), res({"memory": "1Gi"}, {})] {
		i := inp("Pod", r)
		c := object.union({"name": "app", "image": "x"}, {"resources": _apply(r, patch(i))})
		count(deny(object.union(fx.review_for("Pod", {"containers": [c]}), {"parameters": params}))) == 0
	}
}

_apply(r, p) := {side: vals |
	some side in ["requests", "limits"]
	vals := object.union(object.get(_o(r), side, {}), {res: o.value |
		some o in p
		parts := split(o.path, "/")
		parts[5] == side
		res := parts[6]
	})
}

_o(x) := x if is_object(x) else := {}

test_no_patch_for_invalid_counterpart if {
	ops(inp("Pod", res({"cpu": "lots", "memory": "128Mi"}, {"memory": "256Mi"}))) == set()
}

test_no_patch_for_ephemeral_containers if {
	s := {"containers": [{"name": "a", "image": "x", "resources": ok}], "ephemeralContainers": [{"name": "d", "image": "x"}]}
	count(patch(object.union(fx.review_for("Pod", s), {"parameters": params}))) == 0
}
