//! What an upload of a local path contains: one regular file, or every regular
//! file below a directory, named by its `/`-separated path relative to it.
//!
//! Rules (`docs/ipc.md`): a symlink is followed only when its target stays
//! inside the directory; a symlink leading out, a broken one, a name that is not
//! UTF-8 or holds a `\`, or an unreadable file refuses the whole upload before
//! anything moves. An empty directory is refused. Each file's identity (size and
//! mtime) is recorded so that a resumed upload notices a changed source.

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use dataerai_proto::ApiError;

/// One local file of an upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalFile {
    /// Name inside the content version.
    pub name: String,
    pub path: PathBuf,
    pub size: u64,
    pub mtime_ns: i64,
}

/// Size and modification time, in nanoseconds, of a file's metadata.
pub fn identity(m: &std::fs::Metadata) -> (u64, i64) {
    (m.len(), m.mtime() * 1_000_000_000 + m.mtime_nsec())
}

/// List the files of `root` (a file or a directory), sorted by name.
pub fn scan(root: &Path) -> Result<Vec<LocalFile>, ApiError> {
    let meta = std::fs::metadata(root)
        .map_err(|_| ApiError::invalid(format!("file not found: {}", root.display())))?;
    if meta.is_file() {
        let name = root
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| ApiError::invalid(format!("no usable file name in {}", root.display())))?
            .to_string();
        check_readable(root)?;
        let (size, mtime_ns) = identity(&meta);
        return Ok(vec![LocalFile {
            name,
            path: root.to_path_buf(),
            size,
            mtime_ns,
        }]);
    }
    if !meta.is_dir() {
        return Err(ApiError::invalid(format!(
            "not a regular file or directory: {}",
            root.display()
        )));
    }
    let canon = root
        .canonicalize()
        .map_err(|e| ApiError::invalid(format!("cannot read {}: {e}", root.display())))?;
    let mut files = Vec::new();
    let mut visited = HashSet::new();
    walk(&canon, root, "", &mut visited, &mut files)?;
    if files.is_empty() {
        return Err(ApiError::invalid(format!(
            "directory {} contains no files",
            root.display()
        )));
    }
    files.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(files)
}

fn check_readable(path: &Path) -> Result<(), ApiError> {
    std::fs::File::open(path)
        .map(drop)
        .map_err(|e| ApiError::invalid(format!("cannot read {}: {e}", path.display())))
}

fn walk(
    canon_root: &Path,
    dir: &Path,
    prefix: &str,
    visited: &mut HashSet<PathBuf>,
    out: &mut Vec<LocalFile>,
) -> Result<(), ApiError> {
    // A symlinked directory inside the tree could lead back to an ancestor.
    let real = dir
        .canonicalize()
        .map_err(|e| ApiError::invalid(format!("cannot read {}: {e}", dir.display())))?;
    if !visited.insert(real) {
        return Ok(());
    }
    let entries = std::fs::read_dir(dir)
        .map_err(|e| ApiError::invalid(format!("cannot read {}: {e}", dir.display())))?;
    for entry in entries {
        let entry =
            entry.map_err(|e| ApiError::invalid(format!("cannot read {}: {e}", dir.display())))?;
        let path = entry.path();
        let file_name = entry.file_name();
        let Some(part) = file_name.to_str() else {
            return Err(ApiError::invalid(format!(
                "file name is not UTF-8: {}",
                path.display()
            )));
        };
        if part.contains('\\') {
            return Err(ApiError::invalid(format!(
                "file name contains a backslash: {}",
                path.display()
            )));
        }
        let name = if prefix.is_empty() {
            part.to_string()
        } else {
            format!("{prefix}/{part}")
        };
        let lmeta = std::fs::symlink_metadata(&path)
            .map_err(|e| ApiError::invalid(format!("cannot read {}: {e}", path.display())))?;
        let meta = if lmeta.file_type().is_symlink() {
            let target = path
                .canonicalize()
                .map_err(|_| ApiError::invalid(format!("broken symlink: {}", path.display())))?;
            if !target.starts_with(canon_root) {
                return Err(ApiError::invalid(format!(
                    "symlink {} leads outside the uploaded directory (to {})",
                    path.display(),
                    target.display()
                )));
            }
            std::fs::metadata(&path)
                .map_err(|e| ApiError::invalid(format!("cannot read {}: {e}", path.display())))?
        } else {
            lmeta
        };
        if meta.is_dir() {
            walk(canon_root, &path, &name, visited, out)?;
        } else if meta.is_file() {
            check_readable(&path)?;
            let (size, mtime_ns) = identity(&meta);
            out.push(LocalFile {
                name,
                path,
                size,
                mtime_ns,
            });
        }
        // Sockets, FIFOs and devices are not data files: skipped.
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use dataerai_proto::ErrorCode;
    use std::os::unix::fs::symlink;

    #[test]
    fn tree_is_listed_sorted_with_relative_names() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("run");
        std::fs::create_dir_all(root.join("b/deep")).unwrap();
        std::fs::create_dir_all(root.join("empty")).unwrap();
        std::fs::write(root.join("z.txt"), b"z").unwrap();
        std::fs::write(root.join("b/deep/x.bin"), b"xx").unwrap();
        std::fs::write(root.join("a.txt"), b"a").unwrap();
        symlink("../a.txt", root.join("b/link-to-a")).unwrap();
        symlink("../../b", root.join("b/deep/loop")).unwrap();
        let names: Vec<_> = scan(&root).unwrap().into_iter().map(|f| f.name).collect();
        assert_eq!(names, vec!["a.txt", "b/deep/x.bin", "b/link-to-a", "z.txt"]);
        let one = scan(&root.join("z.txt")).unwrap();
        assert_eq!(one[0].name, "z.txt");
        assert_eq!(one[0].size, 1);
    }

    #[test]
    fn escapes_and_empty_dirs_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tmp.path().join("secret");
        std::fs::write(&outside, b"s").unwrap();
        let root = tmp.path().join("run");
        std::fs::create_dir_all(&root).unwrap();
        assert_eq!(scan(&root).unwrap_err().code, ErrorCode::InvalidInput);
        std::fs::write(root.join("ok"), b"o").unwrap();
        symlink(&outside, root.join("leak")).unwrap();
        let e = scan(&root).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidInput);
        assert!(e.message.contains("outside"), "{}", e.message);
        std::fs::remove_file(root.join("leak")).unwrap();
        symlink("nowhere", root.join("broken")).unwrap();
        assert!(scan(&root).unwrap_err().message.contains("broken"));
        assert_eq!(
            scan(&tmp.path().join("missing")).unwrap_err().code,
            ErrorCode::InvalidInput
        );
    }
}
