# METADATA
# title: Pod security (restricted)
# description: >-
#   Pods and every workload template follow the Kubernetes "restricted" Pod Security Standard (which
#   includes "baseline"), for containers, init containers and ephemeral containers; a writable root
#   filesystem is reported as a warning (parameter readOnlyRootFilesystem).
# custom:
#   severity: high
#   remediation: >-
#     Set on the pod securityContext runAsNonRoot: true and seccompProfile.type: RuntimeDefault, and on
#     every container allowPrivilegeEscalation: false, capabilities.drop: [ALL], readOnlyRootFilesystem:
#     true; use no host namespaces, host ports, hostPath or non-core volumes. Debug with
#     `kubectl debug --profile=restricted`.
#   controls: ["NIS-2 Art. 21(2)(d)", "NIS-2 Art. 21(2)(e)", "DORA Art. 9(2)", "CRA Annex I (1)(3)(d)", "CRA Annex I (1)(3)(e)", "GDPR Art. 32(1)(b)"]
#   match:
#     operations: [CREATE, UPDATE]
#     kinds:
#       - apiGroups: [""]
#         kinds: [Pod, PodTemplate, ReplicationController]
#       - apiGroups: [apps, extensions]
#         kinds: [Deployment, ReplicaSet, StatefulSet, DaemonSet]
#       - apiGroups: [batch]
#         kinds: [Job, CronJob]
package regate.policies.pod_security

import data.regate.lib.k8s

_list(x) := x if is_array(x) else := []

_obj(x) := x if is_object(x) else := {}

# Security contexts by path, read once per request (functions are not memoised in Rego; the rules below
# ask for them about twenty times).
_pod_contexts := {ps.path: _obj(object.get(ps.spec, "securityContext", {})) | some ps in k8s.pod_specs}

_container_contexts := {c.path: _obj(object.get(c.container, "securityContext", {})) | some c in k8s.containers}

_psc(ps) := _pod_contexts[ps.path]

_csc(c) := _container_contexts[c.path]

_v(ps, f) := sprintf("%s.%s", [ps.path, f])

# --- baseline: pod level -------------------------------------------------------------------------

deny contains {"msg": sprintf("spec.%s must not be true", [f]), "field": _v(ps, f)} if {
	some ps in k8s.pod_specs
	some f in ["hostNetwork", "hostPID", "hostIPC"]
	ps.spec[f] == true
}

deny contains {"msg": "pod securityContext.windowsOptions.hostProcess must not be true", "field": _v(ps, "securityContext.windowsOptions.hostProcess")} if {
	some ps in k8s.pod_specs
	_psc(ps).windowsOptions.hostProcess == true
}

safe_sysctls := {
	"kernel.shm_rmid_forced",
	"net.ipv4.ip_local_port_range",
	"net.ipv4.ip_unprivileged_port_start",
	"net.ipv4.tcp_syncookies",
	"net.ipv4.ping_group_range",
	"net.ipv4.ip_local_reserved_ports",
	"net.ipv4.tcp_keepalive_time",
	"net.ipv4.tcp_fin_timeout",
	"net.ipv4.tcp_keepalive_intvl",
	"net.ipv4.tcp_keepalive_probes",
}

deny contains {"msg": msg, "field": _v(ps, sprintf("securityContext.sysctls[%d].name", [i]))} if {
	some ps in k8s.pod_specs
	some i, s in _list(object.get(_psc(ps), "sysctls", []))
	is_object(s)
	not _safe_sysctl(s)
	msg := sprintf("sysctl %v is not in the safe set", [object.get(s, "name", "")])
}

# The name is looked up inside the function, so that a sysctl without a name is not safe: Rego
# evaluates a negated call's operands outside the negation (`not s.name in safe_sysctls` is undefined,
# not true, when the name is absent).
_safe_sysctl(s) if s.name in safe_sysctls

# --- restricted: volume types (hostPath included) ------------------------------------------------

allowed_volume_types := {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret"}

deny contains {"msg": msg, "field": _v(ps, sprintf("volumes[%d].%s", [i, t]))} if {
	some ps in k8s.pod_specs
	some i, vol in k8s.volumes_of(ps.spec)
	some t, val in _obj(vol)
	t != "name"
	val != null
	not t in allowed_volume_types
	msg := sprintf("volume %v: type %s is not allowed", [object.get(vol, "name", i), t])
}

# --- per container -------------------------------------------------------------------------------

_f(c, f) := sprintf("%s.%s", [c.path, f])

deny contains {"msg": sprintf("container %s: privileged must not be true", [c.name]), "field": _f(c, "securityContext.privileged")} if {
	some c in k8s.containers
	_csc(c).privileged == true
}

deny contains {"msg": sprintf("container %s: allowPrivilegeEscalation must be false", [c.name]), "field": _f(c, "securityContext.allowPrivilegeEscalation")} if {
	some c in k8s.containers
	object.get(_csc(c), "allowPrivilegeEscalation", null) != false
}

# runAsNonRoot: true on the container, or on the pod and not overridden with false on the container.
deny contains {"msg": sprintf("container %s: runAsNonRoot must be true (pod or container)", [c.name]), "field": _f(c, "securityContext.runAsNonRoot")} if {
	some ps in k8s.pod_specs
	some c in k8s.containers
	not _non_root(ps, c)
}

_non_root(_, c) if _csc(c).runAsNonRoot == true

_non_root(ps, c) if {
	_psc(ps).runAsNonRoot == true
	object.get(_csc(c), "runAsNonRoot", null) != false
}

deny contains {"msg": "pod securityContext.runAsUser must not be 0", "field": _v(ps, "securityContext.runAsUser")} if {
	some ps in k8s.pod_specs
	_psc(ps).runAsUser == 0
}

deny contains {"msg": sprintf("container %s: runAsUser must not be 0", [c.name]), "field": _f(c, "securityContext.runAsUser")} if {
	some c in k8s.containers
	_csc(c).runAsUser == 0
}

# Seccomp: RuntimeDefault or Localhost on the container, or inherited from the pod.
allowed_seccomp := {"RuntimeDefault", "Localhost"}

deny contains {"msg": sprintf("container %s: seccompProfile.type must be RuntimeDefault or Localhost", [c.name]), "field": _f(c, "securityContext.seccompProfile.type")} if {
	some ps in k8s.pod_specs
	some c in k8s.containers
	not _effective_seccomp(ps, c) in allowed_seccomp
}

_effective_seccomp(ps, c) := t if {
	t := _csc(c).seccompProfile.type
	t != null
} else := t if {
	t := _psc(ps).seccompProfile.type
	t != null
} else := ""

deny contains {"msg": "pod seccompProfile.type must be RuntimeDefault or Localhost", "field": _v(ps, "securityContext.seccompProfile.type")} if {
	some ps in k8s.pod_specs
	t := _psc(ps).seccompProfile.type
	t != null
	not t in allowed_seccomp
}

deny contains {"msg": sprintf("container %s: capabilities.drop must include ALL", [c.name]), "field": _f(c, "securityContext.capabilities.drop")} if {
	some c in k8s.containers
	not "ALL" in _list(object.get(_csc(c), ["capabilities", "drop"], []))
}

deny contains {"msg": sprintf("container %s: capability %v may not be added (only NET_BIND_SERVICE)", [c.name, cap]), "field": _f(c, sprintf("securityContext.capabilities.add[%d]", [i]))} if {
	some c in k8s.containers
	some i, cap in _list(object.get(_csc(c), ["capabilities", "add"], []))
	cap != "NET_BIND_SERVICE"
}

deny contains {"msg": sprintf("container %s: procMount must be Default", [c.name]), "field": _f(c, "securityContext.procMount")} if {
	some c in k8s.containers
	pm := _csc(c).procMount
	pm != null
	pm != "Default"
}

deny contains {"msg": sprintf("container %s: hostPort %v is not allowed", [c.name, p.hostPort]), "field": _f(c, sprintf("ports[%d].hostPort", [i]))} if {
	some c in k8s.containers
	some i, p in _list(object.get(c.container, "ports", []))
	is_object(p)
	object.get(p, "hostPort", 0) != 0
	p.hostPort != null
}

deny contains {"msg": sprintf("container %s: windowsOptions.hostProcess must not be true", [c.name]), "field": _f(c, "securityContext.windowsOptions.hostProcess")} if {
	some c in k8s.containers
	_csc(c).windowsOptions.hostProcess == true
}

# Probes and lifecycle hooks must not target another host (Kubernetes 1.34 baseline). Direct references:
# a container without probes or hooks stops at the first missing key.
deny contains {"msg": sprintf("container %s: %s.%s.host must not be set", [c.name, probe, handler]), "field": _f(c, sprintf("%s.%s.host", [probe, handler]))} if {
	some c in k8s.containers
	some probe in ["livenessProbe", "readinessProbe", "startupProbe"]
	p := c.container[probe]
	some handler in ["httpGet", "tcpSocket"]
	_set(p[handler].host)
}

deny contains {"msg": sprintf("container %s: lifecycle.%s.%s.host must not be set", [c.name, hook, handler]), "field": _f(c, sprintf("lifecycle.%s.%s.host", [hook, handler]))} if {
	some c in k8s.containers
	some hook in ["postStart", "preStop"]
	p := c.container.lifecycle[hook]
	some handler in ["httpGet", "tcpSocket"]
	_set(p[handler].host)
}

# --- SELinux and AppArmor (pod and containers) ---------------------------------------------------

allowed_selinux_types := {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}

# The same three checks for the pod's and each container's securityContext, written out for each: a
# set of {context, field, what} objects built first cost ~4 times as much per request.
deny contains {"msg": sprintf("pod: seLinuxOptions.type %v is not allowed", [t]), "field": _v(ps, "securityContext.seLinuxOptions.type")} if {
	some ps in k8s.pod_specs
	t := _psc(ps).seLinuxOptions.type
	t != null
	not t in allowed_selinux_types
}

deny contains {"msg": sprintf("container %s: seLinuxOptions.type %v is not allowed", [c.name, t]), "field": _f(c, "securityContext.seLinuxOptions.type")} if {
	some c in k8s.containers
	t := _csc(c).seLinuxOptions.type
	t != null
	not t in allowed_selinux_types
}

deny contains {"msg": sprintf("pod: seLinuxOptions.%s must not be set", [f]), "field": _v(ps, sprintf("securityContext.seLinuxOptions.%s", [f]))} if {
	some ps in k8s.pod_specs
	options := _psc(ps).seLinuxOptions
	some f in ["user", "role"]
	_set(options[f])
}

deny contains {"msg": sprintf("container %s: seLinuxOptions.%s must not be set", [c.name, f]), "field": _f(c, sprintf("securityContext.seLinuxOptions.%s", [f]))} if {
	some c in k8s.containers
	options := _csc(c).seLinuxOptions
	some f in ["user", "role"]
	_set(options[f])
}

# Set to something: not null and not the empty string.
_set(v) if {
	v != null
	v != ""
}

allowed_apparmor_types := {"RuntimeDefault", "Localhost"}

deny contains {"msg": sprintf("pod: appArmorProfile.type %v is not allowed", [t]), "field": _v(ps, "securityContext.appArmorProfile.type")} if {
	some ps in k8s.pod_specs
	t := _psc(ps).appArmorProfile.type
	t != null
	not t in allowed_apparmor_types
}

deny contains {"msg": sprintf("container %s: appArmorProfile.type %v is not allowed", [c.name, t]), "field": _f(c, "securityContext.appArmorProfile.type")} if {
	some c in k8s.containers
	t := _csc(c).appArmorProfile.type
	t != null
	not t in allowed_apparmor_types
}

deny contains {"msg": sprintf("AppArmor annotation %s=%v is not allowed", [k, v]), "field": sprintf("%s.annotations[%s]", [_meta_path(ps), k])} if {
	some ps in k8s.pod_specs
	some k, v in _obj(object.get(ps.metadata, "annotations", {}))
	startswith(k, "container.apparmor.security.beta.kubernetes.io/")
	not _apparmor_value_ok(v)
}

_apparmor_value_ok(v) if v == "runtime/default"

_apparmor_value_ok(v) if startswith(v, "localhost/")

_meta_path(ps) := "metadata" if ps.path == "spec" else := sprintf("%s.metadata", [trim_suffix(ps.path, ".spec")])

# --- readOnlyRootFilesystem (warn by default) ----------------------------------------------------

_rorfs := k8s.param("readOnlyRootFilesystem", "warn")

# Unset, null, false or anything but true.
_rorfs_violations contains {"msg": sprintf("container %s: readOnlyRootFilesystem should be true", [c.name]), "field": _f(c, "securityContext.readOnlyRootFilesystem")} if {
	some c in k8s.containers
	object.get(_csc(c), "readOnlyRootFilesystem", null) != true
}

deny contains v if {
	_rorfs == "deny"
	some v in _rorfs_violations
}

warn contains v if {
	_rorfs == "warn"
	some v in _rorfs_violations
}
