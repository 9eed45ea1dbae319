//! Collections as a tree, for the daemon and the CLI: create, list, rename,
//! move, delete, resolve a path, move an asset, and the walk that plans a
//! collection's download (a folder per collection, one per asset).

use std::collections::HashSet;
use std::path::Path;

use dataerai_client::ApiClient;
use dataerai_proto::api::{
    Asset, Collection, CollectionPath, CreateCollection, EnsureCollectionPath, Page,
    UpdateCollection,
};
use dataerai_proto::ApiError;
use serde::{Deserialize, Serialize};

use super::{require, Result, Service};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateCollectionParams {
    pub project_id: String,
    pub name: String,
    pub parent_id: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListCollectionsParams {
    pub project_id: String,
    /// Only the collections directly under this one.
    pub parent_id: Option<String>,
    pub limit: Option<u64>,
    pub offset: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenameCollectionParams {
    pub collection_id: String,
    pub name: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MoveCollectionParams {
    pub collection_id: String,
    pub parent_id: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollectionIdParams {
    pub collection_id: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnsurePathParams {
    pub path: String,
    #[serde(default)]
    pub create_project: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MoveAssetParams {
    pub asset_id: String,
    pub collection_id: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DownloadPlanParams {
    pub collection_id: String,
    pub dest_dir: String,
}

/// What downloading a collection does: one download per asset, each into
/// its own folder of a tree that mirrors the collections.
#[derive(Debug, Clone, Serialize)]
pub struct DownloadPlan {
    pub collection_id: String,
    /// The folder of the collection itself (`dest_dir/<collection name>`).
    pub local_path: String,
    pub items: Vec<PlannedAsset>,
}

/// One asset of a [`DownloadPlan`].
#[derive(Debug, Clone, Serialize)]
pub struct PlannedAsset {
    pub asset_id: String,
    pub title: String,
    pub collection_id: String,
    /// The asset's folder: its files go below it.
    pub local_path: String,
    /// `false`: the asset has no complete version, nothing to download.
    pub has_content: bool,
}

/// Deepest collection tree a download walks (a guard against cycles the
/// server never allows anyway).
const MAX_DEPTH: usize = 64;
/// Longest folder name made from a title or collection name, in bytes.
const MAX_NAME_BYTES: usize = 200;

/// A title or collection name as one folder name: path separators, NUL and
/// control characters become `_`, surrounding spaces and dots go (no hidden
/// folders, no `..`), long names are cut at a character boundary; empty → `_`.
pub fn folder_name(name: &str) -> String {
    let replaced: String = name
        .chars()
        .map(|c| {
            if c == '/' || c == '\\' || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect();
    let trimmed = replaced.trim_matches(|c: char| c.is_whitespace() || c == '.');
    let mut out = String::new();
    for c in trimmed.chars() {
        if out.len() + c.len_utf8() > MAX_NAME_BYTES {
            break;
        }
        out.push(c);
    }
    let out = out.trim_end().to_string();
    if out.is_empty() {
        "_".to_string()
    } else {
        out
    }
}

/// A folder name not yet taken in one folder: a clash gets ` (<first 8 of
/// the id>)` appended. Names compare case-insensitively, so the tree is the
/// same on case-insensitive file systems.
fn unique_name(taken: &mut HashSet<String>, name: String, id: &str) -> String {
    let name = if taken.contains(&name.to_lowercase()) {
        let short: String = id.chars().take(8).collect();
        format!("{name} ({short})")
    } else {
        name
    };
    taken.insert(name.to_lowercase());
    name
}

/// Every page of a listing.
async fn all_pages<T, F, Fut>(mut page: F) -> Result<Vec<T>>
where
    F: FnMut(u64) -> Fut,
    Fut: std::future::Future<Output = Result<Page<T>>>,
{
    let mut items = Vec::new();
    loop {
        let p = page(items.len() as u64).await?;
        let got = p.items.len();
        items.extend(p.items);
        if got == 0 || items.len() as u64 >= p.total {
            return Ok(items);
        }
    }
}

impl Service {
    pub async fn create_collection(&self, p: CreateCollectionParams) -> Result<Collection> {
        require("project_id", &p.project_id)?;
        require("name", &p.name)?;
        let body = CreateCollection {
            name: p.name,
            parent_id: p.parent_id,
            description: p.description,
        };
        self.client()?.create_collection(&p.project_id, &body).await
    }

    pub async fn list_collections(&self, p: ListCollectionsParams) -> Result<Page<Collection>> {
        require("project_id", &p.project_id)?;
        self.client()?
            .list_collections(&p.project_id, p.parent_id.as_deref(), p.limit, p.offset)
            .await
    }

    pub async fn rename_collection(&self, p: RenameCollectionParams) -> Result<Collection> {
        require("collection_id", &p.collection_id)?;
        require("name", &p.name)?;
        let body = UpdateCollection {
            name: Some(p.name),
            parent_id: None,
        };
        self.client()?
            .update_collection(&p.collection_id, &body)
            .await
    }

    pub async fn move_collection(&self, p: MoveCollectionParams) -> Result<Collection> {
        require("collection_id", &p.collection_id)?;
        require("parent_id", &p.parent_id)?;
        let body = UpdateCollection {
            name: None,
            parent_id: Some(p.parent_id),
        };
        self.client()?
            .update_collection(&p.collection_id, &body)
            .await
    }

    pub async fn delete_collection(&self, p: CollectionIdParams) -> Result<()> {
        require("collection_id", &p.collection_id)?;
        self.client()?.delete_collection(&p.collection_id).await
    }

    pub async fn ensure_collection_path(&self, p: EnsurePathParams) -> Result<CollectionPath> {
        // Checked here too, so a bad path is reported before the login is.
        dataerai_proto::api::collection_path_segments(&p.path).map_err(ApiError::invalid)?;
        self.client()?
            .ensure_collection_path(&EnsureCollectionPath {
                path: p.path,
                create_project: p.create_project,
            })
            .await
    }

    pub async fn move_asset(&self, p: MoveAssetParams) -> Result<Asset> {
        require("asset_id", &p.asset_id)?;
        require("collection_id", &p.collection_id)?;
        self.client()?
            .move_asset(&p.asset_id, &p.collection_id)
            .await
    }

    /// Walk a collection and its descendants: where each asset goes below
    /// `dest_dir/<collection name>/`. Sub-collections are folders named after
    /// them; an asset's files go under `<collection folder>/<asset title>/`.
    pub async fn plan_collection_download(&self, p: DownloadPlanParams) -> Result<DownloadPlan> {
        require("collection_id", &p.collection_id)?;
        require("dest_dir", &p.dest_dir)?;
        let dest = Path::new(&p.dest_dir);
        if dest.is_relative() {
            return Err(ApiError::invalid(format!(
                "dest_dir must be an absolute path, got {:?}",
                p.dest_dir
            )));
        }
        let client = self.client()?;
        let top = client.get_collection(&p.collection_id).await?;
        let root = dest.join(folder_name(&top.name));
        let mut items = Vec::new();
        // Depth-first, children in the server's order (oldest first), so the plan is stable.
        let mut stack = vec![(top.collection_id.clone(), root.clone(), 0usize)];
        while let Some((id, folder, depth)) = stack.pop() {
            if depth > MAX_DEPTH {
                return Err(ApiError::invalid(format!(
                    "collection {} is nested deeper than {MAX_DEPTH} levels",
                    p.collection_id
                )));
            }
            let mut taken = HashSet::new();
            let children =
                all_pages(|offset| client.collection_children(&id, Some(1000), Some(offset)))
                    .await?;
            let mut sub = Vec::new();
            for c in children {
                let name = unique_name(&mut taken, folder_name(&c.name), &c.collection_id);
                sub.push((c.collection_id, folder.join(name), depth + 1));
            }
            for a in collection_assets(&client, &id).await? {
                let name = unique_name(&mut taken, folder_name(&a.title), &a.asset_id);
                items.push(PlannedAsset {
                    has_content: a.latest_content.is_some(),
                    asset_id: a.asset_id,
                    title: a.title,
                    collection_id: id.clone(),
                    local_path: path_string(&folder.join(name)),
                });
            }
            stack.extend(sub.into_iter().rev());
        }
        Ok(DownloadPlan {
            collection_id: top.collection_id,
            local_path: path_string(&root),
            items,
        })
    }
}

async fn collection_assets(client: &ApiClient, collection_id: &str) -> Result<Vec<Asset>> {
    all_pages(|offset| client.list_collection_assets(collection_id, Some(1000), Some(offset))).await
}

fn path_string(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_names_are_safe() {
        for (name, folder) in [
            ("scan 1", "scan 1"),
            ("a/b\\c", "a_b_c"),
            ("..", "_"),
            (" .hidden ", "hidden"),
            ("x\ny", "x_y"),
        ] {
            assert_eq!(folder_name(name), folder, "{name:?}");
        }
        assert_eq!(folder_name(&"é".repeat(300)).len(), 200);
    }

    #[test]
    fn clashes_get_the_id() {
        let mut taken = HashSet::new();
        assert_eq!(unique_name(&mut taken, "a".into(), "12345678-9"), "a");
        assert_eq!(
            unique_name(&mut taken, "A".into(), "abcdefgh-1"),
            "A (abcdefgh)"
        );
    }
}
