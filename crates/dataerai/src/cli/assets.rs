//! `dataerai metadata …`, `list assets`, `link` and `versions`: read and
//! change assets, their provenance and their content versions.

use clap::{Args, Subcommand};
use dataerai_proto::api::{Asset, OwnerType};
use dataerai_proto::ApiError;
use serde_json::{Map, Value};

use super::output::{fetch_pages, human_bytes, page_footer, print_json, print_result, PageArgs};
use super::{parse_optional_object, Result};
use crate::service::{
    AssetIdParams, ListAssetsParams, ListVersionsParams, RelationshipParams, Service,
    SetMetadataParams, VersionParams,
};

#[derive(Subcommand, Debug)]
pub enum MetadataCommand {
    /// Show an asset.
    Get { asset_id: String },
    /// Change fields; `--metadata`/`--set` are merged key by key (JSON null deletes a key).
    Set(SetArgs),
}

/// The descriptive fields of an asset, as `upload` and `metadata set` take them.
#[derive(Args, Debug)]
pub struct AssetFields {
    #[arg(long)]
    pub description: Option<String>,
    #[arg(long)]
    pub alias: Option<String>,
    /// What kind of record it is: raw_data, analysis, figure, … (free text,
    /// at most 64 characters; search it with `type:`).
    #[arg(long)]
    pub record_type: Option<String>,
    /// A tag (repeatable); the tags given replace the asset's tags.
    #[arg(long = "tag")]
    pub tags: Vec<String>,
    /// Metadata as a JSON object, merged key by key (JSON null deletes a key).
    #[arg(long)]
    pub metadata: Option<String>,
}

impl AssetFields {
    /// The tags to set: none given leaves them as they are.
    pub fn tags(&mut self) -> Option<Vec<String>> {
        Some(std::mem::take(&mut self.tags)).filter(|t| !t.is_empty())
    }

    /// `--metadata`, checked to be a JSON object.
    pub fn metadata(&self) -> Result<Option<Map<String, Value>>> {
        parse_optional_object("--metadata", &self.metadata)
    }
}

#[derive(Args, Debug)]
pub struct SetArgs {
    pub asset_id: String,
    #[arg(long)]
    pub title: Option<String>,
    #[command(flatten)]
    pub fields: AssetFields,
    /// One key: `key=VALUE`, VALUE parsed as JSON if it can be, else a string (repeatable).
    #[arg(long = "set")]
    pub set: Vec<String>,
}

#[derive(Args, Debug)]
pub struct LinkArgs {
    /// The dependent asset (e.g. the analysis result).
    pub from: String,
    /// The origin asset (e.g. the raw data).
    pub to: String,
    /// Relationship type, e.g. derived_from.
    #[arg(long = "type")]
    pub rel_type: String,
    #[arg(long)]
    pub analysis_mode: Option<String>,
    #[arg(long)]
    pub note: Option<String>,
    /// ISO-8601 time.
    #[arg(long)]
    pub time: Option<String>,
    /// Extra qualifiers as a JSON object.
    #[arg(long)]
    pub qualifiers: Option<String>,
}

pub async fn metadata(svc: &Service, cmd: MetadataCommand) -> Result<()> {
    match cmd {
        MetadataCommand::Get { asset_id } => {
            let asset = svc.get_metadata(AssetIdParams { asset_id }).await?;
            print_json(&asset);
            Ok(())
        }
        MetadataCommand::Set(mut a) => {
            let mut metadata = a.fields.metadata()?;
            for kv in &a.set {
                let (k, v) = kv.split_once('=').ok_or_else(|| {
                    ApiError::invalid(format!("--set expects key=value, got {kv:?}"))
                })?;
                if k.is_empty() {
                    return Err(ApiError::invalid(format!("--set has an empty key: {kv:?}")));
                }
                let v = serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.to_string()));
                metadata
                    .get_or_insert_with(Map::new)
                    .insert(k.to_string(), v);
            }
            let asset = svc
                .set_metadata(SetMetadataParams {
                    asset_id: a.asset_id,
                    title: a.title,
                    tags: a.fields.tags(),
                    description: a.fields.description,
                    alias: a.fields.alias,
                    record_type: a.fields.record_type,
                    metadata: metadata.map(Value::Object),
                })
                .await?;
            print_json(&asset);
            Ok(())
        }
    }
}

/// Whose assets `dataerai list assets` shows.
pub struct Which {
    pub project: Option<String>,
    pub collection: Option<String>,
    pub user: bool,
}

/// `dataerai list assets`: one page, or (`--all`) every page.
pub async fn list(svc: &Service, as_json: bool, which: Which, pages: PageArgs) -> Result<()> {
    let mut params = ListAssetsParams::default();
    if let Some(p) = which.project {
        params.owner_type = Some(OwnerType::Project.to_string());
        params.owner_id = Some(p);
    } else if let Some(c) = which.collection {
        params.collection_id = Some(c);
    } else if which.user {
        params.owner_type = Some(OwnerType::User.to_string());
        params.owner_id = Some(svc.user_id().await?);
    }
    let page = fetch_pages(pages, |limit, offset| {
        svc.list_assets(ListAssetsParams {
            limit,
            offset,
            ..params.clone()
        })
    })
    .await?;
    if as_json {
        print_json(&page);
    } else {
        print_asset_rows(&page.items);
        page_footer(&page, "assets");
    }
    Ok(())
}

/// `dataerai delete ID [--version CONTENT_ID]`
pub async fn delete(
    svc: &Service,
    as_json: bool,
    asset_id: String,
    version: Option<String>,
) -> Result<()> {
    match version {
        None => {
            svc.delete_asset(AssetIdParams {
                asset_id: asset_id.clone(),
            })
            .await?;
            if as_json {
                print_json(&serde_json::json!({ "deleted": asset_id }));
            } else {
                crate::outln!("Deleted asset {asset_id} with its versions and relationships");
            }
        }
        Some(content_id) => {
            svc.delete_version(VersionParams {
                asset_id: asset_id.clone(),
                content_id: content_id.clone(),
            })
            .await?;
            if as_json {
                print_json(&serde_json::json!({ "deleted": content_id, "asset_id": asset_id }));
            } else {
                crate::outln!("Deleted version {content_id} of asset {asset_id}");
            }
        }
    }
    Ok(())
}

/// One line per asset: id, size of the latest version, record type, title.
pub(super) fn print_asset_rows(items: &[Asset]) {
    for a in items {
        let size = a
            .latest_content
            .as_ref()
            .map(|c| human_bytes(c.total_bytes));
        crate::outln!(
            "{}  {:>10}  {:<12}  {}",
            a.asset_id,
            size.as_deref().unwrap_or("-"),
            a.record_type.as_deref().unwrap_or("-"),
            a.title
        );
    }
}

/// `dataerai link`
pub async fn link(svc: &Service, as_json: bool, a: LinkArgs) -> Result<()> {
    let qualifiers = parse_optional_object("--qualifiers", &a.qualifiers)?.map(Value::Object);
    let rel = svc
        .create_relationship(RelationshipParams {
            from_asset_id: a.from,
            to_asset_id: a.to,
            relationship_type: a.rel_type,
            analysis_mode: a.analysis_mode,
            qualifier_note: a.note,
            qualifier_time: a.time,
            qualifiers,
        })
        .await?;
    print_result(as_json, &rel, || {
        format!(
            "Linked {} -[{}]-> {} ({}) as {}",
            rel.from_asset_id,
            rel.rel_type,
            rel.to_asset_id,
            rel.related_asset
                .title
                .as_deref()
                .unwrap_or("not readable to you"),
            rel.id
        )
    });
    Ok(())
}

/// `dataerai versions`
pub async fn versions(
    svc: &Service,
    as_json: bool,
    asset_id: String,
    pages: PageArgs,
) -> Result<()> {
    let page = fetch_pages(pages, |limit, offset| {
        svc.list_versions(ListVersionsParams {
            asset_id: asset_id.clone(),
            limit,
            offset,
        })
    })
    .await?;
    if as_json {
        print_json(&page);
    } else {
        for v in &page.items {
            crate::outln!(
                "{}  {}  {:>10}  {} file{}",
                v.content_id,
                v.completed_at
                    .unwrap_or(v.created_at)
                    .format("%Y-%m-%d %H:%M:%S"),
                human_bytes(v.total_bytes),
                v.files.len(),
                if v.files.len() == 1 { "" } else { "s" }
            );
        }
        page_footer(&page, "versions");
    }
    Ok(())
}
