//! Which files under `reports/` are specs: every `*.toml`, each loaded once. A Kubernetes
//! ConfigMap volume's bookkeeping (`..data`, `..2026_12_05_10_00_00.123456789/`) is
//! skipped, and symlinks are followed and de-duplicated by what they point to, keeping the
//! path a person wrote (`reports/x.toml`), which names the report and its diagnostics.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::LoadError;

/// Names starting with this are a ConfigMap (or Secret) volume's own entries: the
/// timestamped folder holding the files, and the `..data` link to it.
const MOUNT_BOOKKEEPING_PREFIX: &str = "..";

/// One spec file: where it was found, and what that resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecFile {
    /// The path under the folder (`reports/x.toml`): the report id and what diagnostics
    /// show.
    pub path: PathBuf,
    /// The file itself, every symlink followed (`reports/..2026_…/x.toml`): what is read,
    /// and what hot reload watches, so a ConfigMap update (the `..data` link swapped to a
    /// new folder) is seen even when sizes and times match.
    pub target: PathBuf,
}

/// Every spec file (`*.toml`, any case) under `dir`, recursively, in path order, each
/// once. Entries named `..…` are skipped; a link to nothing is not a file.
pub fn spec_files(dir: &Path) -> Result<Vec<SpecFile>, LoadError> {
    let mut found = Vec::new();
    let mut visited = BTreeSet::new();
    collect(dir, &mut found, &mut visited)?;
    // One entry per target: the file's own path where the folder has it, else the first
    // link to it in path order.
    let mut by_target: BTreeMap<PathBuf, (bool, PathBuf)> = BTreeMap::new();
    for (path, target, is_link) in found {
        let candidate = (is_link, path);
        by_target
            .entry(target)
            .and_modify(|kept| {
                if candidate < *kept {
                    *kept = candidate.clone();
                }
            })
            .or_insert(candidate);
    }
    let mut files: Vec<SpecFile> = by_target
        .into_iter()
        .map(|(target, (_, path))| SpecFile { path, target })
        .collect();
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

/// Every spec file (`*.toml`, any case) under `dir` as [`spec_files`] finds them: the
/// user-facing paths.
pub fn spec_paths(dir: &Path) -> Result<Vec<PathBuf>, LoadError> {
    Ok(spec_files(dir)?.into_iter().map(|f| f.path).collect())
}

/// (path, resolved target, whether the path is a symlink) of every `*.toml` under `dir`;
/// `visited` holds the resolved folders already walked, so a link loop ends.
fn collect(
    dir: &Path,
    out: &mut Vec<(PathBuf, PathBuf, bool)>,
    visited: &mut BTreeSet<PathBuf>,
) -> Result<(), LoadError> {
    let read_error = |source| LoadError::ReadDir {
        path: dir.to_path_buf(),
        source,
    };
    let resolved_dir = std::fs::canonicalize(dir).map_err(read_error)?;
    if !visited.insert(resolved_dir) {
        return Ok(());
    }
    for entry in std::fs::read_dir(dir).map_err(read_error)? {
        let entry = entry.map_err(read_error)?;
        if entry
            .file_name()
            .to_string_lossy()
            .starts_with(MOUNT_BOOKKEEPING_PREFIX)
        {
            continue;
        }
        let path = entry.path();
        let is_link = entry.file_type().is_ok_and(|t| t.is_symlink());
        // Follows links; a dangling one (an editor's lock file, a file just removed from a
        // ConfigMap) resolves to nothing and is skipped.
        let Ok(target) = std::fs::canonicalize(&path) else {
            continue;
        };
        if target.is_dir() {
            collect(&path, out, visited)?;
        } else if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("toml"))
            && target.is_file()
        {
            out.push((path, target, is_link));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// `dir` laid out as a ConfigMap volume holding `names`, at version `stamp`.
    fn configmap(dir: &Path, stamp: &str, names: &[&str]) {
        let folder = dir.join(format!("..{stamp}"));
        std::fs::create_dir(&folder).unwrap();
        for name in names {
            std::fs::write(folder.join(name), format!("# {name} at {stamp}\n")).unwrap();
        }
        symlink(format!("..{stamp}"), dir.join("..data")).unwrap();
        for name in names {
            symlink(format!("..data/{name}"), dir.join(name)).unwrap();
        }
    }

    #[test]
    fn a_configmap_volume_yields_each_file_once_under_its_own_name() {
        let dir = tempfile::tempdir().unwrap();
        configmap(
            dir.path(),
            "2026_12_05_10_00_00.123456789",
            &["a.toml", "b.toml"],
        );
        let files = spec_files(dir.path()).unwrap();
        let paths: Vec<_> = files.iter().map(|f| f.path.clone()).collect();
        assert_eq!(
            paths,
            vec![dir.path().join("a.toml"), dir.path().join("b.toml")]
        );
        let real = std::fs::canonicalize(dir.path()).unwrap();
        assert_eq!(
            files[0].target,
            real.join("..2026_12_05_10_00_00.123456789/a.toml")
        );
    }

    #[test]
    fn a_link_to_a_file_in_the_folder_loads_once_as_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("daily.toml"), "").unwrap();
        symlink("daily.toml", dir.path().join("alias.toml")).unwrap();
        assert_eq!(
            spec_paths(dir.path()).unwrap(),
            vec![dir.path().join("daily.toml")]
        );
    }

    #[test]
    fn dangling_links_and_link_loops_are_not_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/x.toml"), "").unwrap();
        symlink("..", dir.path().join("sub/up")).unwrap();
        symlink("gone.toml", dir.path().join(".#x.toml")).unwrap();
        assert_eq!(
            spec_paths(dir.path()).unwrap(),
            vec![dir.path().join("sub/x.toml")]
        );
    }
}
