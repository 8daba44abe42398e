//! Registry credentials from a docker `config.json` (the `.dockerconfigjson` of a Kubernetes
//! `kubernetes.io/dockerconfigjson` Secret has the same shape):
//!
//! ```json
//! {"auths": {"harbor.example.com": {"auth": "base64(user:pass)"},
//!            "https://index.docker.io/v1/": {"username": "u", "password": "p"},
//!            "reg.example.com:5000": {"identitytoken": "refresh-token"}}}
//! ```
//!
//! Keys match as Docker matches them: scheme and path are ignored (`https://host/v1/` is `host`), the
//! comparison is on `host[:port]`, case-insensitive, and Docker Hub (`docker.io`) also matches
//! `index.docker.io` and `registry-1.docker.io`. Credential helpers (`credsStore`, `credHelpers`) are
//! not run. The whole file is checked when loaded, and errors name the file and the field.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::Deserialize;

use super::RegistryError;
use crate::images::reference::DOCKER_HUB;

/// Largest docker config file read.
const MAX_CONFIG_BYTES: u64 = 4 * 1024 * 1024;

/// Credentials for one registry.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// Username and password, sent as HTTP Basic or to a token service.
    Basic { username: String, password: String },
    /// An OAuth2 refresh token (`identitytoken`), exchanged at the token service.
    IdentityToken(String),
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::Basic { username, .. } => write!(f, "Basic({username}, <redacted>)"),
            Credential::IdentityToken(_) => write!(f, "IdentityToken(<redacted>)"),
        }
    }
}

/// Parsed credentials, keyed by normalised `host[:port]`.
#[derive(Debug, Clone, Default)]
pub struct DockerConfig {
    auths: HashMap<String, Credential>,
}

#[derive(Deserialize)]
struct RawConfig {
    #[serde(default)]
    auths: HashMap<String, RawAuth>,
}

#[derive(Deserialize)]
struct RawAuth {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

impl DockerConfig {
    /// Reads and checks `path`.
    pub fn load(path: &Path) -> Result<Self, RegistryError> {
        let err = |detail: String| RegistryError::Config {
            path: path.to_path_buf(),
            detail,
        };
        let meta = std::fs::metadata(path).map_err(|e| err(format!("cannot read: {e}")))?;
        if meta.len() > MAX_CONFIG_BYTES {
            return Err(err(format!("larger than {MAX_CONFIG_BYTES} bytes")));
        }
        let bytes = std::fs::read(path).map_err(|e| err(format!("cannot read: {e}")))?;
        Self::parse(&bytes, path)
    }

    /// Parses config bytes; `path` is only used in error messages.
    pub fn parse(bytes: &[u8], path: &Path) -> Result<Self, RegistryError> {
        let err = |detail: String| RegistryError::Config {
            path: PathBuf::from(path),
            detail,
        };
        let raw: RawConfig =
            serde_json::from_slice(bytes).map_err(|e| err(format!("not a docker config: {e}")))?;
        let mut auths = HashMap::new();
        for (key, entry) in raw.auths {
            let field = |name: &str| format!("auths.{key:?}.{name}");
            let cred = if let Some(token) = entry.identitytoken.filter(|t| !t.is_empty()) {
                Credential::IdentityToken(token)
            } else if let Some(auth) = entry.auth.filter(|a| !a.is_empty()) {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(auth.trim())
                    .map_err(|e| err(format!("{}: not valid base64: {e}", field("auth"))))?;
                let decoded = String::from_utf8(decoded).map_err(|_| {
                    err(format!(
                        "{}: not UTF-8 after base64 decoding",
                        field("auth")
                    ))
                })?;
                let Some((username, password)) = decoded.split_once(':') else {
                    return Err(err(format!(
                        "{}: expected base64 of `user:password`",
                        field("auth")
                    )));
                };
                Credential::Basic {
                    username: username.to_string(),
                    password: password.to_string(),
                }
            } else {
                match (entry.username, entry.password) {
                    (Some(u), Some(p)) if !u.is_empty() => Credential::Basic {
                        username: u,
                        password: p,
                    },
                    (None, None) => continue,
                    _ => {
                        return Err(err(format!(
                            "{}: needs `auth`, `identitytoken`, or both `username` and `password`",
                            field("*")
                        )))
                    }
                }
            };
            let host = normalize_key(&key);
            if host.is_empty() {
                return Err(err(format!("auths.{key:?}: no registry host in the key")));
            }
            auths.insert(host, cred);
        }
        Ok(DockerConfig { auths })
    }

    /// Credentials for `registry` (`host[:port]`, `docker.io` for Docker Hub), if any.
    pub fn credential(&self, registry: &str) -> Option<&Credential> {
        let registry = registry.to_ascii_lowercase();
        if let Some(c) = self.auths.get(&registry) {
            return Some(c);
        }
        if registry == DOCKER_HUB
            || registry == "index.docker.io"
            || registry == "registry-1.docker.io"
        {
            for alias in ["index.docker.io", "docker.io", "registry-1.docker.io"] {
                if let Some(c) = self.auths.get(alias) {
                    return Some(c);
                }
            }
        }
        None
    }

    /// Number of registries with credentials.
    pub fn len(&self) -> usize {
        self.auths.len()
    }

    pub fn is_empty(&self) -> bool {
        self.auths.is_empty()
    }
}

/// `https://Host:5000/v1/` → `host:5000`, as Docker's `ConvertToHostname`.
fn normalize_key(key: &str) -> String {
    let key = key.trim();
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    key.split('/').next().unwrap_or("").to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    fn cfg(json: &str) -> Result<DockerConfig, RegistryError> {
        DockerConfig::parse(json.as_bytes(), Path::new("/x/config.json"))
    }

    #[rstest]
    #[case("https://index.docker.io/v1/", "docker.io")]
    #[case("index.docker.io", "docker.io")]
    #[case("docker.io", "docker.io")]
    #[case("harbor.example.com", "harbor.example.com")]
    #[case("https://harbor.example.com", "harbor.example.com")]
    #[case("http://Harbor.Example.com/v2/", "harbor.example.com")]
    #[case("localhost:5000", "localhost:5000")]
    #[case("https://[::1]:5000", "[::1]:5000")]
    fn keys_match_like_docker(#[case] key: &str, #[case] registry: &str) {
        let c = cfg(&format!(
            r#"{{"auths":{{"{key}":{{"auth":"{}"}}}}}}"#,
            b64("u:p:x")
        ))
        .unwrap();
        assert_eq!(
            c.credential(registry),
            Some(&Credential::Basic {
                username: "u".into(),
                password: "p:x".into()
            })
        );
    }

    #[rstest]
    #[case("localhost:5000", "localhost")]
    #[case("localhost", "localhost:5000")]
    #[case("harbor.example.com", "example.com")]
    fn no_loose_matches(#[case] key: &str, #[case] registry: &str) {
        let c = cfg(&format!(
            r#"{{"auths":{{"{key}":{{"auth":"{}"}}}}}}"#,
            b64("u:p")
        ))
        .unwrap();
        assert_eq!(c.credential(registry), None);
    }

    #[test]
    fn username_password_and_identity_token() {
        let c = cfg(
            r#"{"auths":{"a.io":{"username":"u","password":"p"},"b.io":{"identitytoken":"t","auth":""}},"credsStore":"x"}"#,
        )
        .unwrap();
        assert!(
            matches!(c.credential("a.io"), Some(Credential::Basic { username, .. }) if username == "u")
        );
        assert_eq!(
            c.credential("b.io"),
            Some(&Credential::IdentityToken("t".into()))
        );
        assert_eq!(c.len(), 2);
    }

    #[rstest]
    #[case(r#"not json"#, "not a docker config")]
    #[case(
        r#"{"auths":{"a.io":{"auth":"!!!"}}}"#,
        "auths.\"a.io\".auth: not valid base64"
    )]
    #[case(
        r#"{"auths":{"a.io":{"auth":"dXNlcg=="}}}"#,
        "auths.\"a.io\".auth: expected base64"
    )]
    #[case(r#"{"auths":{"a.io":{"username":"u"}}}"#, "auths.\"a.io\"")]
    #[case(r#"{"auths":{"a.io":{"auth":5}}}"#, "not a docker config")]
    fn errors_name_file_and_field(#[case] json: &str, #[case] want: &str) {
        let e = cfg(json).unwrap_err().to_string();
        assert!(e.contains("/x/config.json"), "{e}");
        assert!(e.contains(want), "{e}");
    }

    #[test]
    fn debug_redacts_secrets() {
        let c = Credential::Basic {
            username: "u".into(),
            password: "hunter2".into(),
        };
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
