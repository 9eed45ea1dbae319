//! Provenance export documents, built by pure functions from what the store
//! answered (so they are unit-tested without a server): an asset's lineage
//! as W3C PROV-JSON ([`prov_json`]) and a set of assets as RO-Crate 1.1
//! metadata ([`ro_crate`]). `routes::provenance` gathers the input and
//! decides who may see what; these modules only shape it.

pub mod prov_json;
pub mod ro_crate;

/// `base` without trailing slashes (a configured `public_url` may have one).
pub(crate) fn trim_base(base: &str) -> &str {
    base.trim_end_matches('/')
}
