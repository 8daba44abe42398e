//! Image references: `[registry/]repository[:tag][@digest]`, after the distribution/reference grammar.
//!
//! Parsing normalises as Docker does: a first path component is a registry only when it contains
//! `.` or `:`, is `localhost`, or has an uppercase letter; otherwise the registry is `docker.io`, and a
//! single-component Docker Hub name gets the `library/` prefix. Registry hosts are lowercased
//! (except a host that is one only for its uppercase letters, `MyHost/app`, which lowercased would
//! print as Docker Hub's `myhost/app`); repositories must already be lowercase (`Nginx` is rejected, as Docker rejects it). Only `sha256`
//! digests are accepted, as 64 lowercase hex characters.
//!
//! The validators ([`validate_repository`], [`validate_tag`], [`validate_digest`]) are public so the
//! registry client can refuse to build a URL from anything the grammar would not produce.

use std::fmt;
use std::net::Ipv6Addr;

/// Docker Hub's canonical registry name.
pub const DOCKER_HUB: &str = "docker.io";
/// The host that serves Docker Hub's registry API.
pub const DOCKER_HUB_API: &str = "registry-1.docker.io";
/// Longest accepted name (`registry/repository`), as in distribution/reference.
pub const NAME_MAX: usize = 255;
/// Longest accepted tag.
pub const TAG_MAX: usize = 128;

/// Why a string is not a valid image reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    #[error("image reference is empty")]
    Empty,
    #[error("image reference `{reference}`: {detail}")]
    Invalid { reference: String, detail: String },
    #[error("image reference `{reference}`: name is {len} characters, more than {NAME_MAX}")]
    NameTooLong { reference: String, len: usize },
}

/// A parsed, normalised image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageReference {
    /// Registry as `host[:port]`, lowercased; `docker.io` for Docker Hub.
    pub registry: String,
    /// Repository path, e.g. `library/nginx` or `team/app`.
    pub repository: String,
    /// Tag, when the reference names one.
    pub tag: Option<String>,
    /// `sha256:<64 hex>`, when the reference names one.
    pub digest: Option<String>,
}

impl ImageReference {
    /// Parses and normalises `s`.
    pub fn parse(s: &str) -> Result<Self, ReferenceError> {
        if s.is_empty() {
            return Err(ReferenceError::Empty);
        }
        let invalid = |detail: &str| ReferenceError::Invalid {
            reference: s.to_string(),
            detail: detail.to_string(),
        };
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid("contains whitespace or control characters"));
        }

        // name[:tag][@digest]: the digest follows the only '@'.
        let (rest, digest) = match s.split_once('@') {
            Some((rest, d)) => {
                validate_digest(d).map_err(|e| invalid(&e))?;
                (rest, Some(d.to_string()))
            }
            None => (s, None),
        };
        // The tag follows the last ':' that comes after the last '/' (a registry port comes before it).
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => {
                let at = last_slash + i;
                let tag = &rest[at + 1..];
                validate_tag(tag).map_err(|e| invalid(&e))?;
                (&rest[..at], Some(tag.to_string()))
            }
            None => (rest, None),
        };
        if name.is_empty() {
            return Err(invalid("repository name is empty"));
        }
        if name.len() > NAME_MAX {
            return Err(ReferenceError::NameTooLong {
                reference: s.to_string(),
                len: name.len(),
            });
        }

        let (registry, repository) = split_domain(name);
        let registry = match registry {
            Some(host) => {
                validate_registry(host).map_err(|e| invalid(&e))?;
                // Lowercased, unless it is a registry only for its uppercase letters (`MyHost/app`):
                // lowercased, the canonical form (`myhost/app`) would name Docker Hub's `myhost/app`.
                let host = if is_registry_component(&host.to_ascii_lowercase()) {
                    host.to_ascii_lowercase()
                } else {
                    host.to_string()
                };
                if host == "index.docker.io" {
                    DOCKER_HUB.to_string()
                } else {
                    host
                }
            }
            None => DOCKER_HUB.to_string(),
        };
        validate_repository(repository).map_err(|e| invalid(&e))?;
        let repository = if registry == DOCKER_HUB && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository.to_string()
        };
        // The limit is on the normalised name, as distribution/reference checks it: `d/x` names
        // `docker.io/d/x`, whose canonical form must parse too.
        let len = registry.len() + 1 + repository.len();
        if len > NAME_MAX {
            return Err(ReferenceError::NameTooLong {
                reference: s.to_string(),
                len,
            });
        }
        Ok(ImageReference {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// The host that serves the registry API: `registry-1.docker.io` for Docker Hub, else the registry.
    pub fn api_host(&self) -> &str {
        api_host(&self.registry)
    }

    /// The same image pinned to `digest` (the tag is kept for display). The digest is not checked
    /// here; the registry client validates every digest before using it.
    pub fn with_digest(&self, digest: &str) -> Self {
        ImageReference {
            digest: Some(digest.to_string()),
            ..self.clone()
        }
    }

    /// What to ask the registry for: the digest if any, else the tag, else `latest`.
    pub fn reference(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }
}

impl fmt::Display for ImageReference {
    /// Canonical form: `registry/repository[:tag][@digest]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for ImageReference {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// The host serving a registry's API (`docker.io` → `registry-1.docker.io`).
pub fn api_host(registry: &str) -> &str {
    if registry == DOCKER_HUB {
        DOCKER_HUB_API
    } else {
        registry
    }
}

/// Splits `name` into (registry, repository) as Docker's `splitDockerDomain` does.
fn split_domain(name: &str) -> (Option<&str>, &str) {
    match name.split_once('/') {
        Some((first, rest)) if is_registry_component(first) => (Some(first), rest),
        _ => (None, name),
    }
}

/// Docker's rule for a first path component that names a registry: it contains `.` or `:`, is
/// `localhost`, or has an uppercase letter.
fn is_registry_component(first: &str) -> bool {
    first.contains(['.', ':'])
        || first == "localhost"
        || first.chars().any(|c| c.is_ascii_uppercase())
}

/// Checks `host[:port]`: DNS-style labels, IPv4, or a bracketed IPv6 literal, then an optional port.
pub fn validate_registry(domain: &str) -> Result<(), String> {
    let (host, port) = if let Some(rest) = domain.strip_prefix('[') {
        let Some((ip, after)) = rest.split_once(']') else {
            return Err(format!("registry `{domain}`: unterminated IPv6 literal"));
        };
        if ip.parse::<Ipv6Addr>().is_err() {
            return Err(format!(
                "registry `{domain}`: `{ip}` is not an IPv6 address"
            ));
        }
        match after {
            "" => (None, None),
            p => match p.strip_prefix(':') {
                Some(port) => (None, Some(port)),
                None => return Err(format!("registry `{domain}`: junk after IPv6 literal")),
            },
        }
    } else {
        match domain.split_once(':') {
            Some((h, p)) => (Some(h), Some(p)),
            None => (Some(domain), None),
        }
    };
    if let Some(host) = host {
        if host.is_empty() {
            return Err(format!("registry `{domain}`: empty host"));
        }
        for label in host.split('.') {
            let ok = !label.is_empty()
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-');
            if !ok {
                return Err(format!("registry `{domain}`: invalid host label `{label}`"));
            }
        }
    }
    if let Some(port) = port {
        if port.is_empty()
            || !port.chars().all(|c| c.is_ascii_digit())
            || port.parse::<u16>().is_err()
        {
            return Err(format!("registry `{domain}`: invalid port `{port}`"));
        }
    }
    Ok(())
}

/// Checks a repository path: `/`-separated components of `[a-z0-9]+` joined by `.`, `_`, `__` or `-`+.
pub fn validate_repository(repo: &str) -> Result<(), String> {
    if repo.is_empty() {
        return Err("repository is empty".into());
    }
    if repo.len() > NAME_MAX {
        return Err(format!("repository is longer than {NAME_MAX} characters"));
    }
    for comp in repo.split('/') {
        if !valid_path_component(comp) {
            return Err(format!(
                "repository `{repo}`: invalid path component `{comp}` (lowercase letters, digits and \
                 single `.`/`_`, `__` or `-` separators only)"
            ));
        }
    }
    Ok(())
}

fn valid_path_component(comp: &str) -> bool {
    let b = comp.as_bytes();
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator run: `.`, `_`, `__`, or one or more `-`.
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &comp[start..i];
        let ok = matches!(sep, "." | "_" | "__") || sep.bytes().all(|c| c == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// Checks a tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub fn validate_tag(tag: &str) -> Result<(), String> {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut chars = tag.chars();
    let ok = match chars.next() {
        Some(first) => word(first) && chars.all(|c| word(c) || c == '.' || c == '-'),
        None => false,
    };
    if !ok {
        return Err(format!("invalid tag `{tag}`"));
    }
    if tag.len() > TAG_MAX {
        return Err(format!("tag is longer than {TAG_MAX} characters"));
    }
    Ok(())
}

/// Checks a digest: `sha256:` followed by 64 lowercase hex characters.
pub fn validate_digest(digest: &str) -> Result<(), String> {
    let Some((alg, hex)) = digest.split_once(':') else {
        return Err(format!(
            "invalid digest `{digest}` (expected algorithm:hex)"
        ));
    };
    if alg != "sha256" {
        return Err(format!(
            "unsupported digest algorithm `{alg}` (only sha256)"
        ));
    }
    if hex.len() != 64
        || !hex
            .bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
    {
        return Err(format!(
            "invalid sha256 digest `{digest}` (expected 64 lowercase hex characters)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[rstest]
    #[case("nginx", "docker.io", "library/nginx", None, false)]
    #[case("nginx:1.25", "docker.io", "library/nginx", Some("1.25"), false)]
    #[case("docker.io/nginx", "docker.io", "library/nginx", None, false)]
    #[case(
        "index.docker.io/library/nginx",
        "docker.io",
        "library/nginx",
        None,
        false
    )]
    #[case("team/app:v1", "docker.io", "team/app", Some("v1"), false)]
    #[case(
        "harbor.example.com/proj/app:v1",
        "harbor.example.com",
        "proj/app",
        Some("v1"),
        false
    )]
    #[case(
        "Harbor.Example.COM/proj/app",
        "harbor.example.com",
        "proj/app",
        None,
        false
    )]
    #[case("localhost/app", "localhost", "app", None, false)]
    #[case("localhost:5000/a/b/c:t", "localhost:5000", "a/b/c", Some("t"), false)]
    #[case("127.0.0.1:5000/app", "127.0.0.1:5000", "app", None, false)]
    #[case("[::1]:5000/app:v2", "[::1]:5000", "app", Some("v2"), false)]
    #[case("[::1]/app", "[::1]", "app", None, false)]
    #[case("reg.io/a.b_c__d---e/f", "reg.io", "a.b_c__d---e/f", None, false)]
    #[case("reg.io:443/app:v1@DIGEST", "reg.io:443", "app", Some("v1"), true)]
    #[case("nginx@DIGEST", "docker.io", "library/nginx", None, true)]
    // A registry only for its uppercase letter keeps them: lowercased it would print as Docker Hub's.
    #[case("Registry/app", "Registry", "app", None, false)]
    #[case("LocalHost/app", "localhost", "app", None, false)]
    fn parses(
        #[case] input: &str,
        #[case] registry: &str,
        #[case] repository: &str,
        #[case] tag: Option<&str>,
        #[case] has_digest: bool,
    ) {
        let input = input.replace("DIGEST", D);
        let r = ImageReference::parse(&input).expect("valid");
        assert_eq!(r.registry, registry);
        assert_eq!(r.repository, repository);
        assert_eq!(r.tag.as_deref(), tag);
        assert_eq!(r.digest.as_deref(), has_digest.then_some(D));
    }

    #[rstest]
    #[case("")]
    #[case("Nginx")]
    #[case("docker.io/Library/nginx")]
    #[case("reg.io/a/../b")]
    #[case("reg.io/a//b")]
    #[case("reg.io/a/")]
    #[case("/a")]
    #[case("reg.io/")]
    #[case("a..b")]
    #[case("a.-b")]
    #[case("_a")]
    #[case("a_")]
    #[case("a___b")]
    #[case("nginx:")]
    #[case("nginx:-bad")]
    #[case("nginx:a/b")]
    #[case("nginx@")]
    #[case("nginx@sha256:abc")]
    #[case("nginx@sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef")]
    #[case("nginx@md5:0123456789abcdef0123456789abcdef")]
    #[case("nginx@DIGEST@DIGEST")]
    #[case("reg.io:99999/app")]
    #[case("reg.io:/app")]
    #[case("reg.io:x1/app")]
    #[case("[::1/app")]
    #[case("[zz]:5000/app")]
    #[case("re_g.io/app")]
    #[case("-reg.io/app")]
    #[case("ngi nx")]
    #[case("nginx\n")]
    #[case(":tag")]
    #[case("@DIGEST")]
    fn rejects(#[case] input: &str) {
        let input = input.replace("DIGEST", D);
        assert!(
            ImageReference::parse(&input).is_err(),
            "{input:?} should be rejected"
        );
    }

    #[test]
    fn overlong_name_and_tag_are_rejected() {
        let long = format!("reg.io/{}", "a".repeat(NAME_MAX));
        assert!(matches!(
            ImageReference::parse(&long),
            Err(ReferenceError::NameTooLong { .. })
        ));
        // Normalised: `docker.io/` counts (`library/` too).
        let hub = format!(
            "team/{}",
            "a".repeat(NAME_MAX - "docker.io/team/".len() + 1)
        );
        assert!(hub.len() <= NAME_MAX);
        assert!(matches!(
            ImageReference::parse(&hub),
            Err(ReferenceError::NameTooLong { .. })
        ));
        let max_hub = format!("team/{}", "a".repeat(NAME_MAX - "docker.io/team/".len()));
        assert_eq!(
            ImageReference::parse(&max_hub).unwrap().to_string().len(),
            NAME_MAX
        );
        let long_tag = format!("app:{}", "t".repeat(TAG_MAX + 1));
        assert!(ImageReference::parse(&long_tag).is_err());
        let max_tag = format!("app:{}", "t".repeat(TAG_MAX));
        assert!(ImageReference::parse(&max_tag).is_ok());
    }

    #[rstest]
    #[case("nginx", "docker.io/library/nginx")]
    #[case("nginx:1", "docker.io/library/nginx:1")]
    #[case("LOCALHOST:5000/app:v@DIGEST", "localhost:5000/app:v@DIGEST")]
    fn displays_canonically(#[case] input: &str, #[case] want: &str) {
        let r = ImageReference::parse(&input.replace("DIGEST", D)).expect("valid");
        let s = r.to_string();
        assert_eq!(s, want.replace("DIGEST", D));
        assert_eq!(ImageReference::parse(&s).expect("round trip"), r);
    }

    #[test]
    fn api_host_maps_docker_hub_only() {
        assert_eq!(
            ImageReference::parse("nginx").unwrap().api_host(),
            DOCKER_HUB_API
        );
        assert_eq!(ImageReference::parse("r.io/x").unwrap().api_host(), "r.io");
    }

    #[test]
    fn with_digest_and_reference() {
        let r = ImageReference::parse("r.io/x:v1").unwrap();
        assert_eq!(r.reference(), "v1");
        let p = r.with_digest(D);
        assert_eq!(p.reference(), D);
        assert_eq!(p.tag.as_deref(), Some("v1"));
        assert_eq!(
            ImageReference::parse("r.io/x").unwrap().reference(),
            "latest"
        );
    }
}
