//! What the search index holds of one asset, computed from the asset alone
//! (pure functions, so both backends index the same words and values).

use serde_json::Value;

use super::query::text_words;

/// Largest number of metadata leaves indexed per asset (the rest are still
/// stored and returned, just not searchable).
pub const MAX_INDEXED_FIELDS: usize = 1000;
/// Longest string value indexed, in characters (longer ones are cut).
pub const MAX_INDEXED_TEXT: usize = 256;

/// One searchable metadata leaf: its key path (keys joined by `.`) and value.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub path: String,
    pub value: FieldValue,
}

#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue {
    Number(f64),
    Text(String),
    Bool(bool),
}

/// The index rows of one asset.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexEntry {
    /// Title, description, alias, tags and file names as lower-case words.
    pub body: String,
    pub size_bytes: i64,
    pub tags: Vec<String>,
    pub fields: Vec<Field>,
}

/// What an asset is indexed from.
pub struct Indexed<'a> {
    pub title: &'a str,
    pub description: Option<&'a str>,
    pub alias: Option<&'a str>,
    pub record_type: Option<&'a str>,
    pub tags: &'a [String],
    pub metadata: &'a Value,
    pub file_names: &'a [String],
    pub size_bytes: i64,
}

impl Indexed<'_> {
    pub fn entry(&self) -> IndexEntry {
        let mut words = Vec::new();
        for text in [
            self.title,
            self.description.unwrap_or(""),
            self.alias.unwrap_or(""),
        ] {
            words.extend(text_words(text));
        }
        words.extend(text_words(self.record_type.unwrap_or("")));
        for t in self.tags {
            words.extend(text_words(t));
        }
        for name in self.file_names {
            words.extend(text_words(name));
        }
        let mut tags = self.tags.to_vec();
        tags.sort();
        tags.dedup();
        IndexEntry {
            body: words.join(" "),
            size_bytes: self.size_bytes,
            tags,
            fields: flatten(self.metadata),
        }
    }
}

/// The leaves of a metadata document: objects add their key to the path,
/// arrays give each element their own path (so `md.k=v` matches any element),
/// `null` is left out. Keys are kept as written.
pub fn flatten(metadata: &Value) -> Vec<Field> {
    fn walk(v: &Value, path: &mut Vec<String>, out: &mut Vec<Field>) {
        if out.len() >= MAX_INDEXED_FIELDS {
            return;
        }
        let value = match v {
            Value::Object(map) => {
                for (k, item) in map {
                    path.push(k.clone());
                    walk(item, path, out);
                    path.pop();
                }
                return;
            }
            Value::Array(items) => {
                for item in items {
                    walk(item, path, out);
                }
                return;
            }
            Value::Null => return,
            Value::Bool(b) => FieldValue::Bool(*b),
            Value::Number(n) => match n.as_f64() {
                Some(f) if f.is_finite() => FieldValue::Number(f),
                _ => return,
            },
            Value::String(s) => FieldValue::Text(s.chars().take(MAX_INDEXED_TEXT).collect()),
        };
        if !path.is_empty() {
            out.push(Field {
                path: path.join("."),
                value,
            });
        }
    }
    let mut out = Vec::new();
    walk(metadata, &mut Vec::new(), &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn metadata_flattens_to_typed_leaves() {
        let fields = flatten(&json!({
            "voltage_kv": 200,
            "sample": {"name": "SrRuO3", "thickness_nm": 12.5},
            "ok": true,
            "modes": ["bf", "df"],
            "nothing": null,
        }));
        let text = |p: &str, v: &str| Field {
            path: p.into(),
            value: FieldValue::Text(v.into()),
        };
        let num = |p: &str, v: f64| Field {
            path: p.into(),
            value: FieldValue::Number(v),
        };
        for expected in [
            num("voltage_kv", 200.0),
            text("sample.name", "SrRuO3"),
            num("sample.thickness_nm", 12.5),
            Field {
                path: "ok".into(),
                value: FieldValue::Bool(true),
            },
            text("modes", "bf"),
            text("modes", "df"),
        ] {
            assert!(
                fields.contains(&expected),
                "{expected:?} missing from {fields:?}"
            );
        }
        assert_eq!(fields.len(), 6);
    }

    #[test]
    fn body_holds_every_searchable_word_once_lowercased() {
        let entry = Indexed {
            title: "Bright-field scan",
            description: Some("Sample A, 200 kV"),
            alias: Some("scan_01"),
            record_type: Some("raw_data"),
            tags: &["calibrated".into(), "calibrated".into()],
            metadata: &json!({}),
            file_names: &["images/frame_0001.tif".into()],
            size_bytes: 7,
        }
        .entry();
        assert_eq!(
            entry.body,
            "bright field scan sample a 200 kv scan 01 raw data calibrated calibrated images frame 0001 tif"
        );
        assert_eq!(entry.tags, vec!["calibrated".to_string()]);
    }

    #[test]
    fn huge_metadata_is_indexed_up_to_a_bound() {
        let big: serde_json::Map<String, Value> =
            (0..5000).map(|i| (format!("k{i}"), json!(i))).collect();
        assert_eq!(flatten(&Value::Object(big)).len(), MAX_INDEXED_FIELDS);
    }
}
