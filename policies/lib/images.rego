# Image reference parsing, following the grammar of distribution/reference (what the kubelet and
# container runtimes use), so policies compare parsed parts instead of string prefixes:
#
#   nginx                                  -> docker.io / library/nginx
#   harbor.example.eu:443/shop/app:1.2     -> host harbor.example.eu, port 443, repository shop/app, tag 1.2
#   harbor.example.eu/shop/app:1.2@sha256:...  -> tag and digest (the runtime pulls by digest)
#   harbor.example.eu.evil.io/shop/app     -> host harbor.example.eu.evil.io (not harbor.example.eu)
#   harbor.example.eu@evil                 -> invalid (digest "evil")
#
# The first path component is a registry host when it contains "." or ":", is "localhost", or has an
# upper-case letter (as in distribution/reference); otherwise the image is on docker.io, and a single
# component gets the implicit "library/" prefix. Registry hosts are case-insensitive (DNS), so `host` is
# lower-cased; repository components must be lower-case or the reference is invalid.
package regate.lib.images

_digest_re := `^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$`

_component_re := `^[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*$`

_domain_re := `^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)(?:\.(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?))*(?::[0-9]{1,5})?$`

# Splits `ref` into name, tag and digest strings ("" when absent). Undefined for a reference that is not
# a string or has more than one "@".
_split(ref) := {"name": nt.name, "tag": nt.tag, "digest": d[1], "has_digest": true} if {
	is_string(ref)
	d := split(ref, "@")
	count(d) == 2
	nt := _name_tag(d[0])
}

_split(ref) := {"name": nt.name, "tag": nt.tag, "digest": "", "has_digest": false} if {
	is_string(ref)
	not contains(ref, "@")
	nt := _name_tag(ref)
}

# A trailing ":tag" only counts when the part after the last ":" contains no "/" (else it is a port).
_name_tag(s) := {"name": m[1], "tag": m[2]} if {
	m := regex.find_all_string_submatch_n(`^(.+?)(?::([A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?$`, s, 1)[0]
}

# Domain and path components of a name.
_domain_path(name) := {"domain": parts[0], "path": array.slice(parts, 1, count(parts))} if {
	parts := split(name, "/")
	count(parts) > 1
	_is_domain(parts[0])
} else := {"domain": "docker.io", "path": ["library", name]} if {
	not contains(name, "/")
} else := {"domain": "docker.io", "path": split(name, "/")}

_is_domain(c) if contains(c, ".")

_is_domain(c) if contains(c, ":")

_is_domain(c) if c == "localhost"

_is_domain(c) if lower(c) != c

# Why `ref` is not a valid image reference; undefined when it is valid.
# The reference is split once and the pieces are handed down: Rego does not memoise function calls, and
# re-splitting in every branch made one check cost ~100 µs.
invalid_reason(ref) := _invalid(ref, s, _domain_path_or_null(s)) if {
	s := _split_or_null(ref)
}

_split_or_null(ref) := s if {
	s := _split(ref)
	is_object(s)
} else := null

_domain_path_or_null(s) := dp if {
	is_object(s)
	dp := _domain_path(s.name)
	is_object(dp)
} else := null

# (No branch iterates with `some` or ends with an assignment: upstream regorus 0.14's compiled VM
# abandons an else chain when a branch's iteration finds nothing or its last assignment is undefined.)
_invalid(ref, s, dp) := "not a string" if {
	not is_string(ref)
} else := "empty" if {
	ref == ""
} else := "whitespace" if {
	regex.match(`\s`, ref)
} else := "more than one @" if {
	count(split(ref, "@")) > 2
} else := "unparseable" if {
	s == null
} else := "digest must be sha256:<64 hex> or sha512:<128 hex>" if {
	s.has_digest
	not regex.match(_digest_re, s.digest)
} else := "empty name" if {
	s.name == ""
} else := sprintf("invalid registry host %q", [dp.domain]) if {
	is_string(dp.domain)
	not regex.match(_domain_re, dp.domain)
} else := "empty repository" if {
	count(dp.path) == 0
} else := sprintf("repository component %q must be lower-case", [upper_case[0]]) if {
	upper_case := [c | some c in dp.path; lower(c) != c]
	count(upper_case) > 0
} else := sprintf("invalid repository component %q", [bad[0]]) if {
	bad := [c | some c in dp.path; not regex.match(_component_re, c)]
	count(bad) > 0
}

valid(ref) if {
	is_string(ref)
	not invalid_reason(ref)
}

# The parsed reference, undefined when invalid:
#   registry: lower-case host[:port]    host: lower-case host    port: "443" or ""
#   repository: "shop/app"  project: "shop" (first path component)  tag, digest: "" when absent
#   name: registry/repository (normalised)
parse(ref) := r if {
	is_string(ref)
	p := _split(ref)
	dp := _domain_path(p.name)
	not _invalid(ref, p, dp)
	r := _parts(p, dp)
}

# Both answers at once, splitting and validating `ref` once, for callers that need the reason for an
# invalid reference and the parts of a valid one: {"invalid": reason or null, "parsed": parts or null}.
check(ref) := {"invalid": reason, "parsed": parsed} if {
	s := _split_or_null(ref)
	dp := _domain_path_or_null(s)
	reason := _reason_or_null(ref, s, dp)
	parsed := _parts_or_null(s, dp, reason)
}

_reason_or_null(ref, s, dp) := r if {
	r := _invalid(ref, s, dp)
	is_string(r)
} else := null

_parts_or_null(s, dp, reason) := p if {
	reason == null
	p := _parts(s, dp)
	is_object(p)
} else := null

# The parts of a split, valid reference.
_parts(p, dp) := {
	"registry": registry,
	"host": split(registry, ":")[0],
	"port": _port(registry),
	"repository": repository,
	"project": path[0],
	"tag": p.tag,
	"digest": p.digest,
	"name": sprintf("%s/%s", [registry, repository]),
} if {
	registry := _normalise_registry(lower(dp.domain))
	path := _normalise_path(registry, dp.path)
	repository := concat("/", path)
}

_port(registry) := p if {
	parts := split(registry, ":")
	count(parts) == 2
	p := parts[1]
} else := ""

# Docker Hub aliases, as distribution/reference normalises them.
_normalise_registry(r) := "docker.io" if {
	r in {"index.docker.io", "registry-1.docker.io"}
} else := r

_normalise_path(registry, path) := array.concat(["library"], path) if {
	registry == "docker.io"
	count(path) == 1
} else := path
