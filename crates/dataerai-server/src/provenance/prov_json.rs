//! An asset's lineage as a W3C PROV-JSON document
//! (<https://www.w3.org/submissions/prov-json/>).
//!
//! - every asset of the lineage is an `entity` named `dataerai:<asset id>`
//!   (the `dataerai` prefix is the server's asset URL, so the name is also
//!   the asset's API address); a readable one carries `prov:label` (its
//!   title), `prov:type` (its record type), its alias, its latest content
//!   version and that version's checksums; a redacted one (the caller may
//!   not read it) carries nothing but its name;
//! - every relationship is a `wasDerivedFrom` named `dataerai_rel:<id>`:
//!   `prov:generatedEntity` is the dependent asset (the relationship's
//!   source), `prov:usedEntity` its origin, with the relationship type, the
//!   analysis mode and — between two readable assets — the qualifiers
//!   (`note` and `time` as attributes of their own, the rest as one JSON
//!   text);
//! - whoever created (uploaded) a readable asset is an `agent`
//!   `dataerai_user:<user id>` of type `prov:Person` joined to it by
//!   `wasAttributedTo`; the agent shows an email only when the caller may
//!   know it (see `MetadataStore::visible_emails`).

use std::collections::{BTreeMap, HashMap};

use dataerai_proto::api::Lineage;
use dataerai_store::meta::AssetFacts;
use serde_json::{json, Map, Value};

/// What the document is made from. The lineage's nodes are already redacted
/// for the caller; `facts` and `qualifiers` hold what the caller may read.
pub struct ProvInput<'a> {
    /// The server's public base URL (`https://data.example.org`).
    pub base_url: &'a str,
    pub lineage: &'a Lineage,
    /// Creator and latest content of the readable assets.
    pub facts: &'a [AssetFacts],
    /// Qualifiers of relationships whose two ends the caller may read.
    pub qualifiers: &'a HashMap<String, Map<String, Value>>,
    /// Emails the caller may see, by user id.
    pub emails: &'a HashMap<String, String>,
}

/// The namespaces of the document, from the server's base URL.
pub fn prefixes(base_url: &str) -> Value {
    let base = super::trim_base(base_url);
    json!({
        "dataerai": format!("{base}/api/v1/assets/"),
        "dataerai_rel": format!("{base}/api/v1/relationships/"),
        "dataerai_user": format!("{base}/api/v1/users/"),
        "dataerai_term": format!("{base}/ns/provenance#"),
        "xsd": "http://www.w3.org/2001/XMLSchema#",
    })
}

fn entity_name(asset_id: &str) -> String {
    format!("dataerai:{asset_id}")
}

/// A typed PROV-JSON literal.
fn typed(value: &str, datatype: &str) -> Value {
    json!({"$": value, "type": datatype})
}

/// The PROV-JSON document of `input`.
pub fn document(input: &ProvInput<'_>) -> Value {
    let facts: HashMap<&str, &AssetFacts> = input
        .facts
        .iter()
        .map(|f| (f.asset_id.as_str(), f))
        .collect();
    // BTreeMaps: the same lineage always gives the same bytes.
    let mut entities: BTreeMap<String, Value> = BTreeMap::new();
    let mut agents: BTreeMap<String, Value> = BTreeMap::new();
    let mut attributed: BTreeMap<String, Value> = BTreeMap::new();
    let mut readable: std::collections::HashSet<&str> = std::collections::HashSet::new();
    for node in &input.lineage.nodes {
        let mut attrs = Map::new();
        if !node.redacted {
            readable.insert(node.id.as_str());
            if let Some(title) = &node.title {
                attrs.insert("prov:label".into(), json!(title));
            }
            if let Some(t) = &node.record_type {
                attrs.insert("prov:type".into(), json!(t));
            }
            if let Some(alias) = &node.alias {
                attrs.insert("dataerai_term:alias".into(), json!(alias));
            }
            if node.id == input.lineage.root {
                attrs.insert("dataerai_term:root".into(), json!(true));
            }
            if let Some(f) = facts.get(node.id.as_str()) {
                if let Some(content) = &f.content {
                    attrs.insert("dataerai_term:contentId".into(), json!(content.content_id));
                    let sums: Vec<&str> = content
                        .files
                        .iter()
                        .filter_map(|f| f.checksum.as_deref())
                        .collect();
                    match sums.as_slice() {
                        [] => {}
                        [one] => {
                            attrs.insert("dataerai_term:checksum".into(), json!(one));
                        }
                        many => {
                            attrs.insert("dataerai_term:checksum".into(), json!(many));
                        }
                    }
                }
                let agent = format!("dataerai_user:{}", f.created_by);
                let mut agent_attrs = Map::new();
                agent_attrs.insert(
                    "prov:type".into(),
                    typed("prov:Person", "prov:QUALIFIED_NAME"),
                );
                if let Some(email) = input.emails.get(&f.created_by) {
                    agent_attrs.insert("prov:label".into(), json!(email));
                    agent_attrs.insert("dataerai_term:email".into(), json!(email));
                }
                agents.insert(agent.clone(), Value::Object(agent_attrs));
                attributed.insert(
                    format!("_:attributed-{}", node.id),
                    json!({"prov:entity": entity_name(&node.id), "prov:agent": agent}),
                );
            }
        }
        entities.insert(entity_name(&node.id), Value::Object(attrs));
    }
    let mut derived: BTreeMap<String, Value> = BTreeMap::new();
    for edge in &input.lineage.edges {
        let mut attrs = Map::new();
        attrs.insert(
            "prov:generatedEntity".into(),
            json!(entity_name(&edge.from_asset_id)),
        );
        attrs.insert(
            "prov:usedEntity".into(),
            json!(entity_name(&edge.to_asset_id)),
        );
        attrs.insert(
            "dataerai_term:relationshipType".into(),
            json!(edge.rel_type),
        );
        if let Some(mode) = &edge.analysis_mode {
            attrs.insert("dataerai_term:analysisMode".into(), json!(mode));
        }
        let both_readable = readable.contains(edge.from_asset_id.as_str())
            && readable.contains(edge.to_asset_id.as_str());
        if let Some(q) = input.qualifiers.get(&edge.id).filter(|_| both_readable) {
            qualifier_attributes(q, &mut attrs);
        }
        derived.insert(format!("dataerai_rel:{}", edge.id), Value::Object(attrs));
    }
    let mut doc = Map::new();
    doc.insert("prefix".into(), prefixes(input.base_url));
    doc.insert("entity".into(), json!(entities));
    if !agents.is_empty() {
        doc.insert("agent".into(), json!(agents));
        doc.insert("wasAttributedTo".into(), json!(attributed));
    }
    if !derived.is_empty() {
        doc.insert("wasDerivedFrom".into(), json!(derived));
    }
    Value::Object(doc)
}

/// A relationship's qualifiers as attributes: `note` and `time` (an
/// `xsd:dateTime` when it reads as one) on their own, everything else as
/// one JSON text (PROV attribute values are literals, not objects).
fn qualifier_attributes(q: &Map<String, Value>, attrs: &mut Map<String, Value>) {
    let mut rest = Map::new();
    for (key, value) in q {
        match (key.as_str(), value) {
            ("note", Value::String(note)) => {
                attrs.insert("dataerai_term:qualifierNote".into(), json!(note));
            }
            ("time", Value::String(t)) => {
                let value = match chrono::DateTime::parse_from_rfc3339(t) {
                    Ok(_) => typed(t, "xsd:dateTime"),
                    Err(_) => json!(t),
                };
                attrs.insert("dataerai_term:qualifierTime".into(), value);
            }
            _ => {
                rest.insert(key.clone(), value.clone());
            }
        }
    }
    if !rest.is_empty() {
        attrs.insert(
            "dataerai_term:qualifiers".into(),
            json!(Value::Object(rest).to_string()),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dataerai_proto::api::{ContentFile, LineageEdge, LineageNode, OwnerType};
    use dataerai_store::meta::ContentFacts;

    fn node(id: &str, depth: u32, readable: bool) -> LineageNode {
        let mut n = LineageNode {
            id: id.into(),
            title: Some(format!("title of {id}")),
            alias: Some(format!("alias-{id}")),
            record_type: Some("analysis".into()),
            owner_type: Some(OwnerType::Project),
            owner_id: Some("p1".into()),
            depth,
            redacted: false,
        };
        if !readable {
            n.redact();
        }
        n
    }

    fn edge(id: &str, from: &str, to: &str) -> LineageEdge {
        LineageEdge {
            id: id.into(),
            from_asset_id: from.into(),
            to_asset_id: to.into(),
            rel_type: "derived_from".into(),
            analysis_mode: Some("non_destructive".into()),
        }
    }

    fn facts(id: &str, by: &str) -> AssetFacts {
        AssetFacts {
            asset_id: id.into(),
            created_by: by.into(),
            content: Some(ContentFacts {
                content_id: format!("c-{id}"),
                files: vec![ContentFile {
                    file_index: 0,
                    name: "a.bin".into(),
                    size: 3,
                    checksum: Some(format!("blake3:{id}")),
                }],
            }),
        }
    }

    /// fig → fit → raw, where raw is unreadable; fit made by u1 (visible
    /// email), fig by u2 (no email).
    fn sample() -> (
        Lineage,
        Vec<AssetFacts>,
        HashMap<String, Map<String, Value>>,
    ) {
        let lineage = Lineage {
            root: "fig".into(),
            nodes: vec![
                node("fig", 0, true),
                node("fit", 1, true),
                node("raw", 2, false),
            ],
            edges: vec![edge("r1", "fig", "fit"), edge("r2", "fit", "raw")],
            truncated: false,
        };
        let mut q = HashMap::new();
        let mut q1 = Map::new();
        q1.insert("note".into(), json!("peak fit"));
        q1.insert("time".into(), json!("2026-12-06T10:00:00Z"));
        q1.insert("temperature_k".into(), json!(4.2));
        q.insert("r1".to_string(), q1);
        (lineage, vec![facts("fig", "u2"), facts("fit", "u1")], q)
    }

    #[test]
    fn entities_derivations_and_agents_follow_the_lineage() {
        let (lineage, facts, qualifiers) = sample();
        let emails = HashMap::from([("u1".to_string(), "ann@lab.org".to_string())]);
        let doc = document(&ProvInput {
            base_url: "https://data.lab.org/",
            lineage: &lineage,
            facts: &facts,
            qualifiers: &qualifiers,
            emails: &emails,
        });
        assert_eq!(
            doc["prefix"]["dataerai"],
            "https://data.lab.org/api/v1/assets/"
        );
        assert_eq!(doc["entity"]["dataerai:fig"]["dataerai_term:root"], true);
        // The entity `fit` and the derivation `r1` (fig from fit), field by field.
        let fit = &doc["entity"]["dataerai:fit"];
        let r1 = &doc["wasDerivedFrom"]["dataerai_rel:r1"];
        for (object, key, want) in [
            (fit, "prov:label", "title of fit"),
            (fit, "prov:type", "analysis"),
            (fit, "dataerai_term:alias", "alias-fit"),
            (fit, "dataerai_term:contentId", "c-fit"),
            (fit, "dataerai_term:checksum", "blake3:fit"),
            (r1, "prov:generatedEntity", "dataerai:fig"),
            (r1, "prov:usedEntity", "dataerai:fit"),
            (r1, "dataerai_term:relationshipType", "derived_from"),
            (r1, "dataerai_term:analysisMode", "non_destructive"),
            (r1, "dataerai_term:qualifierNote", "peak fit"),
        ] {
            assert_eq!(object[key], want, "{key}");
        }
        assert_eq!(
            r1["dataerai_term:qualifierTime"],
            json!({"$": "2026-12-06T10:00:00Z", "type": "xsd:dateTime"})
        );
        assert_eq!(r1["dataerai_term:qualifiers"], "{\"temperature_k\":4.2}");
        assert_eq!(
            doc["agent"]["dataerai_user:u1"]["dataerai_term:email"],
            "ann@lab.org"
        );
        assert_eq!(
            doc["agent"]["dataerai_user:u2"],
            json!({"prov:type": {"$": "prov:Person", "type": "prov:QUALIFIED_NAME"}})
        );
        assert_eq!(
            doc["wasAttributedTo"]["_:attributed-fit"],
            json!({"prov:entity": "dataerai:fit", "prov:agent": "dataerai_user:u1"})
        );
    }

    #[test]
    fn a_redacted_asset_is_its_name_only_and_its_edges_lose_their_qualifiers() {
        let (lineage, facts, mut qualifiers) = sample();
        let mut q2 = Map::new();
        q2.insert("note".into(), json!("secret note"));
        qualifiers.insert("r2".into(), q2);
        let doc = document(&ProvInput {
            base_url: "http://h",
            lineage: &lineage,
            facts: &facts,
            qualifiers: &qualifiers,
            emails: &HashMap::new(),
        });
        assert_eq!(doc["entity"]["dataerai:raw"], json!({}));
        let r2 = &doc["wasDerivedFrom"]["dataerai_rel:r2"];
        assert_eq!(r2["prov:usedEntity"], "dataerai:raw");
        assert!(r2.get("dataerai_term:qualifierNote").is_none());
        let text = doc.to_string();
        assert!(!text.contains("title of raw") && !text.contains("secret note"));
        assert!(doc["wasAttributedTo"].get("_:attributed-raw").is_none());
    }

    #[test]
    fn a_lone_asset_has_no_relations_and_a_time_that_is_no_time_stays_text() {
        let lineage = Lineage {
            root: "a".into(),
            nodes: vec![node("a", 0, true)],
            edges: vec![],
            truncated: false,
        };
        let doc = document(&ProvInput {
            base_url: "http://h",
            lineage: &lineage,
            facts: &[],
            qualifiers: &HashMap::new(),
            emails: &HashMap::new(),
        });
        assert!(doc.get("wasDerivedFrom").is_none() && doc.get("agent").is_none());
        let mut attrs = Map::new();
        let q = json!({"time": "yesterday"});
        qualifier_attributes(q.as_object().unwrap(), &mut attrs);
        assert_eq!(attrs["dataerai_term:qualifierTime"], "yesterday");
    }
}
