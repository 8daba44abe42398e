//! OCI 1.1 referrers: `GET /v2/<name>/referrers/<digest>[?artifactType=..]`, an image index of the
//! manifests whose `subject` is `<digest>` (pages followed through `Link: <..>; rel="next"`). A registry
//! that answers 404 there has no referrers API (distribution 2.8, older Harbor); the spec then has
//! clients read the *referrers tag* `<alg>-<hex>` (e.g. `sha256-abc…`), an image index kept up to date
//! by whoever pushes referrers. No such tag, or a tag that is not an index, means no referrers.
//! Results are always filtered on `artifactType` here too, whether or not the registry filtered.

use serde::Deserialize;

use super::client::{status_error, RegistryClient};
use super::{Descriptor, RegistryError, MAX_MANIFEST_BYTES, OCI_INDEX};
use crate::images::reference::validate_digest;

/// Most referrers-API pages followed.
const MAX_PAGES: usize = 16;

#[derive(Deserialize)]
struct Index {
    #[serde(default, rename = "mediaType")]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Vec<Descriptor>,
}

/// The referrers tag for `digest`: `sha256:<hex>` → `sha256-<hex>`.
pub fn referrers_tag(digest: &str) -> String {
    let (alg, hex) = digest.split_once(':').unwrap_or((digest, ""));
    let alg: String = alg.chars().take(32).collect();
    let hex: String = hex
        .chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("{alg}-{hex}")
}

pub(crate) async fn list(
    client: &RegistryClient,
    registry: &str,
    repository: &str,
    digest: &str,
    artifact_type: Option<&str>,
) -> Result<Vec<Descriptor>, RegistryError> {
    validate_digest(digest).map_err(|detail| RegistryError::InvalidInput {
        registry: registry.to_string(),
        detail,
    })?;
    let what = format!("referrers of {registry}/{repository}@{digest}");
    let mut path = format!("/v2/{repository}/referrers/{digest}");
    if let Some(t) = artifact_type {
        path.push_str("?artifactType=");
        path.push_str(&super::auth::percent_encode(t));
    }
    let mut out = Vec::new();
    for page in 0..MAX_PAGES {
        let resp = client
            .get_raw(
                registry,
                repository,
                &path,
                OCI_INDEX,
                MAX_MANIFEST_BYTES,
                &what,
            )
            .await?;
        if page == 0 && resp.status == http::StatusCode::NOT_FOUND {
            return fallback(client, registry, repository, digest, artifact_type).await;
        }
        if !resp.status.is_success() {
            return Err(status_error(registry, repository, &what, &resp));
        }
        let index: Index =
            serde_json::from_slice(&resp.body).map_err(|e| RegistryError::Protocol {
                registry: registry.to_string(),
                detail: format!("{what}: response is not an image index: {e}"),
            })?;
        out.extend(check_descriptors(registry, &what, index.manifests)?);
        match next_page(resp.header("link")) {
            Some(next) if next.starts_with("/v2/") => path = next,
            Some(next) => {
                return Err(RegistryError::Protocol {
                    registry: registry.to_string(),
                    detail: format!("{what}: unsupported next-page link `{next}`"),
                })
            }
            None => return Ok(filter(out, artifact_type)),
        }
    }
    Err(RegistryError::Protocol {
        registry: registry.to_string(),
        detail: format!("{what}: more than {MAX_PAGES} pages"),
    })
}

async fn fallback(
    client: &RegistryClient,
    registry: &str,
    repository: &str,
    digest: &str,
    artifact_type: Option<&str>,
) -> Result<Vec<Descriptor>, RegistryError> {
    let tag = referrers_tag(digest);
    let manifest = match client.get_manifest(registry, repository, &tag).await {
        Ok(m) => m,
        Err(RegistryError::NotFound { .. }) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let what = format!("referrers tag {registry}/{repository}:{tag}");
    let Ok(index) = serde_json::from_slice::<Index>(&manifest.bytes) else {
        return Ok(Vec::new());
    };
    let is_index =
        manifest.media_type == OCI_INDEX || index.media_type.as_deref() == Some(OCI_INDEX);
    if !is_index {
        return Ok(Vec::new());
    }
    Ok(filter(
        check_descriptors(registry, &what, index.manifests)?,
        artifact_type,
    ))
}

fn check_descriptors(
    registry: &str,
    what: &str,
    descriptors: Vec<Descriptor>,
) -> Result<Vec<Descriptor>, RegistryError> {
    for d in &descriptors {
        validate_digest(&d.digest).map_err(|e| RegistryError::Protocol {
            registry: registry.to_string(),
            detail: format!("{what}: bad descriptor: {e}"),
        })?;
    }
    Ok(descriptors)
}

fn filter(descriptors: Vec<Descriptor>, artifact_type: Option<&str>) -> Vec<Descriptor> {
    match artifact_type {
        Some(t) => descriptors
            .into_iter()
            .filter(|d| d.artifact_type.as_deref() == Some(t))
            .collect(),
        None => descriptors,
    }
}

/// The target of `Link: <url>; rel="next"`, reduced to a path when it is an absolute URL.
fn next_page(link: Option<&str>) -> Option<String> {
    let link = link?;
    for part in link.split(',') {
        let (target, params) = part.split_once(';')?;
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        let is_next = params.split(';').any(|p| {
            let p = p.trim().replace(' ', "");
            p == "rel=\"next\"" || p == "rel=next"
        });
        if is_next {
            let path = match target.parse::<http::Uri>() {
                Ok(u) if u.scheme().is_some() => u.path_and_query()?.as_str().to_string(),
                _ => target.to_string(),
            };
            return Some(path);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[test]
    fn tag_schema() {
        let hex = "a".repeat(64);
        assert_eq!(
            referrers_tag(&format!("sha256:{hex}")),
            format!("sha256-{hex}")
        );
    }

    #[rstest]
    #[case(None, None)]
    #[case(
        Some(r#"</v2/a/referrers/sha256:x?n=1>; rel="next""#),
        Some("/v2/a/referrers/sha256:x?n=1")
    )]
    #[case(
        Some(r#"<https://r.io/v2/a/referrers/d?last=x>;rel=next"#),
        Some("/v2/a/referrers/d?last=x")
    )]
    #[case(Some(r#"</v2/x>; rel="prev""#), None)]
    #[case(Some("garbage"), None)]
    fn link_header(#[case] link: Option<&str>, #[case] want: Option<&str>) {
        assert_eq!(next_page(link).as_deref(), want);
    }

    #[test]
    fn filters_by_artifact_type() {
        let d = |t: Option<&str>| Descriptor {
            media_type: "m".into(),
            digest: "sha256:x".into(),
            size: 1,
            artifact_type: t.map(str::to_string),
            annotations: Default::default(),
        };
        let all = vec![d(Some("a")), d(Some("b")), d(None)];
        assert_eq!(filter(all.clone(), Some("a")), vec![d(Some("a"))]);
        assert_eq!(filter(all.clone(), None), all);
    }
}
