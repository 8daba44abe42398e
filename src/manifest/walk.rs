//! Inputs on disk and stdin: `-`, files and directories, walked recursively in a deterministic
//! order, each file read as bytes and handed to [`read_bytes`](super::read_bytes).
//!
//! Rules:
//! - `-` reads stdin to its end (a second `-` then reads nothing); its display name is `-`.
//! - A file named on the command line is read whatever its extension, and may be a pipe (e.g.
//!   `<(helm template ...)`).
//! - A directory is walked recursively for regular files ending in `.yaml`, `.yml` or `.json`
//!   (ASCII case-insensitive). Entries whose name starts with `.` (`.git`, editor lock files)
//!   are skipped. Symbolic links are followed; a directory already visited (a link cycle) is not
//!   entered again. All files found are sorted by path before reading.
//! - A named path that does not exist, or a named directory that cannot be listed, is a
//!   [`ManifestError`]. A file that cannot be read, a broken link with a manifest extension,
//!   or an unlistable subdirectory is an [`InputError`](crate::report::model::InputError) at
//!   line 1 of that path, and reading goes on.

use std::collections::HashSet;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use super::{read_bytes, ManifestError, ReadResult};
use crate::report::model::{InputError, Location};

/// Read every input: "-" means stdin (display name "-"), a file, or a directory (recursive,
/// files ending .yaml/.yml/.json, sorted by path so order is deterministic; hidden entries like
/// .git skipped). Unreadable files (permission, invalid UTF-8) become InputErrors naming the
/// file, not a hard failure; a path that does not exist is a [`ManifestError`].
pub fn read_inputs(inputs: &[PathBuf]) -> Result<ReadResult, ManifestError> {
    let mut out = ReadResult::default();
    for input in inputs {
        if input.as_os_str() == "-" {
            let mut bytes = Vec::new();
            io::stdin()
                .lock()
                .read_to_end(&mut bytes)
                .map_err(|source| ManifestError::Stdin { source })?;
            out.extend(read_bytes("-", &bytes));
        } else {
            read_path(input, &mut out)?;
        }
    }
    Ok(out)
}

fn read_path(path: &Path, out: &mut ReadResult) -> Result<(), ManifestError> {
    let meta = fs::metadata(path).map_err(|source| {
        if source.kind() == io::ErrorKind::NotFound {
            ManifestError::NotFound {
                path: path.to_owned(),
            }
        } else {
            ManifestError::Io {
                path: path.to_owned(),
                source,
            }
        }
    })?;
    if !meta.is_dir() {
        read_file(path, out);
        return Ok(());
    }
    let entries = fs::read_dir(path).map_err(|source| ManifestError::Io {
        path: path.to_owned(),
        source,
    })?;
    let mut walker = Walker::default();
    if let Ok(canonical) = fs::canonicalize(path) {
        walker.visited.insert(canonical);
    }
    walker.walk(path, entries);
    let Walker {
        mut files,
        mut errors,
        ..
    } = walker;
    files.sort();
    errors.sort();
    out.errors.extend(errors);
    for file in files {
        read_file(&file, out);
    }
    Ok(())
}

/// What a directory walk found: manifest files, and directories it could not read.
#[derive(Default)]
struct Walker {
    files: Vec<PathBuf>,
    errors: Vec<InputError>,
    /// Canonical paths of the directories entered, so a symlink cycle is entered only once.
    visited: HashSet<PathBuf>,
}

impl Walker {
    /// Collects manifest files under `dir`, whose entries are `entries`.
    fn walk(&mut self, dir: &Path, entries: fs::ReadDir) {
        for entry in entries {
            let entry = match entry {
                Ok(entry) => entry,
                Err(err) => {
                    self.error(dir, &err);
                    continue;
                }
            };
            if entry.file_name().as_encoded_bytes().starts_with(b".") {
                continue;
            }
            let path = entry.path();
            let Ok(meta) = fs::metadata(&path) else {
                // A broken link: reading it reports the error at its place in the sorted order.
                if has_manifest_extension(&path) {
                    self.files.push(path);
                }
                continue;
            };
            if meta.is_dir() {
                match fs::canonicalize(&path) {
                    Ok(canonical) => {
                        if !self.visited.insert(canonical) {
                            continue;
                        }
                    }
                    Err(err) => {
                        self.error(&path, &err);
                        continue;
                    }
                }
                match fs::read_dir(&path) {
                    Ok(entries) => self.walk(&path, entries),
                    Err(err) => self.error(&path, &err),
                }
            } else if meta.is_file() && has_manifest_extension(&path) {
                self.files.push(path);
            }
        }
    }

    fn error(&mut self, dir: &Path, err: &io::Error) {
        self.errors.push(InputError {
            location: Location {
                file: display(dir),
                line: 1,
            },
            message: format!("cannot read directory: {err}"),
        });
    }
}

fn has_manifest_extension(path: &Path) -> bool {
    path.extension().is_some_and(|ext| {
        ["yaml", "yml", "json"]
            .iter()
            .any(|want| ext.eq_ignore_ascii_case(want))
    })
}

fn display(path: &Path) -> String {
    path.display().to_string()
}

fn read_file(path: &Path, out: &mut ReadResult) {
    let name = display(path);
    match fs::read(path) {
        Ok(bytes) => out.extend(read_bytes(&name, &bytes)),
        Err(err) => out.push_error(&name, 1, format!("cannot read file: {err}")),
    }
}
