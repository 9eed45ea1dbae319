//! Which file names of one content version can live side by side in a
//! directory tree. A pure check, so whoever writes or accepts a version's
//! files (the daemon planning a download; a server accepting an upload) gives
//! the same answer.
//!
//! Names are `/`-separated relative paths. They are compared after
//! normalisation (empty and `.` components dropped, so `a//b` and `./a/b` are
//! both `a/b`). Two names collide when
//! - they normalise to the same path;
//! - one is a file and also a directory of the other (`a` and `a/b`);
//! - one is the other plus [`LEGACY_PARTIAL_SUFFIX`] (`x` and
//!   `x.dataerai-partial`: the partial-file name of older `dataerai`
//!   releases, which a download of such a version would mix up);
//!
//! and a name is reserved when a component starts with [`PARTIAL_PREFIX`],
//! the prefix of the daemon's temporary download files.

use std::collections::{HashMap, HashSet};
use std::fmt;

/// Start of the name of a file being downloaded (`.dataerai-partial-<random>`),
/// next to the file it becomes. No version may hold such a name, so a
/// temporary file never shares its name with one of the version's files.
pub const PARTIAL_PREFIX: &str = ".dataerai-partial-";

/// What older releases appended to a file's name while downloading it.
pub const LEGACY_PARTIAL_SUFFIX: &str = ".dataerai-partial";

/// Two names of a version that cannot both be written, or a reserved one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameCollision {
    pub first: String,
    /// `None` when `first` alone is refused (a reserved name).
    pub second: Option<String>,
    pub why: &'static str,
}

impl fmt::Display for NameCollision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.second {
            Some(second) => write!(f, "{:?} and {:?} ({})", self.first, second, self.why),
            None => write!(f, "{:?} ({})", self.first, self.why),
        }
    }
}

/// `name` with empty and `.` components dropped.
pub fn normalize(name: &str) -> String {
    name.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect::<Vec<_>>()
        .join("/")
}

/// Every collision among `names` (in the order found; empty when they can all
/// be written). Runs in time linear in the total length of the names.
pub fn collisions<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<NameCollision> {
    let mut found = Vec::new();
    // Normalised path → the name as given, for the first of each.
    let mut files: HashMap<String, &str> = HashMap::new();
    let mut order = Vec::new();
    for name in names {
        let norm = normalize(name);
        if norm.split('/').any(|c| c.starts_with(PARTIAL_PREFIX)) {
            found.push(NameCollision {
                first: name.to_string(),
                second: None,
                why:
                    "names starting with .dataerai-partial- are reserved for downloads in progress",
            });
        }
        match files.get(norm.as_str()) {
            Some(first) => found.push(NameCollision {
                first: first.to_string(),
                second: Some(name.to_string()),
                why: "the same path twice",
            }),
            None => {
                files.insert(norm.clone(), name);
                order.push(norm);
            }
        }
    }
    // Every directory some file needs, with the first file that needs it.
    let mut dirs: HashMap<&str, &str> = HashMap::new();
    for norm in &order {
        let mut end = 0;
        while let Some(i) = norm[end..].find('/') {
            end += i;
            dirs.entry(&norm[..end]).or_insert(files[norm.as_str()]);
            end += 1;
        }
    }
    let mut reported = HashSet::new();
    for norm in &order {
        let name = files[norm.as_str()];
        if let Some(inside) = dirs.get(norm.as_str()) {
            if reported.insert(norm.as_str()) {
                found.push(NameCollision {
                    first: name.to_string(),
                    second: Some(inside.to_string()),
                    why: "a file and a directory of the same name",
                });
            }
        }
        if let Some(base) = norm.strip_suffix(LEGACY_PARTIAL_SUFFIX) {
            if let Some(other) = files.get(base) {
                found.push(NameCollision {
                    first: other.to_string(),
                    second: Some(name.to_string()),
                    why: "a file and the partial-download name older releases gave it",
                });
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(names: &[&str]) -> Vec<(String, Option<String>)> {
        collisions(names.iter().copied())
            .into_iter()
            .map(|c| (c.first, c.second))
            .collect()
    }

    #[test]
    fn names_that_can_live_together_pass() {
        for ok in [
            &["a", "b", "c/d", "c/e", "c/f/g"][..],
            &["x", "x.dataerai-partial.txt", "y.dataerai-partial-ish"],
            &["ab", "a/b", "a.b"],
            &[],
        ] {
            assert_eq!(collisions(ok.iter().copied()), [], "{ok:?}");
        }
    }

    #[test]
    fn each_kind_of_collision_is_named() {
        let both = |a: &str, b: &str| (a.to_string(), Some(b.to_string()));
        // Either order.
        assert_eq!(
            pairs(&["x.dataerai-partial", "x"]),
            [both("x", "x.dataerai-partial")]
        );
        assert_eq!(
            pairs(&["d/x", "d/x.dataerai-partial"]),
            [both("d/x", "d/x.dataerai-partial")]
        );
        assert_eq!(pairs(&["a/b", "a"]), [both("a", "a/b")]);
        assert_eq!(pairs(&["a", "a/b/c"]), [both("a", "a/b/c")]);
        assert_eq!(pairs(&["a/b", "a/b/c"]), [both("a/b", "a/b/c")]);
        assert_eq!(pairs(&["a//b", "./a/b"]), [both("a//b", "./a/b")]);
        assert_eq!(
            pairs(&["d/.dataerai-partial-123"]),
            [("d/.dataerai-partial-123".to_string(), None)]
        );
        let c = &collisions(["a", "a/b"])[0];
        assert_eq!(
            c.to_string(),
            "\"a\" and \"a/b\" (a file and a directory of the same name)"
        );
    }

    #[test]
    fn normalisation_drops_empty_and_dot_components() {
        assert_eq!(normalize("./a//b/./c/"), "a/b/c");
    }
}
