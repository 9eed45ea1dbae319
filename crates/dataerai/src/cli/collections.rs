//! `dataerai collection …`: collections as a tree — create, list (or draw
//! with `--tree`), resolve a path, rename, move (a collection or an asset),
//! delete when empty, and download a collection into a folder tree.

use std::collections::HashMap;
use std::path::PathBuf;

use clap::Subcommand;
use dataerai_proto::api::Collection;
use dataerai_proto::ApiError;
use serde_json::json;

use super::output::{print_json, print_result};
use super::Result;
use crate::service::{
    CollectionIdParams, CreateCollectionParams, DownloadPlanParams, EnsurePathParams,
    ListCollectionsParams, MoveAssetParams, MoveCollectionParams, RenameCollectionParams, Service,
};

/// Collections per request when listing them all.
const PAGE: u64 = 1000;

#[derive(Subcommand, Debug)]
pub enum CollectionCommand {
    /// Create a collection (under the project's root collection unless --parent).
    Create {
        project_id: String,
        name: String,
        /// The parent collection (default: the project's root collection).
        #[arg(long)]
        parent: Option<String>,
        #[arg(long)]
        description: Option<String>,
    },
    /// List a project's collections (or those directly under --parent); --tree
    /// draws them as a tree with their asset counts.
    List {
        project_id: String,
        #[arg(long)]
        parent: Option<String>,
        #[arg(long)]
        tree: bool,
    },
    /// Resolve a collection path ("Project/raw/2026-12-06"), creating the
    /// collections that are missing; prints the ids.
    Ensure {
        path: String,
        /// Create the project too when you belong to none of that name.
        #[arg(long)]
        create_project: bool,
    },
    /// Move a collection under another parent (COLLECTION_ID --to PARENT_ID), or an
    /// asset into another collection of its project (--asset ASSET_ID --to COLLECTION_ID).
    Move {
        #[arg(required_unless_present = "asset", conflicts_with = "asset")]
        collection_id: Option<String>,
        #[arg(long)]
        asset: Option<String>,
        /// The new parent collection (or, with --asset, the asset's collection).
        #[arg(long)]
        to: String,
    },
    /// Rename a collection (not a project's root collection).
    Rename { collection_id: String, name: String },
    /// Delete an empty collection.
    Rm { collection_id: String },
    /// Download every asset of a collection and its sub-collections into DIR,
    /// as a folder tree: DIR/<collection>/<sub-collection>/<asset title>/<files>.
    Download { collection_id: String, dir: PathBuf },
}

pub async fn run(svc: &Service, as_json: bool, cmd: CollectionCommand) -> Result<()> {
    match cmd {
        CollectionCommand::Create {
            project_id,
            name,
            parent,
            description,
        } => {
            let c = svc
                .create_collection(CreateCollectionParams {
                    project_id,
                    name,
                    parent_id: parent,
                    description,
                })
                .await?;
            print_result(as_json, &c, || {
                format!("Created collection {} ({})", c.name, c.collection_id)
            });
        }
        CollectionCommand::List {
            project_id,
            parent,
            tree,
        } => list(svc, as_json, project_id, parent, tree).await?,
        CollectionCommand::Ensure {
            path,
            create_project,
        } => {
            let p = svc
                .ensure_collection_path(EnsurePathParams {
                    path,
                    create_project,
                })
                .await?;
            if as_json {
                print_json(&p);
            } else {
                crate::outln!("{}", p.path);
                crate::outln!("project:    {}  ({})", p.project_id, p.project_name);
                crate::outln!("collection: {}", p.collection_id);
            }
        }
        CollectionCommand::Move {
            collection_id,
            asset,
            to,
        } => match (collection_id, asset) {
            (None, Some(asset_id)) => {
                let a = svc
                    .move_asset(MoveAssetParams {
                        asset_id,
                        collection_id: to.clone(),
                    })
                    .await?;
                print_result(as_json, &a, || {
                    format!(
                        "Moved asset {} ({}) into collection {to}",
                        a.title, a.asset_id
                    )
                });
            }
            (Some(collection_id), None) => {
                let c = svc
                    .move_collection(MoveCollectionParams {
                        collection_id,
                        parent_id: to,
                    })
                    .await?;
                print_result(as_json, &c, || {
                    format!(
                        "Moved collection {} ({}) under {}",
                        c.name,
                        c.collection_id,
                        c.parent_id.as_deref().unwrap_or("")
                    )
                });
            }
            _ => {
                return Err(ApiError::invalid(
                    "give a COLLECTION_ID or --asset ASSET_ID (one of them) and --to",
                ))
            }
        },
        CollectionCommand::Rename {
            collection_id,
            name,
        } => {
            let c = svc
                .rename_collection(RenameCollectionParams {
                    collection_id,
                    name,
                })
                .await?;
            print_result(as_json, &c, || {
                format!("Renamed collection {} to {}", c.collection_id, c.name)
            });
        }
        CollectionCommand::Rm { collection_id } => {
            svc.delete_collection(CollectionIdParams {
                collection_id: collection_id.clone(),
            })
            .await?;
            if as_json {
                print_json(&json!({"deleted": collection_id}));
            } else {
                crate::outln!("Deleted collection {collection_id}");
            }
        }
        CollectionCommand::Download { collection_id, dir } => {
            download(svc, as_json, collection_id, dir).await?
        }
    }
    Ok(())
}

async fn all_collections(
    svc: &Service,
    project_id: &str,
    parent: Option<&str>,
) -> Result<Vec<Collection>> {
    let mut items = Vec::new();
    loop {
        let page = svc
            .list_collections(ListCollectionsParams {
                project_id: project_id.to_string(),
                parent_id: parent.map(str::to_string),
                limit: Some(PAGE),
                offset: Some(items.len() as u64),
            })
            .await?;
        let got = page.items.len();
        items.extend(page.items);
        if got == 0 || items.len() as u64 >= page.total {
            return Ok(items);
        }
    }
}

async fn list(
    svc: &Service,
    as_json: bool,
    project_id: String,
    parent: Option<String>,
    tree: bool,
) -> Result<()> {
    if !tree {
        let items = all_collections(svc, &project_id, parent.as_deref()).await?;
        if as_json {
            print_json(&json!({"items": items, "total": items.len()}));
        } else {
            // A whole project: each collection by its path from the root.
            let by_id: HashMap<&str, &Collection> = items
                .iter()
                .map(|c| (c.collection_id.as_str(), c))
                .collect();
            for c in &items {
                let name = match parent {
                    Some(_) => c.name.clone(),
                    None => path_of(c, &by_id),
                };
                crate::outln!("{}  {name}  ({})", c.collection_id, counts(c));
            }
            crate::outln!("({} collections)", items.len());
        }
        return Ok(());
    }
    // The whole project, drawn from the root (or from --parent).
    let items = all_collections(svc, &project_id, None).await?;
    let top = match &parent {
        Some(p) => items.iter().find(|c| &c.collection_id == p),
        None => items.iter().find(|c| c.parent_id.is_none()),
    };
    let Some(top) = top else {
        return Err(ApiError::not_found(format!(
            "collection {} not found in project {project_id}",
            parent.as_deref().unwrap_or("(root)")
        )));
    };
    if as_json {
        print_json(&subtree_json(top, &children_of(&items)));
    } else {
        for line in draw(top, &items) {
            crate::outln!("{line}");
        }
    }
    Ok(())
}

/// `root/…/name` of a collection among `by_id` (a project's collections).
fn path_of(c: &Collection, by_id: &HashMap<&str, &Collection>) -> String {
    let mut names = vec![c.name.as_str()];
    let mut at = c;
    while let Some(parent) = at.parent_id.as_deref().and_then(|p| by_id.get(p)) {
        if names.len() > by_id.len() {
            break; // never loops: the server keeps the tree a tree
        }
        names.push(parent.name.as_str());
        at = parent;
    }
    names.reverse();
    names.join("/")
}

fn counts(c: &Collection) -> String {
    let assets = match c.asset_count {
        1 => "1 asset".to_string(),
        n => format!("{n} assets"),
    };
    match c.child_count {
        0 => assets,
        1 => format!("{assets}, 1 collection"),
        n => format!("{assets}, {n} collections"),
    }
}

/// Children of each collection, by name.
fn children_of(items: &[Collection]) -> HashMap<&str, Vec<&Collection>> {
    let mut children: HashMap<&str, Vec<&Collection>> = HashMap::new();
    for c in items {
        if let Some(p) = &c.parent_id {
            children.entry(p.as_str()).or_default().push(c);
        }
    }
    for list in children.values_mut() {
        list.sort_by(|a, b| {
            a.name
                .cmp(&b.name)
                .then(a.collection_id.cmp(&b.collection_id))
        });
    }
    children
}

fn subtree_json(c: &Collection, children: &HashMap<&str, Vec<&Collection>>) -> serde_json::Value {
    let mut v = serde_json::to_value(c).unwrap_or_default();
    let kids: Vec<serde_json::Value> = children
        .get(c.collection_id.as_str())
        .map(|k| k.iter().map(|k| subtree_json(k, children)).collect())
        .unwrap_or_default();
    v["children"] = serde_json::Value::Array(kids);
    v
}

/// The tree under `top`, one line per collection, drawn with box-drawing
/// characters like `dataerai lineage`.
fn draw(top: &Collection, items: &[Collection]) -> Vec<String> {
    let children = children_of(items);
    let mut lines = vec![format!(
        "{}  ({})  {}",
        top.name,
        counts(top),
        top.collection_id
    )];
    walk(&children, &top.collection_id, "", &mut lines);
    lines
}

fn walk(
    children: &HashMap<&str, Vec<&Collection>>,
    id: &str,
    prefix: &str,
    lines: &mut Vec<String>,
) {
    let Some(kids) = children.get(id) else {
        return;
    };
    for (i, c) in kids.iter().enumerate() {
        let last = i + 1 == kids.len();
        let branch = if last { "└── " } else { "├── " };
        lines.push(format!(
            "{prefix}{branch}{}  ({})  {}",
            c.name,
            counts(c),
            c.collection_id
        ));
        let deeper = format!("{prefix}{}", if last { "    " } else { "│   " });
        walk(children, &c.collection_id, &deeper, lines);
    }
}

/// Plan the download in-process (the walk of `service/collections.rs`),
/// then hand each asset to the daemon like `dataerai download`. Every asset
/// is tried; the ones that failed are named at the end.
async fn download(svc: &Service, as_json: bool, collection_id: String, dir: PathBuf) -> Result<()> {
    let dest_dir = super::transfer::absolute(&dir);
    let plan = svc
        .plan_collection_download(DownloadPlanParams {
            collection_id,
            dest_dir,
        })
        .await?;
    let mut done = Vec::new();
    let mut failed = Vec::new();
    for item in &plan.items {
        if !item.has_content {
            done.push(json!({"asset_id": item.asset_id, "title": item.title,
                             "local_path": item.local_path, "files": []}));
            continue;
        }
        let params = json!({"asset_id": item.asset_id, "dest_dir": item.local_path});
        let label = format!("download {}", item.title);
        match super::transfer::run_in_daemon("asset.download", params, &label).await {
            Ok(r) => {
                if !as_json {
                    let files = r["files"].as_array().map_or(0, Vec::len);
                    let plural = if files == 1 { "" } else { "s" };
                    crate::outln!("{}  ({files} file{plural})", item.local_path);
                }
                done.push(json!({"asset_id": item.asset_id, "title": item.title,
                                 "local_path": item.local_path, "files": r["files"]}));
            }
            Err(e) => {
                eprintln!("{}: {} ({})", item.title, e.message, e.code.as_str());
                failed.push((item, e));
            }
        }
    }
    if let Some((_, first)) = failed.first() {
        let names: Vec<String> = failed
            .iter()
            .map(|(i, e)| format!("{} ({}: {})", i.title, i.asset_id, e.code.as_str()))
            .collect();
        return Err(ApiError::new(
            first.code,
            format!(
                "{} of {} assets could not be downloaded: {}; the others are in {} (run the command again to retry only what is missing)",
                failed.len(),
                plan.items.len(),
                names.join(", "),
                plan.local_path
            ),
        ));
    }
    if as_json {
        print_json(
            &json!({"collection_id": plan.collection_id, "local_path": plan.local_path,
                           "assets": done}),
        );
    } else {
        let n = plan.items.len();
        let plural = if n == 1 { "" } else { "s" };
        crate::outln!("({n} asset{plural} in {})", plan.local_path);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(id: &str, name: &str, parent: Option<&str>, assets: u64) -> Collection {
        Collection {
            collection_id: id.into(),
            project_id: "p".into(),
            name: name.into(),
            parent_id: parent.map(str::to_string),
            description: String::new(),
            created_at: chrono::Utc::now(),
            asset_count: assets,
            child_count: 0,
        }
    }

    #[test]
    fn draws_the_tree_by_name() {
        let items = vec![
            col("r", "abTEM", None, 1),
            col("t", "tutorials", Some("n"), 3),
            col("n", "notebook runs", Some("r"), 0),
            col("a", "analysis", Some("r"), 2),
        ];
        assert_eq!(
            draw(&items[0], &items),
            [
                "abTEM  (1 asset)  r",
                "├── analysis  (2 assets)  a",
                "└── notebook runs  (0 assets)  n",
                "    └── tutorials  (3 assets)  t",
            ]
        );
    }
}
