package regate.policies.pod_security_test

import data.regate.lib.testing as fx
import data.regate.policies.pod_security as ps

deny(inp) := v if {
	v := ps.deny with input as inp
}

warn(inp) := v if {
	v := ps.warn with input as inp
}

good := fx.good_spec

c0 := fx.good_container("app")

# The good spec with the first container's securityContext merged with `sc`.
with_csc(sc) := object.union(good, {"containers": [object.union(c0, {"securityContext": sc})]})

with_pod(extra) := object.union(good, extra)

# c0 without one securityContext field (object.union cannot remove keys).
without(key) := object.union(object.remove(c0, ["securityContext"]), {"securityContext": object.remove(c0.securityContext, [key])})

d(spec) := deny(fx.review_for("Pod", spec))

test_restricted_pod_is_allowed_in_every_kind if {
	every kind, _ in fx.spec_paths {
		count(deny(fx.review_for(kind, good))) == 0
		count(warn(fx.review_for(kind, good))) == 0
	}
}

test_host_namespaces_are_denied if {
	every f in ["hostNetwork", "hostPID", "hostIPC"] {
		v := d(with_pod({f: true}))
		fx.has(v, sprintf("spec.%s must not be true", [f]))
		sprintf("spec.%s", [f]) in fx.fields(v)
	}
	count(d(with_pod({"hostNetwork": false}))) == 0
}

test_privileged_is_denied if {
	fx.has(d(with_csc({"privileged": true})), "container app: privileged must not be true")
}

test_privilege_escalation_must_be_false if {
	fx.has(d(with_csc({"allowPrivilegeEscalation": true})), "container app: allowPrivilegeEscalation must be false")
	c := without("allowPrivilegeEscalation")
	fx.has(d(object.union(good, {"containers": [c]})), "allowPrivilegeEscalation must be false")
}

test_run_as_non_root_pod_or_container if {
	# pod-level true, container unset: fine
	c := without("runAsNonRoot")
	count(d(object.union(good, {"containers": [c]}))) == 0

	# neither pod nor container
	p := object.union(object.remove(good, ["securityContext"]), {"containers": [c], "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}}})
	fx.has(d(p), "container app: runAsNonRoot must be true (pod or container)")

	# container overrides the pod with false
	fx.has(d(with_csc({"runAsNonRoot": false})), "runAsNonRoot must be true")
}

test_run_as_user_zero_is_denied if {
	fx.has(d(with_csc({"runAsUser": 0})), "container app: runAsUser must not be 0")
	fx.has(d(with_pod({"securityContext": {"runAsUser": 0}})), "pod securityContext.runAsUser must not be 0")
}

test_capabilities if {
	fx.has(d(with_csc({"capabilities": {"drop": ["NET_RAW"]}})), "container app: capabilities.drop must include ALL")
	fx.has(d(with_csc({"capabilities": {"drop": ["ALL"], "add": ["SYS_ADMIN"]}})), "container app: capability SYS_ADMIN may not be added (only NET_BIND_SERVICE)")
	count(d(with_csc({"capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}}))) == 0
}

test_seccomp if {
	# container inherits the pod's profile
	c := without("seccompProfile")
	count(d(object.union(good, {"containers": [c]}))) == 0

	# no profile anywhere
	nosc := {"securityContext": {"runAsNonRoot": true}, "containers": [c]}
	fx.has(d(nosc), "container app: seccompProfile.type must be RuntimeDefault or Localhost")

	# Unconfined on the container overrides the pod
	fx.has(d(with_csc({"seccompProfile": {"type": "Unconfined"}})), "seccompProfile.type must be RuntimeDefault or Localhost")

	# Unconfined on the pod
	fx.has(d(with_pod({"securityContext": {"seccompProfile": {"type": "Unconfined"}}})), "pod seccompProfile.type must be RuntimeDefault or Localhost")
	count(d(with_csc({"seccompProfile": {"type": "Localhost", "localhostProfile": "p.json"}}))) == 0
}

test_proc_mount if {
	fx.has(d(with_csc({"procMount": "Unmasked"})), "container app: procMount must be Default")
	count(d(with_csc({"procMount": "Default"}))) == 0
}

test_host_ports if {
	spec := object.union(good, {"containers": [object.union(c0, {"ports": [{"containerPort": 80}, {"containerPort": 443, "hostPort": 443}, "junk"]})]})
	v := d(spec)
	fx.has(v, "container app: hostPort 443 is not allowed")
	"spec.containers[0].ports[1].hostPort" in fx.fields(v)
	count(v) == 1
}

test_volume_types if {
	spec := with_pod({"volumes": [
		{"name": "tmp", "emptyDir": {}},
		{"name": "cfg", "configMap": {"name": "c"}},
		{"name": "root", "hostPath": {"path": "/"}},
		{"name": "share", "nfs": {"server": "nfs", "path": "/"}},
		{"name": "img", "image": {"reference": "x"}},
		"junk",
	]})
	v := d(spec)
	fx.has(v, "volume root: type hostPath is not allowed")
	fx.has(v, "volume share: type nfs is not allowed")
	fx.has(v, "volume img: type image is not allowed")
	"spec.volumes[2].hostPath" in fx.fields(v)
	count(v) == 3
}

test_sysctls if {
	spec := with_pod({"securityContext": object.union(good.securityContext, {"sysctls": [{"name": "net.ipv4.tcp_syncookies", "value": "1"}, {"name": "kernel.msgmax", "value": "1"}, "junk", {"value": "1"}]})})
	v := d(spec)
	fx.has(v, "sysctl kernel.msgmax is not in the safe set")
	fx.has(v, "sysctl  is not in the safe set")
	count(v) == 2
}

test_host_process if {
	fx.has(d(with_csc({"windowsOptions": {"hostProcess": true}})), "container app: windowsOptions.hostProcess must not be true")
	fx.has(d(with_pod({"securityContext": {"windowsOptions": {"hostProcess": true}}})), "pod securityContext.windowsOptions.hostProcess must not be true")
}

test_selinux if {
	fx.has(d(with_csc({"seLinuxOptions": {"type": "spc_t"}})), "container app: seLinuxOptions.type spc_t is not allowed")
	fx.has(d(with_pod({"securityContext": {"seLinuxOptions": {"user": "system_u"}}})), "pod: seLinuxOptions.user must not be set")
	fx.has(d(with_csc({"seLinuxOptions": {"role": "sysadm_r"}})), "seLinuxOptions.role must not be set")
	count(d(with_csc({"seLinuxOptions": {"type": "container_t", "level": "s0:c1,c2"}}))) == 0
}

# Each check on the pod's and on a container's securityContext, with its field; empty and null values are unset.
test_selinux_on_pod_and_container if {
	pod := d(with_pod({"securityContext": object.union(good.securityContext, {"seLinuxOptions": {"type": "spc_t", "role": "sysadm_r"}})}))
	fx.has(pod, "pod: seLinuxOptions.type spc_t is not allowed")
	fx.has(pod, "pod: seLinuxOptions.role must not be set")
	{"spec.securityContext.seLinuxOptions.type", "spec.securityContext.seLinuxOptions.role"} == fx.fields(pod)
	container := d(with_csc({"seLinuxOptions": {"type": "unconfined_t", "user": "system_u"}}))
	fx.has(container, "container app: seLinuxOptions.type unconfined_t is not allowed")
	fx.has(container, "container app: seLinuxOptions.user must not be set")
	{"spec.containers[0].securityContext.seLinuxOptions.type", "spec.containers[0].securityContext.seLinuxOptions.user"} == fx.fields(container)
	count(d(with_csc({"seLinuxOptions": {"type": null, "user": "", "role": null}}))) == 0
	count(d(with_csc({"seLinuxOptions": "spc_t"}))) == 0
}

test_apparmor if {
	fx.has(d(with_csc({"appArmorProfile": {"type": "Unconfined"}})), "container app: appArmorProfile.type Unconfined is not allowed")
	count(d(with_csc({"appArmorProfile": {"type": "Localhost", "localhostProfile": "p"}}))) == 0
	pod := d(with_pod({"securityContext": object.union(good.securityContext, {"appArmorProfile": {"type": "Unconfined"}})}))
	fx.has(pod, "pod: appArmorProfile.type Unconfined is not allowed")
	{"spec.securityContext.appArmorProfile.type"} == fx.fields(pod)
	count(d(with_pod({"securityContext": object.union(good.securityContext, {"appArmorProfile": {"type": "RuntimeDefault"}})}))) == 0
}

test_apparmor_annotations_on_template_metadata if {
	r := fx.review_for("Deployment", good)
	ann := {"container.apparmor.security.beta.kubernetes.io/app": "unconfined"}
	v := deny({"review": object.union(r.review, {"object": {"spec": {"template": {"metadata": {"annotations": ann}}}}})})
	fx.has(v, "AppArmor annotation container.apparmor.security.beta.kubernetes.io/app=unconfined is not allowed")
	"spec.template.metadata.annotations[container.apparmor.security.beta.kubernetes.io/app]" in fx.fields(v)
	ok := {"container.apparmor.security.beta.kubernetes.io/app": "localhost/custom", "container.apparmor.security.beta.kubernetes.io/init": "runtime/default"}
	count(deny({"review": object.union(r.review, {"object": {"spec": {"template": {"metadata": {"annotations": ok}}}}})})) == 0
}

test_apparmor_annotations_on_pod if {
	r := fx.review_for("Pod", good)
	v := deny({"review": object.union(r.review, {"object": {"metadata": {"annotations": {"container.apparmor.security.beta.kubernetes.io/app": "unconfined"}}}})})
	"metadata.annotations[container.apparmor.security.beta.kubernetes.io/app]" in fx.fields(v)
}

test_probe_and_lifecycle_host if {
	c := object.union(c0, {"livenessProbe": {"httpGet": {"host": "169.254.169.254", "path": "/", "port": 80}}, "lifecycle": {"preStop": {"tcpSocket": {"host": "10.0.0.1", "port": 22}}}})
	v := d(object.union(good, {"containers": [c]}))
	fx.has(v, "container app: livenessProbe.httpGet.host must not be set")
	fx.has(v, "container app: lifecycle.preStop.tcpSocket.host must not be set")
	{"spec.containers[0].livenessProbe.httpGet.host", "spec.containers[0].lifecycle.preStop.tcpSocket.host"} == fx.fields(v)
	unset := object.union(c0, {
		"readinessProbe": {"httpGet": {"host": "", "path": "/", "port": 80}},
		"startupProbe": {"tcpSocket": {"host": null, "port": 80}},
		"lifecycle": {"postStart": "not an object", "preStop": {"httpGet": {"path": "/stop", "port": 80}}},
	})
	count(d(object.union(good, {"containers": [unset]}))) == 0
	w := d(object.union(good, {"containers": [object.union(c0, {"startupProbe": {"tcpSocket": {"host": "db", "port": 5432}}, "lifecycle": {"postStart": {"httpGet": {"host": "x"}}}})]}))
	fx.has(w, "container app: startupProbe.tcpSocket.host must not be set")
	fx.has(w, "container app: lifecycle.postStart.httpGet.host must not be set")
}

# kubectl debug: an ephemeral container without a restricted securityContext.
test_ephemeral_debug_container_is_checked if {
	new := object.union(good, {"ephemeralContainers": [{"name": "debugger", "image": "busybox", "targetContainerName": "app"}]})
	u := fx.update_for("Pod", good, new)
	r := {"review": object.union(u.review, {"subResource": "ephemeralcontainers"})}
	v := deny(r)
	fx.has(v, "container debugger: allowPrivilegeEscalation must be false")
	fx.has(v, "container debugger: capabilities.drop must include ALL")
	"spec.ephemeralContainers[0].securityContext.allowPrivilegeEscalation" in fx.fields(v)
}

test_init_containers_in_cronjob_are_checked if {
	bad_init := {"name": "setup", "image": "x", "securityContext": {"privileged": true}}
	spec := object.union(good, {"initContainers": [bad_init]})
	v := deny(fx.review_for("CronJob", spec))
	"spec.jobTemplate.spec.template.spec.initContainers[0].securityContext.privileged" in fx.fields(v)
}

test_update_adding_host_network_is_denied if {
	fx.has(deny(fx.update_for("Deployment", good, with_pod({"hostNetwork": true}))), "spec.hostNetwork must not be true")
}

test_terminating_pod_is_still_checked if {
	r := fx.update_for("Pod", good, with_pod({"hostPID": true}))
	inp := {"review": object.union(r.review, {"object": {"metadata": {"deletionTimestamp": "2025-01-01T00:00:00Z"}}})}
	fx.has(deny(inp), "spec.hostPID must not be true")
}

# --- readOnlyRootFilesystem ---

test_writable_root_filesystem_is_a_warning_by_default if {
	spec := with_csc({"readOnlyRootFilesystem": false})
	count(d(spec)) == 0
	fx.has(warn(fx.review_for("Pod", spec)), "container app: readOnlyRootFilesystem should be true")
	c := without("readOnlyRootFilesystem")
	fx.has(warn(fx.review_for("Pod", object.union(good, {"containers": [c]}))), "readOnlyRootFilesystem should be true")
}

test_writable_root_filesystem_can_deny_or_be_ignored if {
	spec := with_csc({"readOnlyRootFilesystem": false})
	inp := fx.review_for("Pod", spec)
	fx.has(deny(object.union(inp, {"parameters": {"readOnlyRootFilesystem": "deny"}})), "readOnlyRootFilesystem should be true")
	count(warn(object.union(inp, {"parameters": {"readOnlyRootFilesystem": "deny"}}))) == 0
	count(warn(object.union(inp, {"parameters": {"readOnlyRootFilesystem": "ignore"}}))) == 0
	count(deny(object.union(inp, {"parameters": {"readOnlyRootFilesystem": "ignore"}}))) == 0
}

test_non_workloads_are_ignored if {
	count(deny(fx.scale_review)) == 0
}
