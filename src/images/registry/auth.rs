//! Registry authentication: `WWW-Authenticate` challenges, the Docker token protocol, and a token
//! cache.
//!
//! A request goes out anonymously (or with what worked before for that registry). On `401` the
//! challenge says what to do: `Basic` → resend with the docker-config username and password;
//! `Bearer realm=..,service=..,scope=..` → ask the token service (`GET realm?service&scope`, with Basic
//! credentials when there are any, or an OAuth2 refresh-token `POST` for an `identitytoken`), read
//! `token` or `access_token`, cache it per (registry, scope) until `expires_in` runs out, resend.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{Method, Request, StatusCode, Uri};
use http_body_util::Full;
use serde::Deserialize;

use super::docker_config::Credential;
use super::transport::{error_detail, Transport};
use super::RegistryError;

/// Largest token-service response read.
const MAX_TOKEN_RESPONSE: usize = 1024 * 1024;
/// Token lifetime assumed when the service gives none (the token spec's default).
const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(60);
/// Tokens are dropped this long before they expire, to allow for clock skew and slow requests.
const TOKEN_SLACK: Duration = Duration::from_secs(10);

/// One challenge from a `WWW-Authenticate` header: the scheme (lowercased) and its parameters
/// (names lowercased, values unquoted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub scheme: String,
    pub params: Vec<(String, String)>,
}

impl Challenge {
    /// The value of parameter `name` (case-insensitive).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A `Bearer` challenge's token-service parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BearerChallenge {
    pub realm: String,
    pub service: Option<String>,
    pub scope: Option<String>,
}

/// What a registry asks for, from its challenges: Bearer if offered, else Basic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthScheme {
    Basic,
    Bearer(BearerChallenge),
}

/// Parses a `WWW-Authenticate` value into its challenges. Tolerant: never fails, skips junk.
/// Handles several challenges in one header, quoted values with commas and `\"` escapes, and
/// spaces around `=`.
pub fn parse_www_authenticate(header: &str) -> Vec<Challenge> {
    let chars: Vec<char> = header.chars().collect();
    let mut i = 0;
    let mut out: Vec<Challenge> = Vec::new();
    let skip_ws = |i: &mut usize| {
        while *i < chars.len() && chars[*i].is_whitespace() {
            *i += 1;
        }
    };
    let is_delim = |c: char| c.is_whitespace() || c == ',' || c == '=' || c == '"';
    while i < chars.len() {
        // Skip separators between items.
        while i < chars.len() && (chars[i].is_whitespace() || chars[i] == ',') {
            i += 1;
        }
        if i >= chars.len() {
            break;
        }
        let start = i;
        while i < chars.len() && !is_delim(chars[i]) {
            i += 1;
        }
        let token: String = chars[start..i].iter().collect();
        if token.is_empty() {
            // A stray `=` or quote: skip one character.
            i += 1;
            continue;
        }
        let mut j = i;
        skip_ws(&mut j);
        if j < chars.len() && chars[j] == '=' && !out.is_empty() {
            // name=value for the current challenge.
            j += 1;
            skip_ws(&mut j);
            let mut value = String::new();
            if j < chars.len() && chars[j] == '"' {
                j += 1;
                while j < chars.len() && chars[j] != '"' {
                    if chars[j] == '\\' && j + 1 < chars.len() {
                        j += 1;
                    }
                    value.push(chars[j]);
                    j += 1;
                }
                j += 1; // closing quote (or past the end)
            } else {
                while j < chars.len() && chars[j] != ',' && !chars[j].is_whitespace() {
                    value.push(chars[j]);
                    j += 1;
                }
            }
            if let Some(ch) = out.last_mut() {
                ch.params.push((token.to_ascii_lowercase(), value));
            }
            i = j;
        } else if j < chars.len() && chars[j] == '=' {
            // A parameter before any scheme: junk, skip the value.
            i = j + 1;
        } else {
            out.push(Challenge {
                scheme: token.to_ascii_lowercase(),
                params: Vec::new(),
            });
        }
    }
    out
}

/// Picks the scheme to use from the challenges: Bearer (with a realm) first, then Basic.
pub fn choose_scheme(challenges: &[Challenge]) -> Option<AuthScheme> {
    let bearer = challenges.iter().find_map(|c| {
        if c.scheme != "bearer" {
            return None;
        }
        Some(AuthScheme::Bearer(BearerChallenge {
            realm: c.param("realm")?.to_string(),
            service: c.param("service").map(str::to_string),
            scope: c.param("scope").map(str::to_string),
        }))
    });
    bearer.or_else(|| {
        challenges
            .iter()
            .any(|c| c.scheme == "basic")
            .then_some(AuthScheme::Basic)
    })
}

/// `Authorization: Basic ...` value.
pub fn basic_header(username: &str, password: &str) -> String {
    let raw = format!("{username}:{password}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

/// Bearer tokens per (registry, scope), until shortly before they expire.
#[derive(Debug, Default)]
pub struct TokenCache {
    tokens: Mutex<HashMap<(String, String), (String, Instant)>>,
}

impl TokenCache {
    /// A still-valid token for (registry, scope).
    pub fn get(&self, registry: &str, scope: &str) -> Option<String> {
        let mut map = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        let key = (registry.to_string(), scope.to_string());
        match map.get(&key) {
            Some((token, until)) if Instant::now() < *until => Some(token.clone()),
            Some(_) => {
                map.remove(&key);
                None
            }
            None => None,
        }
    }

    /// Remembers `token` for `ttl` (less a safety margin).
    pub fn insert(&self, registry: &str, scope: &str, token: String, ttl: Duration) {
        let ttl = ttl.saturating_sub(TOKEN_SLACK);
        if ttl.is_zero() {
            return;
        }
        let mut map = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        map.insert(
            (registry.to_string(), scope.to_string()),
            (token, Instant::now() + ttl),
        );
    }

    /// Forgets the token for (registry, scope), e.g. after the registry refused it.
    pub fn remove(&self, registry: &str, scope: &str) {
        let mut map = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(&(registry.to_string(), scope.to_string()));
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// Parses a token-service answer: `token` or `access_token`, and `expires_in` seconds.
pub fn parse_token_response(body: &[u8]) -> Result<(String, Duration), String> {
    let r: TokenResponse =
        serde_json::from_slice(body).map_err(|e| format!("token response is not JSON: {e}"))?;
    let token = r
        .token
        .filter(|t| !t.is_empty())
        .or(r.access_token.filter(|t| !t.is_empty()))
        .ok_or("token response has neither `token` nor `access_token`")?;
    let ttl = r
        .expires_in
        .filter(|s| *s > 0)
        .map_or(DEFAULT_TOKEN_TTL, |s| Duration::from_secs(s.min(24 * 3600)));
    Ok((token, ttl))
}

/// Asks the token service named by `challenge` for a token for `scope`.
pub(crate) async fn fetch_token(
    transport: &Transport,
    registry: &str,
    repository: &str,
    challenge: &BearerChallenge,
    scope: &str,
    credential: Option<&Credential>,
) -> Result<(String, Duration), RegistryError> {
    let realm: Uri = challenge
        .realm
        .parse()
        .map_err(|_| RegistryError::Protocol {
            registry: registry.to_string(),
            detail: format!("token realm `{}` is not a URL", challenge.realm),
        })?;
    transport.check_url(registry, &realm)?;
    let mut query: Vec<(&str, &str)> = Vec::new();
    if let Some(service) = &challenge.service {
        query.push(("service", service));
    }
    query.push(("scope", scope));

    let req = match credential {
        Some(Credential::IdentityToken(refresh)) => {
            query.push(("grant_type", "refresh_token"));
            query.push(("client_id", "regate"));
            query.push(("refresh_token", refresh));
            Request::builder()
                .method(Method::POST)
                .uri(realm)
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Full::new(Bytes::from(form_encode(&query))))
        }
        other => {
            let sep = if challenge.realm.contains('?') {
                '&'
            } else {
                '?'
            };
            let url = format!("{}{sep}{}", challenge.realm, form_encode(&query));
            let mut b = Request::builder().method(Method::GET).uri(url);
            if let Some(Credential::Basic { username, password }) = other {
                b = b.header(AUTHORIZATION, basic_header(username, password));
            }
            b.body(Full::new(Bytes::new()))
        }
    }
    .map_err(|e| RegistryError::Protocol {
        registry: registry.to_string(),
        detail: format!("cannot build token request: {e}"),
    })?;

    let resp = transport
        .send(registry, req, MAX_TOKEN_RESPONSE, "token response")
        .await?;
    match resp.status {
        s if s.is_success() => {
            parse_token_response(&resp.body).map_err(|detail| RegistryError::Protocol {
                registry: registry.to_string(),
                detail,
            })
        }
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(RegistryError::Unauthorized {
            registry: registry.to_string(),
            repository: repository.to_string(),
            detail: format!(
                "token service refused scope `{scope}` ({}): {}",
                resp.status,
                error_detail(&resp.body)
            ),
        }),
        s => Err(RegistryError::Protocol {
            registry: registry.to_string(),
            detail: format!(
                "token service answered {s} for scope `{scope}`: {}",
                error_detail(&resp.body)
            ),
        }),
    }
}

/// `application/x-www-form-urlencoded` encoding of `pairs`.
pub fn form_encode(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn ch(scheme: &str, params: &[(&str, &str)]) -> Challenge {
        Challenge {
            scheme: scheme.into(),
            params: params
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[rstest]
    #[case(
        r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull""#,
        vec![ch("bearer", &[("realm", "https://auth.docker.io/token"), ("service", "registry.docker.io"), ("scope", "repository:library/nginx:pull")])]
    )]
    #[case(
        r#"Bearer realm="https://h/service/token", service="harbor-registry", scope="repository:a/b:pull,push""#,
        vec![ch("bearer", &[("realm", "https://h/service/token"), ("service", "harbor-registry"), ("scope", "repository:a/b:pull,push")])]
    )]
    #[case(r#"Basic realm="Registry Realm""#, vec![ch("basic", &[("realm", "Registry Realm")])])]
    #[case(r#"basic"#, vec![ch("basic", &[])])]
    #[case(
        r#"Basic realm="a, b", Bearer realm=https://t/x,scope="s""#,
        vec![ch("basic", &[("realm", "a, b")]), ch("bearer", &[("realm", "https://t/x"), ("scope", "s")])]
    )]
    #[case(r#"Bearer realm = "x\"y" , Service="S""#, vec![ch("bearer", &[("realm", "x\"y"), ("service", "S")])])]
    #[case(r#"Bearer realm="unterminated"#, vec![ch("bearer", &[("realm", "unterminated")])])]
    #[case(r#" , ,,"#, vec![])]
    #[case(r#""#, vec![])]
    #[case(r#"Bearer realm="#, vec![ch("bearer", &[("realm", "")])])]
    fn parses_challenges(#[case] header: &str, #[case] want: Vec<Challenge>) {
        assert_eq!(parse_www_authenticate(header), want);
    }

    #[test]
    fn parser_survives_junk() {
        for s in [
            "=x, ,,",
            "\"",
            "\\",
            "Bearer \"",
            "a=\"\\",
            "Bearer realm=\"\\",
            "==,\"\",",
            "ü=ö",
        ] {
            let _ = parse_www_authenticate(s);
        }
    }

    #[test]
    fn prefers_bearer_with_realm() {
        let c = parse_www_authenticate(r#"Basic realm="r", Bearer realm="https://t",service="s""#);
        assert_eq!(
            choose_scheme(&c),
            Some(AuthScheme::Bearer(BearerChallenge {
                realm: "https://t".into(),
                service: Some("s".into()),
                scope: None
            }))
        );
        let c = parse_www_authenticate(r#"Bearer service="s", Basic realm="r""#);
        assert_eq!(choose_scheme(&c), Some(AuthScheme::Basic));
        assert_eq!(choose_scheme(&parse_www_authenticate("Negotiate")), None);
    }

    #[rstest]
    #[case(r#"{"token":"t","expires_in":300}"#, Ok(("t", 300)))]
    #[case(r#"{"access_token":"a"}"#, Ok(("a", 60)))]
    #[case(r#"{"token":"","access_token":"a","expires_in":0}"#, Ok(("a", 60)))]
    #[case(r#"{"expires_in":5}"#, Err(()))]
    #[case(r#"nope"#, Err(()))]
    fn token_responses(#[case] body: &str, #[case] want: Result<(&str, u64), ()>) {
        let got = parse_token_response(body.as_bytes())
            .map(|(t, d)| (t, d.as_secs()))
            .map_err(|_| ());
        assert_eq!(got, want.map(|(t, s)| (t.to_string(), s)));
    }

    #[test]
    fn cache_expires() {
        let c = TokenCache::default();
        c.insert("r", "s", "t".into(), Duration::from_secs(300));
        assert_eq!(c.get("r", "s").as_deref(), Some("t"));
        assert_eq!(c.get("r", "other"), None);
        c.insert("r", "short", "t".into(), Duration::from_secs(5));
        assert_eq!(c.get("r", "short"), None);
        c.remove("r", "s");
        assert_eq!(c.get("r", "s"), None);
    }

    #[test]
    fn encodes_forms() {
        assert_eq!(
            form_encode(&[("scope", "repository:a/b:pull,push"), ("service", "x y")]),
            "scope=repository%3Aa%2Fb%3Apull%2Cpush&service=x%20y"
        );
    }
}
