package regate.lib.images_test

import data.regate.lib.images

d := "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

test_implicit_docker_hub_library if {
	p := images.parse("nginx")
	p.registry == "docker.io"
	p.repository == "library/nginx"
	p.project == "library"
	p.tag == ""
	p.name == "docker.io/library/nginx"
}

test_docker_hub_user_repo if {
	p := images.parse("bitnami/redis:7.2")
	p.registry == "docker.io"
	p.repository == "bitnami/redis"
	p.tag == "7.2"
}

test_docker_hub_aliases_normalise if {
	images.parse("index.docker.io/nginx").name == "docker.io/library/nginx"
	images.parse("docker.io/nginx").name == "docker.io/library/nginx"
}

test_harbor_with_tag_and_digest if {
	p := images.parse(sprintf("harbor.example.eu/shop/team/app:1.2.3@%s", [d]))
	p.host == "harbor.example.eu"
	p.port == ""
	p.project == "shop"
	p.repository == "shop/team/app"
	p.tag == "1.2.3"
	p.digest == d
}

test_digest_without_tag if {
	p := images.parse(sprintf("harbor.example.eu/shop/app@%s", [d]))
	p.tag == ""
	p.digest == d
}

test_port_is_split_from_host if {
	p := images.parse("harbor.example.eu:443/shop/app:1.0")
	p.registry == "harbor.example.eu:443"
	p.host == "harbor.example.eu"
	p.port == "443"
	p.tag == "1.0"
}

test_host_is_case_insensitive if {
	p := images.parse("HARBOR.Example.EU/shop/app")
	p.host == "harbor.example.eu"
}

test_uppercase_first_component_is_a_host if {
	images.parse("Harbor/shop/app").host == "harbor"
}

test_localhost_is_a_host if {
	images.parse("localhost/app").registry == "localhost"
	images.parse("localhost:5000/app").port == "5000"
}

test_suffix_host_is_a_different_host if {
	images.parse("harbor.example.eu.evil.io/shop/app").host == "harbor.example.eu.evil.io"
}

test_invalid_references if {
	every ref in [
		"harbor.example.eu@evil",
		"harbor.example.eu/shop/app@sha256:abc",
		"harbor.example.eu/Shop/app",
		"harbor.example.eu/shop/APP:1.0",
		"harbor.example.eu/shop/app:1.0:2.0",
		"user@harbor.example.eu/shop/app",
		"harbor.example.eu/shop/app@@sha256:x",
		"",
		" nginx",
		"harbor.example.eu//app",
		"-bad.example.eu/shop/app",
		"harbor.example.eu/shop/app:-tag",
		"@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
	] {
		not images.valid(ref)
		not images.parse(ref)
		is_string(images.invalid_reason(ref))
	}
}

test_invalid_reason_texts if {
	contains(images.invalid_reason("harbor.example.eu/Shop/app"), "lower-case")
	contains(images.invalid_reason("harbor.example.eu@evil"), "digest")
	contains(images.invalid_reason(" x"), "whitespace")
	contains(images.invalid_reason("a@b@c"), "more than one @")
	images.invalid_reason(1) == "not a string"
	images.invalid_reason("") == "empty"
	contains(images.invalid_reason("bad_host.example.eu/shop/app"), "host")
	contains(images.invalid_reason("harbor.example.eu/shop/a--_b"), "invalid repository component")
}

test_sha512_digest_is_valid if {
	images.valid(sprintf("harbor.example.eu/shop/app@sha512:%s", [concat("", [d1 | some _ in numbers.range(1, 2); d1 := substring(d, 7, 64)])]))
}

test_check_agrees_with_invalid_reason_and_parse if {
	every ref in ["nginx", "harbor.example.eu:443/shop/app:1.2", "Harbor.Example.EU/shop/app@sha256:0000000000000000000000000000000000000000000000000000000000000000", "harbor.example.eu/Shop/app", "a b", "x@y@z", "", "harbor.example.eu@evil", "index.docker.io/nginx:1"] {
		_check_agrees(ref)
	}
	images.check(42).invalid == "not a string"
	images.check(42).parsed == null
}

_check_agrees(ref) if {
	r := images.invalid_reason(ref)
	images.check(ref).invalid == r
	images.check(ref).parsed == null
}

_check_agrees(ref) if {
	not images.invalid_reason(ref)
	images.check(ref).invalid == null
	images.check(ref).parsed == images.parse(ref)
}
