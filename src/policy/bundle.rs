//! Policy bundle sources: the files of a bundle directory (`*.rego` modules, `*_test.rego` tests,
//! `data.json`/`data.yaml` documents, `regate.yaml`, and manifests holding Gatekeeper templates and
//! constraints), from the library embedded in the binary or from
//! disk, layered so that a later bundle's file replaces an earlier one at the same relative path.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use include_dir::{include_dir, Dir};
use sha2::{Digest, Sha256};

/// The bundled policy library (`policies/` in the repository), compiled into the binary.
static EMBEDDED: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/policies");

/// What a bundle file is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// A Rego module (policy or library).
    Module,
    /// A Rego test module (`*_test.rego`).
    Test,
    /// A data document merged into `data` at the file's directory path (OPA bundle layout).
    Data,
    /// `regate.yaml`.
    Config,
    /// Any other `*.yaml`/`*.yml`: Kubernetes manifests, of which regate reads Gatekeeper
    /// ConstraintTemplates and Constraints (`crate::gatekeeper`); other documents are ignored.
    Manifest,
}

impl FileKind {
    fn of(rel: &str) -> Option<FileKind> {
        let name = rel.rsplit('/').next().unwrap_or(rel);
        if name.ends_with("_test.rego") {
            Some(FileKind::Test)
        } else if name.ends_with(".rego") {
            Some(FileKind::Module)
        } else if matches!(name, "data.json" | "data.yaml" | "data.yml") {
            Some(FileKind::Data)
        } else if matches!(name, "regate.yaml" | "regate.yml") {
            Some(FileKind::Config)
        } else if name.ends_with(".yaml") || name.ends_with(".yml") {
            Some(FileKind::Manifest)
        } else {
            None
        }
    }
}

/// One bundle file.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// Path shown in messages (`policies/pod-security/policy.rego` for embedded files).
    pub display: String,
    /// Path inside the bundle, `/`-separated.
    pub rel: String,
    pub kind: FileKind,
    pub text: String,
    /// Which layer supplied it (0 is the embedded library).
    pub layer: usize,
}

/// A bundle directory that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}: not valid UTF-8")]
    NotUtf8(String),
    #[error("{0}: not a directory")]
    NotADirectory(String),
    #[error("{0}: no such directory")]
    NotFound(String),
}

/// The layered set of bundle files, keyed by relative path ([`BundleSources::key`]).
#[derive(Debug, Clone, Default)]
pub struct BundleSources {
    pub files: BTreeMap<String, SourceFile>,
    pub layers: usize,
}

impl BundleSources {
    /// The map key of a file: its relative path, except for `regate.yaml` layers, which are all kept
    /// (configuration merges across layers key by key instead of replacing a whole file).
    fn key(rel: &str, kind: FileKind, layer: usize) -> String {
        if kind == FileKind::Config {
            format!("{rel}#layer{layer}")
        } else {
            rel.to_string()
        }
    }

    /// A one-layer bundle of one Rego module at `rel` (the bundle fuzz target and its regressions).
    pub fn one_module(rel: &str, text: String) -> BundleSources {
        let mut sources = BundleSources {
            layers: 1,
            ..Default::default()
        };
        let file = SourceFile {
            display: rel.to_string(),
            rel: rel.to_string(),
            kind: FileKind::Module,
            text,
            layer: 0,
        };
        sources.files.insert(rel.to_string(), file);
        sources
    }

    /// The embedded policy library.
    pub fn embedded() -> BundleSources {
        let mut sources = BundleSources {
            layers: 1,
            ..Default::default()
        };
        let mut stack = vec![&EMBEDDED];
        while let Some(dir) = stack.pop() {
            for file in dir.files() {
                let rel = file.path().to_string_lossy().replace('\\', "/");
                let (Some(kind), Some(text)) = (FileKind::of(&rel), file.contents_utf8()) else {
                    continue;
                };
                sources.files.insert(
                    Self::key(&rel, kind, 0),
                    SourceFile {
                        display: format!("policies/{rel}"),
                        rel,
                        kind,
                        text: text.to_string(),
                        layer: 0,
                    },
                );
            }
            stack.extend(dir.dirs());
        }
        sources
    }

    /// Adds a directory as a new layer on top: its files replace files at the same relative path, except
    /// `regate.yaml`, which is merged over the earlier layers' configuration.
    pub fn add_dir(&mut self, dir: &Path) -> Result<(), SourceError> {
        if !dir.exists() {
            return Err(SourceError::NotFound(dir.display().to_string()));
        }
        if !dir.is_dir() {
            return Err(SourceError::NotADirectory(dir.display().to_string()));
        }
        let layer = self.layers;
        self.layers += 1;
        let mut paths = Vec::new();
        collect(dir, dir, &mut paths)?;
        for (rel, path) in paths {
            let Some(kind) = FileKind::of(&rel) else {
                continue;
            };
            let bytes = std::fs::read(&path).map_err(|source| SourceError::Io {
                path: path.display().to_string(),
                source,
            })?;
            let text = String::from_utf8(bytes)
                .map_err(|_| SourceError::NotUtf8(path.display().to_string()))?;
            self.files.insert(
                Self::key(&rel, kind, layer),
                SourceFile {
                    display: path.display().to_string(),
                    rel,
                    kind,
                    text,
                    layer,
                },
            );
        }
        Ok(())
    }

    /// Files of one kind, in path order.
    pub fn of_kind(&self, kind: FileKind) -> impl Iterator<Item = &SourceFile> {
        self.files.values().filter(move |f| f.kind == kind)
    }

    /// A content digest over every file (path and bytes), identifying the bundle in logs and metrics.
    pub fn digest(&self) -> String {
        let mut hasher = Sha256::new();
        for (rel, file) in &self.files {
            hasher.update(rel.as_bytes());
            hasher.update([0]);
            hasher.update(file.text.as_bytes());
            hasher.update([0]);
        }
        let digest = hasher.finalize();
        format!(
            "sha256:{}",
            digest
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        )
    }
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>) -> Result<(), SourceError> {
    let entries = std::fs::read_dir(dir).map_err(|source| SourceError::Io {
        path: dir.display().to_string(),
        source,
    })?;
    let mut entries: Vec<_> = entries.filter_map(Result::ok).collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().to_string();
        // Kubernetes ConfigMap mounts hold `..data` and `..2024_...` entries next to symlinks to them.
        if name.starts_with('.') {
            continue;
        }
        if path.is_dir() {
            collect(root, &path, out)?;
        } else if let Ok(rel) = path.strip_prefix(root) {
            out.push((rel.to_string_lossy().replace('\\', "/"), path.clone()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_layers_replace_files_at_the_same_path() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("x")).unwrap();
        std::fs::write(dir.path().join("x/policy.rego"), "package a").unwrap();
        std::fs::write(dir.path().join("x/README.md"), "ignored").unwrap();
        std::fs::write(dir.path().join("regate.yaml"), "{}").unwrap();
        let mut sources = BundleSources::default();
        sources.add_dir(dir.path()).unwrap();
        std::fs::write(dir.path().join("x/policy.rego"), "package b").unwrap();
        sources.add_dir(dir.path()).unwrap();
        // One module (replaced), and both configuration layers (merged later, in layer order).
        assert_eq!(sources.files.len(), 3);
        assert_eq!(sources.files["x/policy.rego"].text, "package b");
        assert_eq!(sources.files["x/policy.rego"].layer, 1);
        let configs: Vec<usize> = sources.of_kind(FileKind::Config).map(|f| f.layer).collect();
        assert_eq!(configs, vec![0, 1]);
    }

    #[test]
    fn digest_changes_with_content() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.rego"), "package a").unwrap();
        let mut one = BundleSources::default();
        one.add_dir(dir.path()).unwrap();
        std::fs::write(dir.path().join("a.rego"), "package b").unwrap();
        let mut two = BundleSources::default();
        two.add_dir(dir.path()).unwrap();
        assert_ne!(one.digest(), two.digest());
        assert!(one.digest().starts_with("sha256:"));
    }

    #[test]
    fn missing_directory_is_an_error() {
        let mut sources = BundleSources::default();
        assert!(sources.add_dir(Path::new("/nonexistent/regate")).is_err());
    }
}
