//! Provenance export on the user's machine: an asset's lineage written as a
//! PROV-JSON file (`asset.provenance`), and an RO-Crate folder
//! (`export.ro_crate`): the server builds `ro-crate-metadata.json`, this
//! module checks the destination, makes the folders the metadata names,
//! writes the metadata and prepares one download per asset into its folder
//! (the daemon runs them through the download engine, so integrity checks,
//! the journal and resume apply as for any download).

use std::path::{Component, Path, PathBuf};

use dataerai_proto::{ApiError, ErrorCode};
use dataerai_transfer::download;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::service::{DownloadParams, Result, Service};

/// The formats `asset.provenance` writes.
pub const PROVENANCE_FORMATS: &[&str] = &["prov-json"];
/// The metadata file of every crate.
pub const CRATE_METADATA: &str = "ro-crate-metadata.json";

/// `asset.provenance`: an asset's lineage as PROV-JSON.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProvenanceParams {
    pub asset_id: String,
    /// Where to write the document; without it the document is the answer.
    pub path: Option<String>,
    /// `prov-json` (the default and the only one).
    pub format: Option<String>,
    /// `both` (default), `up` or `down`.
    pub direction: Option<String>,
    /// 1 to 20 (default 20).
    pub depth: Option<u32>,
}

/// `export.ro_crate`: a collection tree or a search as an RO-Crate folder.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoCrateParams {
    pub dest_dir: String,
    pub collection_id: Option<String>,
    pub query: Option<String>,
    /// Download every file into the crate (default `true`); otherwise the
    /// crate is metadata only and names each file by its download URL.
    pub include_data: Option<bool>,
    /// Downloads running at once, 1 to 64 (default 4).
    pub concurrency: Option<i64>,
}

/// A written crate and the downloads that fill it.
pub struct PreparedCrate {
    pub dest_dir: PathBuf,
    pub metadata_path: PathBuf,
    pub asset_count: usize,
    pub file_count: usize,
    pub bytes_total: u64,
    /// One per asset with content (when data is included), with its asset id.
    pub downloads: Vec<(String, download::DownloadSpec)>,
    pub concurrency: usize,
}

fn count(doc: &Value, key: &str) -> usize {
    doc.get(key)
        .and_then(Value::as_object)
        .map_or(0, |m| m.len())
}

/// Write `bytes` to `path` through a temporary file next to it, so a reader
/// never sees half a document.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !parent.is_dir() {
        return Err(ApiError::invalid(format!(
            "cannot write {}: the folder {} does not exist",
            path.display(),
            parent.display()
        )));
    }
    let name = path
        .file_name()
        .ok_or_else(|| ApiError::invalid(format!("{} names no file", path.display())))?;
    let tmp = parent.join(format!(
        ".{}.partial-{}",
        name.to_string_lossy(),
        uuid::Uuid::new_v4()
    ));
    let written = std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(ApiError::invalid(format!(
            "cannot write {}: {e}",
            path.display()
        )));
    }
    Ok(())
}

/// A folder the metadata names, as a safe relative path (no `..`, not
/// absolute, not a URL).
fn crate_folder(id: &str) -> Option<PathBuf> {
    if id == "./" || id.contains("://") || !id.ends_with('/') {
        return None;
    }
    let p = Path::new(id);
    p.components()
        .all(|c| matches!(c, Component::Normal(_)))
        .then(|| p.to_path_buf())
}

/// The root identifier of a crate's metadata (what makes two exports "the same").
fn root_identifier(doc: &Value) -> Option<&str> {
    doc["@graph"]
        .as_array()?
        .iter()
        .find(|e| e["@id"] == "./")?["identifier"]
        .as_str()
}

/// A non-empty `dest` may only be a crate of the same export (a re-run
/// completes or refreshes it); anything else is `ERR_FILE_EXISTS`.
fn check_destination(dest: &Path, doc: &Value) -> Result<()> {
    let empty = match std::fs::read_dir(dest) {
        Ok(mut entries) => entries.next().is_none(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
        Err(e) => {
            return Err(ApiError::invalid(format!(
                "cannot read {}: {e}",
                dest.display()
            )))
        }
    };
    if empty {
        return Ok(());
    }
    let previous = std::fs::read(dest.join(CRATE_METADATA))
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok());
    let same = previous
        .as_ref()
        .and_then(root_identifier)
        .is_some_and(|id| Some(id) == root_identifier(doc));
    if same {
        return Ok(());
    }
    Err(ApiError::new(
        ErrorCode::FileExists,
        format!(
            "{} is not empty and is not a crate of the same export; nothing was written. \
             Export into an empty (or new) folder",
            dest.display()
        ),
    ))
}

impl Service {
    /// `asset.provenance`: the PROV-JSON document, written to `path` when
    /// given (then the answer says where and how much).
    pub async fn provenance(&self, p: ProvenanceParams) -> Result<Value> {
        if p.asset_id.trim().is_empty() {
            return Err(ApiError::invalid("asset_id must not be empty"));
        }
        let format = p.format.as_deref().unwrap_or("prov-json");
        if !PROVENANCE_FORMATS.contains(&format) {
            return Err(ApiError::invalid(format!(
                "format {format:?} is not supported; accepted: {}",
                PROVENANCE_FORMATS.join(", ")
            )));
        }
        let doc = self
            .client()?
            .asset_provenance(&p.asset_id, p.direction.as_deref(), p.depth)
            .await?;
        let Some(path) = p.path else {
            return Ok(json!({ "document": doc }));
        };
        if path.trim().is_empty() {
            return Err(ApiError::invalid("path must not be empty"));
        }
        let path = PathBuf::from(path);
        if path.is_dir() {
            return Err(ApiError::invalid(format!(
                "{} is a folder; give a file name",
                path.display()
            )));
        }
        let mut bytes = serde_json::to_vec_pretty(&doc)
            .map_err(|e| ApiError::internal(format!("encoding the document: {e}")))?;
        bytes.push(b'\n');
        write_atomically(&path, &bytes)?;
        let path = path.canonicalize().unwrap_or(path);
        Ok(json!({
            "path": path.to_string_lossy(),
            "format": format,
            "asset_id": p.asset_id,
            "entity_count": count(&doc, "entity"),
            "derivation_count": count(&doc, "wasDerivedFrom"),
            "agent_count": count(&doc, "agent"),
        }))
    }

    /// `export.ro_crate` up to the downloads: the metadata from the server,
    /// the destination checked, the folders made, the metadata written, one
    /// download prepared per asset with content (when data is included).
    pub async fn prepare_ro_crate(&self, p: RoCrateParams) -> Result<PreparedCrate> {
        let (collection_id, query) = match (&p.collection_id, &p.query) {
            (Some(c), None) if !c.trim().is_empty() => (Some(c.as_str()), None),
            (None, Some(q)) => (None, Some(q.as_str())),
            _ => {
                return Err(ApiError::invalid(
                    "give exactly one of collection_id and query",
                ))
            }
        };
        let concurrency = match p.concurrency {
            None => 4,
            Some(c) if (1..=64).contains(&c) => c.unsigned_abs() as usize,
            Some(c) => {
                return Err(ApiError::invalid(format!(
                    "concurrency must be between 1 and 64, got {c}"
                )))
            }
        };
        if p.dest_dir.trim().is_empty() {
            return Err(ApiError::invalid("dest_dir must not be empty"));
        }
        let include_data = p.include_data.unwrap_or(true);
        let dest = PathBuf::from(&p.dest_dir);
        if dest.exists() && !dest.is_dir() {
            return Err(ApiError::invalid(format!(
                "destination is not a directory: {}",
                dest.display()
            )));
        }
        let doc = self
            .client()?
            .ro_crate_metadata(collection_id, query, include_data)
            .await?;
        check_destination(&dest, &doc)?;
        let dest = download::prepare_dest_dir(&dest)?;
        let graph = doc["@graph"].as_array().cloned().unwrap_or_default();
        let mut downloads = Vec::new();
        let (mut asset_count, mut file_count, mut bytes_total) = (0, 0, 0u64);
        let mut wanted: Vec<(String, String, PathBuf)> = Vec::new();
        for e in &graph {
            if e["@type"] == "File" {
                file_count += 1;
                bytes_total += e["contentSize"]
                    .as_str()
                    .and_then(|s| s.parse::<u64>().ok())
                    .unwrap_or(0);
            }
            if e["@type"] != "Dataset" {
                continue;
            }
            let Some(folder) = e["@id"].as_str().and_then(crate_folder) else {
                continue;
            };
            let dir = dest.join(&folder);
            std::fs::create_dir_all(&dir).map_err(|err| {
                ApiError::invalid(format!("cannot create {}: {err}", dir.display()))
            })?;
            // Asset folders name their asset and its content version.
            if let (Some(asset), true) = (e["identifier"].as_str(), e.get("url").is_some()) {
                asset_count += 1;
                if let (Some(version), true) = (e["version"].as_str(), include_data) {
                    wanted.push((asset.to_string(), version.to_string(), dir));
                }
            }
        }
        let mut bytes = serde_json::to_vec_pretty(&doc)
            .map_err(|e| ApiError::internal(format!("encoding the metadata: {e}")))?;
        bytes.push(b'\n');
        let metadata_path = dest.join(CRATE_METADATA);
        write_atomically(&metadata_path, &bytes)?;
        for (asset_id, content_id, dir) in wanted {
            let spec = self
                .prepare_download(DownloadParams {
                    asset_id: asset_id.clone(),
                    dest_dir: dir.to_string_lossy().into_owned(),
                    content_id: Some(content_id),
                    chunk_size_mb: None,
                    overwrite: false,
                    allow_hidden: false,
                    idempotency_key: None,
                })
                .await?;
            downloads.push((asset_id, spec));
        }
        Ok(PreparedCrate {
            dest_dir: dest,
            metadata_path,
            asset_count,
            file_count,
            bytes_total,
            downloads,
            concurrency,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crate_doc(identifier: &str) -> Value {
        json!({"@graph": [{"@id": "./", "@type": "Dataset", "identifier": identifier}]})
    }

    #[test]
    fn only_safe_relative_folders_are_made() {
        assert_eq!(
            crate_folder("raw/day_1/"),
            Some(PathBuf::from("raw/day_1/"))
        );
        for bad in [
            "./",
            "../x/",
            "/etc/",
            "a/../../b/",
            "https://h/x/",
            "file.bin",
        ] {
            assert_eq!(crate_folder(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_non_empty_destination_must_be_a_crate_of_the_same_export() {
        let dir = tempfile::tempdir().unwrap();
        let doc = crate_doc("https://h/api/v1/ro-crate?collection_id=c");
        check_destination(&dir.path().join("new"), &doc).unwrap();
        check_destination(dir.path(), &doc).unwrap();
        std::fs::write(dir.path().join("other.txt"), b"x").unwrap();
        let e = check_destination(dir.path(), &doc).unwrap_err();
        assert_eq!(e.code, ErrorCode::FileExists);
        std::fs::write(
            dir.path().join(CRATE_METADATA),
            crate_doc("https://h/api/v1/ro-crate?q=x").to_string(),
        )
        .unwrap();
        assert_eq!(
            check_destination(dir.path(), &doc).unwrap_err().code,
            ErrorCode::FileExists
        );
        std::fs::write(dir.path().join(CRATE_METADATA), doc.to_string()).unwrap();
        check_destination(dir.path(), &doc).unwrap();
    }
}
