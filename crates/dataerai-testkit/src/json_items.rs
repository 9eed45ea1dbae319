//! Finding one object in a JSON answer's array, as the server tests read
//! lineages, PROV-JSON and RO-Crate documents.

use serde_json::Value;

/// The object of the array `items` whose `key` is `id`; panics naming what
/// it looked for (and the array) when there is none.
pub fn item<'v>(items: &'v Value, key: &str, id: &str) -> &'v Value {
    items
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {items}"))
        .iter()
        .find(|i| i[key] == id)
        .unwrap_or_else(|| panic!("no {key} {id} in {items:#}"))
}
