//! `ro-crate-metadata.json` (RO-Crate 1.1, <https://w3id.org/ro/crate/1.1>)
//! for a set of assets.
//!
//! Layout: the Root Data Entity `./` holds the collections as nested folders
//! (`Dataset`s whose `@id` is their path, `raw/2026-12-06/`), and in them one
//! folder per asset, `<title>-<first 8 characters of its id>/` — a `Dataset`
//! with the asset's title, description, tags (`keywords`), record type
//! (`additionalType`), id (`identifier`), latest content version
//! (`version`) and metadata (`additionalProperty`: one `PropertyValue` per
//! top-level key). Its `hasPart` are the version's files (`File`: path,
//! `contentSize`, `encodingFormat` when the extension says it, the BLAKE3
//! checksum as an `identifier` `PropertyValue`). A relationship between two
//! included assets is `isBasedOn` on the dependent asset's folder, and
//! `wasDerivedFrom` (PROV, declared in the `@context`) beside it.
//!
//! Without data (`include_data: false`) the files are not in the crate: each
//! `File`'s `@id` is then its download URL, which RO-Crate allows for web
//! resources.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, SecondsFormat, Utc};
use dataerai_proto::api::{Asset, LineageEdge};
use serde_json::{json, Map, Value};

/// The RO-Crate version the metadata conforms to.
pub const CONFORMS_TO: &str = "https://w3id.org/ro/crate/1.1";
/// The file every crate's metadata is in.
pub const METADATA_FILE: &str = "ro-crate-metadata.json";

/// A folder of the crate made from a collection.
#[derive(Debug, Clone)]
pub struct CrateFolder {
    /// Relative to the crate root, ending in `/` (`raw/2026-12-06/`).
    pub path: String,
    pub name: String,
    /// The collection's id, or another label of where the folder comes from.
    pub identifier: String,
}

/// An asset and the folder it goes in (`""`: the crate root).
#[derive(Debug, Clone)]
pub struct CrateAsset<'a> {
    pub asset: &'a Asset,
    pub parent: String,
}

pub struct CrateInput<'a> {
    /// The server's public base URL.
    pub base_url: &'a str,
    /// The export's own URL, the root's `identifier` (a re-export of the
    /// same collection or query has the same one).
    pub identifier: String,
    pub name: String,
    pub description: String,
    pub date_published: DateTime<Utc>,
    pub include_data: bool,
    /// Parents before children is not required.
    pub folders: Vec<CrateFolder>,
    pub assets: Vec<CrateAsset<'a>>,
    /// Relationships among the assets (both ends included).
    pub relationships: &'a [LineageEdge],
}

/// A file or folder name made of safe characters: letters, digits, `.`, `-`
/// and `_` (anything else becomes `_`), no leading dot, at most 60
/// characters; `fallback` when nothing is left.
pub fn folder_name(text: &str, fallback: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        let c = if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
            c
        } else {
            '_'
        };
        if !(c == '_' && out.ends_with('_')) {
            out.push(c);
        }
        if out.len() >= 60 {
            break;
        }
    }
    let trimmed = out.trim_matches(|c| c == '_' || c == '.').to_string();
    if trimmed.is_empty() {
        fallback.to_string()
    } else {
        trimmed
    }
}

/// [`folder_name`] of `text`, made unique among the sibling names in `used`
/// (`-2`, `-3`… added), and recorded there.
pub fn unique_folder_name(
    used: &mut std::collections::HashSet<String>,
    text: &str,
    fallback: &str,
) -> String {
    let stem = folder_name(text, fallback);
    let mut name = stem.clone();
    let mut n = 2;
    while !used.insert(name.clone()) {
        name = format!("{stem}-{n}");
        n += 1;
    }
    name
}

/// The folders of the collections below `top` (not `top` itself), each at
/// `prefix` + the names of the collections on the way down; sibling names
/// that come out the same get `-2`, `-3`…. Answers `(collection id, folder)`,
/// parents before children.
pub fn collection_folders(
    collections: &[dataerai_proto::api::Collection],
    top: &str,
    prefix: &str,
) -> Vec<(String, CrateFolder)> {
    let mut children: HashMap<&str, Vec<&dataerai_proto::api::Collection>> = HashMap::new();
    for c in collections {
        if let Some(parent) = &c.parent_id {
            children.entry(parent.as_str()).or_default().push(c);
        }
    }
    let mut out = Vec::new();
    let mut queue: std::collections::VecDeque<(String, String)> =
        std::collections::VecDeque::from([(top.to_string(), prefix.to_string())]);
    let mut seen: std::collections::HashSet<String> = std::collections::HashSet::new();
    while let Some((id, path)) = queue.pop_front() {
        if !seen.insert(id.clone()) {
            continue;
        }
        let mut kids = children.get(id.as_str()).cloned().unwrap_or_default();
        kids.sort_by(|a, b| {
            a.name
                .cmp(&b.name)
                .then(a.collection_id.cmp(&b.collection_id))
        });
        let mut used: std::collections::HashSet<String> = std::collections::HashSet::new();
        for kid in kids {
            let name = unique_folder_name(&mut used, &kid.name, "collection");
            let folder = format!("{path}{name}/");
            out.push((
                kid.collection_id.clone(),
                CrateFolder {
                    path: folder.clone(),
                    name: kid.name.clone(),
                    identifier: kid.collection_id.clone(),
                },
            ));
            queue.push_back((kid.collection_id.clone(), folder));
        }
    }
    out
}

/// The folder of an asset below `parent`.
pub fn asset_folder(parent: &str, asset: &Asset) -> String {
    let short: String = asset.asset_id.chars().take(8).collect();
    format!("{parent}{}-{short}/", folder_name(&asset.title, "asset"))
}

/// A relative path as a URI path: every segment percent-encoded except
/// unreserved characters.
fn uri_path(path: &str) -> String {
    path.split('/')
        .map(|segment| {
            let mut out = String::new();
            for b in segment.bytes() {
                if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                    out.push(char::from(b));
                } else {
                    out.push_str(&format!("%{b:02X}"));
                }
            }
            out
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// The media type a file name's extension says, when it says one.
pub fn encoding_format(name: &str) -> Option<&'static str> {
    let ext = name.rsplit_once('.')?.1.to_ascii_lowercase();
    Some(match ext.as_str() {
        "txt" | "log" => "text/plain",
        "csv" => "text/csv",
        "tsv" => "text/tab-separated-values",
        "md" => "text/markdown",
        "json" => "application/json",
        "xml" => "application/xml",
        "yaml" | "yml" => "application/yaml",
        "html" | "htm" => "text/html",
        "pdf" => "application/pdf",
        "zip" => "application/zip",
        "gz" => "application/gzip",
        "tar" => "application/x-tar",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "svg" => "image/svg+xml",
        "tif" | "tiff" => "image/tiff",
        "h5" | "hdf5" | "hdf" => "application/x-hdf5",
        "nc" => "application/x-netcdf",
        "ipynb" => "application/x-ipynb+json",
        "py" => "text/x-python",
        _ => return None,
    })
}

fn reference(id: &str) -> Value {
    json!({ "@id": id })
}

/// A metadata value as a `PropertyValue`'s `value`: scalars as they are,
/// objects and lists as JSON text.
fn property_value(v: &Value) -> Value {
    match v {
        Value::String(_) | Value::Number(_) | Value::Bool(_) => v.clone(),
        Value::Null => json!(""),
        other => json!(other.to_string()),
    }
}

/// The metadata document of `input`.
pub fn document(input: &CrateInput<'_>) -> Value {
    let base = super::trim_base(input.base_url);
    let mut graph: Vec<Value> = Vec::new();
    // Children of each folder path ("" is the root), in a stable order.
    let mut parts: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let folder_paths: std::collections::HashSet<&str> =
        input.folders.iter().map(|f| f.path.as_str()).collect();
    for f in &input.folders {
        parts
            .entry(parent_of(&f.path, &folder_paths))
            .or_default()
            .push(f.path.clone());
    }
    let folder_of: HashMap<&str, String> = input
        .assets
        .iter()
        .map(|a| (a.asset.asset_id.as_str(), asset_folder(&a.parent, a.asset)))
        .collect();
    let mut based_on: HashMap<&str, Vec<Value>> = HashMap::new();
    for r in input.relationships {
        if let Some(to) = folder_of.get(r.to_asset_id.as_str()) {
            based_on
                .entry(r.from_asset_id.as_str())
                .or_default()
                .push(reference(to));
        }
    }
    let mut extra: BTreeMap<String, Value> = BTreeMap::new();
    let mut asset_entities: Vec<Value> = Vec::new();
    let mut files: Vec<Value> = Vec::new();
    for item in &input.assets {
        let a = item.asset;
        let folder = &folder_of[a.asset_id.as_str()];
        parts
            .entry(item.parent.clone())
            .or_default()
            .push(folder.clone());
        let mut e = Map::new();
        e.insert("@id".into(), json!(folder));
        e.insert("@type".into(), json!("Dataset"));
        e.insert("name".into(), json!(a.title));
        if let Some(d) = a.description.as_deref().filter(|d| !d.is_empty()) {
            e.insert("description".into(), json!(d));
        }
        if !a.tags.is_empty() {
            e.insert("keywords".into(), json!(a.tags));
        }
        if let Some(t) = &a.record_type {
            e.insert("additionalType".into(), json!(t));
        }
        e.insert("identifier".into(), json!(a.asset_id));
        if let Some(alias) = &a.alias {
            e.insert("alternateName".into(), json!(alias));
        }
        e.insert(
            "url".into(),
            json!(format!("{base}/api/v1/assets/{}", a.asset_id)),
        );
        e.insert(
            "dateCreated".into(),
            json!(a.created_at.to_rfc3339_opts(SecondsFormat::Secs, true)),
        );
        e.insert(
            "dateModified".into(),
            json!(a.updated_at.to_rfc3339_opts(SecondsFormat::Secs, true)),
        );
        if !a.metadata.is_empty() {
            let mut props = Vec::new();
            for (i, (key, value)) in a.metadata.iter().enumerate() {
                let id = format!("#md-{}-{i}", a.asset_id);
                extra.insert(
                    id.clone(),
                    json!({"@id": id, "@type": "PropertyValue", "name": key,
                           "value": property_value(value)}),
                );
                props.push(reference(&id));
            }
            e.insert("additionalProperty".into(), json!(props));
        }
        let mut has_part = Vec::new();
        if let Some(v) = &a.latest_content {
            e.insert("version".into(), json!(v.content_id));
            for f in &v.files {
                let id = if input.include_data {
                    uri_path(&format!("{folder}{}", f.name))
                } else {
                    format!(
                        "{base}/api/v1/assets/{}/contents/{}/files/{}",
                        a.asset_id, v.content_id, f.file_index
                    )
                };
                let mut file = Map::new();
                file.insert("@id".into(), json!(id));
                file.insert("@type".into(), json!("File"));
                file.insert("name".into(), json!(f.name));
                file.insert("contentSize".into(), json!(f.size.to_string()));
                if let Some(fmt) = encoding_format(&f.name) {
                    file.insert("encodingFormat".into(), json!(fmt));
                }
                if let Some(sum) = &f.checksum {
                    let sum_id = format!("#{}", sum.replace(':', "-"));
                    extra.insert(
                        sum_id.clone(),
                        json!({"@id": sum_id, "@type": "PropertyValue",
                               "name": "BLAKE3 checksum", "propertyID": "blake3",
                               "value": sum}),
                    );
                    file.insert("identifier".into(), reference(&sum_id));
                }
                has_part.push(reference(&id));
                files.push(Value::Object(file));
            }
        }
        e.insert("hasPart".into(), json!(has_part));
        if let Some(origins) = based_on.get(a.asset_id.as_str()) {
            e.insert("isBasedOn".into(), json!(origins));
            e.insert("wasDerivedFrom".into(), json!(origins));
        }
        asset_entities.push(Value::Object(e));
    }
    graph.push(json!({
        "@id": METADATA_FILE,
        "@type": "CreativeWork",
        "conformsTo": reference(CONFORMS_TO),
        "about": reference("./"),
    }));
    let children = |path: &str| -> Vec<Value> {
        parts
            .get(path)
            .map(|ids| ids.iter().map(|id| reference(id)).collect())
            .unwrap_or_default()
    };
    graph.push(json!({
        "@id": "./",
        "@type": "Dataset",
        "name": input.name,
        "description": input.description,
        "datePublished": input.date_published.to_rfc3339_opts(SecondsFormat::Secs, true),
        "identifier": input.identifier,
        "hasPart": children(""),
    }));
    let mut folders = input.folders.clone();
    folders.sort_by(|a, b| a.path.cmp(&b.path));
    for f in &folders {
        graph.push(json!({
            "@id": f.path,
            "@type": "Dataset",
            "name": f.name,
            "identifier": f.identifier,
            "hasPart": children(&f.path),
        }));
    }
    graph.extend(asset_entities);
    graph.extend(files);
    graph.extend(extra.into_values());
    json!({
        "@context": [
            "https://w3id.org/ro/crate/1.1/context",
            {"wasDerivedFrom": "http://www.w3.org/ns/prov#wasDerivedFrom"}
        ],
        "@graph": graph,
    })
}

/// The nearest folder among `folders` that holds `path` ("": the root).
fn parent_of(path: &str, folders: &std::collections::HashSet<&str>) -> String {
    let mut p = path.trim_end_matches('/');
    while let Some((head, _)) = p.rsplit_once('/') {
        let candidate = format!("{head}/");
        if folders.contains(candidate.as_str()) {
            return candidate;
        }
        p = head;
    }
    String::new()
}

#[cfg(test)]
mod tests {
    use super::*;
    use dataerai_proto::api::{ContentFile, ContentStatus, ContentVersion, OwnerType};

    fn asset(id: &str, title: &str, files: &[(&str, u64)]) -> Asset {
        let t = DateTime::parse_from_rfc3339("2026-12-06T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        Asset {
            asset_id: id.into(),
            title: title.into(),
            description: Some("a scan".into()),
            alias: None,
            record_type: Some("raw_data".into()),
            tags: vec!["tem".into()],
            metadata: json!({"voltage_kv": 200, "sample": {"name": "Si"}})
                .as_object()
                .unwrap()
                .clone(),
            owner_type: OwnerType::Project,
            owner_id: "p".into(),
            collection_ids: vec![],
            created_by: "u".into(),
            created_at: t,
            updated_at: t,
            allocation_id: None,
            latest_content: (!files.is_empty()).then(|| ContentVersion {
                content_id: format!("c-{id}"),
                asset_id: id.into(),
                status: ContentStatus::Complete,
                total_bytes: files.iter().map(|f| f.1).sum(),
                files: files
                    .iter()
                    .enumerate()
                    .map(|(i, (name, size))| ContentFile {
                        file_index: u32::try_from(i).unwrap(),
                        name: (*name).into(),
                        size: *size,
                        checksum: Some(format!("blake3:{id}{i}")),
                    })
                    .collect(),
                created_at: t,
                completed_at: Some(t),
            }),
        }
    }

    fn entity<'v>(doc: &'v Value, id: &str) -> &'v Value {
        dataerai_testkit::item(&doc["@graph"], "@id", id)
    }

    fn input<'a>(
        assets: Vec<CrateAsset<'a>>,
        rels: &'a [LineageEdge],
        data: bool,
    ) -> CrateInput<'a> {
        CrateInput {
            base_url: "https://data.lab.org/",
            identifier: "https://data.lab.org/api/v1/ro-crate?collection_id=c".into(),
            name: "beamtime".into(),
            description: "collection beamtime".into(),
            date_published: Utc::now(),
            include_data: data,
            folders: vec![
                CrateFolder {
                    path: "raw/".into(),
                    name: "raw".into(),
                    identifier: "col-raw".into(),
                },
                CrateFolder {
                    path: "raw/day_1/".into(),
                    name: "day 1".into(),
                    identifier: "col-day".into(),
                },
            ],
            assets,
            relationships: rels,
        }
    }

    #[test]
    fn folders_nest_assets_hold_their_files_and_relationships_are_based_on() {
        let scan = asset(
            "aaaaaaaa-1",
            "Scan #1",
            &[("frame 1.tif", 10), ("sub/notes.txt", 3)],
        );
        let fit = asset("bbbbbbbb-2", "fit", &[("fit.json", 5)]);
        let rels = [LineageEdge {
            id: "r".into(),
            from_asset_id: fit.asset_id.clone(),
            to_asset_id: scan.asset_id.clone(),
            rel_type: "derived_from".into(),
            analysis_mode: None,
        }];
        let assets = vec![
            CrateAsset {
                asset: &scan,
                parent: "raw/day_1/".into(),
            },
            CrateAsset {
                asset: &fit,
                parent: String::new(),
            },
        ];
        let doc = document(&input(assets, &rels, true));
        let meta = entity(&doc, METADATA_FILE);
        assert_eq!(meta["conformsTo"]["@id"], CONFORMS_TO);
        let root = entity(&doc, "./");
        assert_eq!(root["name"], "beamtime");
        assert!(root.get("license").is_none());
        assert_eq!(
            root["hasPart"],
            json!([{"@id": "raw/"}, {"@id": "fit-bbbbbbbb/"}])
        );
        assert_eq!(
            entity(&doc, "raw/")["hasPart"],
            json!([{"@id": "raw/day_1/"}])
        );
        let day = entity(&doc, "raw/day_1/");
        assert_eq!(
            day["hasPart"],
            json!([{"@id": "raw/day_1/Scan_1-aaaaaaaa/"}])
        );
        let ds = entity(&doc, "raw/day_1/Scan_1-aaaaaaaa/");
        assert_eq!(ds["identifier"], "aaaaaaaa-1");
        assert_eq!(ds["version"], "c-aaaaaaaa-1");
        assert_eq!(ds["additionalType"], "raw_data");
        assert_eq!(ds["keywords"], json!(["tem"]));
        let file_id = "raw/day_1/Scan_1-aaaaaaaa/frame%201.tif";
        assert_eq!(ds["hasPart"][0]["@id"], file_id);
        let file = entity(&doc, file_id);
        assert_eq!(file["contentSize"], "10");
        assert_eq!(file["encodingFormat"], "image/tiff");
        let sum = entity(&doc, file["identifier"]["@id"].as_str().unwrap());
        assert_eq!(sum["value"], "blake3:aaaaaaaa-10");
        let nested = entity(&doc, "raw/day_1/Scan_1-aaaaaaaa/sub/notes.txt");
        assert_eq!(nested["name"], "sub/notes.txt");
        let props: Vec<Value> = ds["additionalProperty"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| entity(&doc, r["@id"].as_str().unwrap()).clone())
            .collect();
        assert!(props
            .iter()
            .any(|p| p["name"] == "voltage_kv" && p["value"] == 200));
        assert!(props
            .iter()
            .any(|p| p["name"] == "sample" && p["value"] == "{\"name\":\"Si\"}"));
        let fit_ds = entity(&doc, "fit-bbbbbbbb/");
        assert_eq!(
            fit_ds["isBasedOn"],
            json!([{"@id": "raw/day_1/Scan_1-aaaaaaaa/"}])
        );
        assert_eq!(fit_ds["wasDerivedFrom"], fit_ds["isBasedOn"]);
        assert_eq!(
            doc["@context"][1]["wasDerivedFrom"],
            "http://www.w3.org/ns/prov#wasDerivedFrom"
        );
    }

    #[test]
    fn without_data_files_are_their_download_urls() {
        let scan = asset("aaaaaaaa-1", "scan", &[("a.bin", 10)]);
        let assets = vec![CrateAsset {
            asset: &scan,
            parent: String::new(),
        }];
        let doc = document(&input(assets, &[], false));
        let ds = entity(&doc, "scan-aaaaaaaa/");
        let url = "https://data.lab.org/api/v1/assets/aaaaaaaa-1/contents/c-aaaaaaaa-1/files/0";
        assert_eq!(ds["hasPart"][0]["@id"], url);
        assert!(entity(&doc, url).get("encodingFormat").is_none());
    }

    #[test]
    fn collections_below_the_top_become_nested_folders_with_distinct_names() {
        let t = Utc::now();
        let c = |id: &str, name: &str, parent: Option<&str>| dataerai_proto::api::Collection {
            collection_id: id.into(),
            project_id: "p".into(),
            name: name.into(),
            parent_id: parent.map(str::to_string),
            description: String::new(),
            created_at: t,
            asset_count: 0,
            child_count: 0,
        };
        let all = [
            c("root", "Project", None),
            c("a", "raw data", Some("root")),
            c("b", "raw_data", Some("root")),
            c("a1", "day 1", Some("a")),
            c("x", "elsewhere", None),
        ];
        let folders = collection_folders(&all, "root", "proj/");
        let paths: Vec<(&str, &str)> = folders
            .iter()
            .map(|(id, f)| (id.as_str(), f.path.as_str()))
            .collect();
        assert_eq!(
            paths,
            [
                ("a", "proj/raw_data/"),
                ("b", "proj/raw_data-2/"),
                ("a1", "proj/raw_data/day_1/")
            ]
        );
        assert!(collection_folders(&all, "a1", "").is_empty());
    }

    #[test]
    fn names_become_safe_folder_names() {
        assert_eq!(folder_name("Scan #1 (BF)", "x"), "Scan_1_BF");
        assert_eq!(folder_name("../..", "x"), "x");
        assert_eq!(folder_name(".hidden", "x"), "hidden");
        assert_eq!(folder_name("Ångström", "x"), "ngstr_m");
        assert_eq!(folder_name(&"a".repeat(100), "x").len(), 60);
        assert_eq!(encoding_format("A.TIFF"), Some("image/tiff"));
        assert_eq!(encoding_format("noext"), None);
    }
}
