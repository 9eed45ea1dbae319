//! `dataerai lineage ID [--up|--down|--both] [--depth N] [--type T]…`: an
//! asset's lineage (one server request, `GET /assets/{id}/lineage`) drawn as
//! a tree, or (`--json`) the server's answer.

use std::collections::{HashMap, HashSet};

use clap::Args;
use dataerai_proto::api::{Lineage, LineageEdge, LineageNode};

use super::output::print_json;
use super::Result;
use crate::service::{LineageParams, Service};

#[derive(Args, Debug)]
pub struct LineageArgs {
    /// The asset whose lineage to show.
    pub asset_id: String,
    /// Towards its origins (what it was derived from; the default).
    #[arg(long, conflicts_with_all = ["down", "both"])]
    pub up: bool,
    /// Towards what was derived from it.
    #[arg(long, conflicts_with = "both")]
    pub down: bool,
    /// Both ways: origins first, then what was derived from it.
    #[arg(long)]
    pub both: bool,
    /// Follow at most N relationships (1 to 20, default 20).
    #[arg(long)]
    pub depth: Option<u32>,
    /// Follow only relationships of this type (repeatable).
    #[arg(long = "type", value_name = "TYPE")]
    pub types: Vec<String>,
}

pub async fn run(svc: &Service, as_json: bool, a: LineageArgs) -> Result<()> {
    let direction = if a.both {
        "both"
    } else if a.down {
        "down"
    } else {
        "up"
    };
    let lineage = svc
        .lineage(LineageParams {
            asset_id: a.asset_id,
            direction: Some(direction.to_string()),
            depth: a.depth,
            types: a.types,
        })
        .await?;
    if as_json {
        print_json(&lineage);
        return Ok(());
    }
    for line in draw(&lineage, direction) {
        crate::outln!("{line}");
    }
    Ok(())
}

/// The tree as lines: the root, then per direction its children, each line
/// `type  id  title`. An asset met again is shown once more as `(see above)`
/// without its subtree (so cycles end); one the caller may not read is
/// `(no access) <id>`.
pub fn draw(lineage: &Lineage, direction: &str) -> Vec<String> {
    let nodes: HashMap<&str, &LineageNode> =
        lineage.nodes.iter().map(|n| (n.id.as_str(), n)).collect();
    let mut lines = vec![label(
        nodes.get(lineage.root.as_str()).copied(),
        &lineage.root,
    )];
    let ways: &[(bool, &str)] = match direction {
        "both" => &[(true, "origins (up)"), (false, "derived (down)")],
        "down" => &[(false, "")],
        _ => &[(true, "")],
    };
    for &(up, heading) in ways {
        let mut children: HashMap<&str, Vec<&LineageEdge>> = HashMap::new();
        for e in &lineage.edges {
            let (parent, _) = ends(e, up);
            children.entry(parent).or_default().push(e);
        }
        for list in children.values_mut() {
            list.sort_by(|a, b| {
                (a.rel_type.as_str(), ends(a, up).1).cmp(&(b.rel_type.as_str(), ends(b, up).1))
            });
        }
        let mut prefix = String::new();
        if !heading.is_empty() {
            lines.push(format!("{heading}:"));
            prefix.push_str("  ");
        }
        let mut seen: HashSet<&str> = HashSet::from([lineage.root.as_str()]);
        let tree = Tree {
            nodes: &nodes,
            children: &children,
            up,
        };
        let before = lines.len();
        tree.walk(&lineage.root, &prefix, &mut seen, &mut lines);
        if lines.len() == before {
            lines.push(format!("{prefix}(none)"));
        }
    }
    if lineage.truncated {
        lines.push("(truncated: more relationships than one answer holds)".into());
    }
    lines
}

/// `(parent, child)` of an edge in the tree of one direction.
fn ends(e: &LineageEdge, up: bool) -> (&str, &str) {
    if up {
        (&e.from_asset_id, &e.to_asset_id)
    } else {
        (&e.to_asset_id, &e.from_asset_id)
    }
}

fn label(node: Option<&LineageNode>, id: &str) -> String {
    match node {
        Some(n) if !n.redacted => match &n.title {
            Some(t) => format!("{id}  {t}"),
            None => id.to_string(),
        },
        _ => format!("(no access) {id}"),
    }
}

struct Tree<'a> {
    nodes: &'a HashMap<&'a str, &'a LineageNode>,
    children: &'a HashMap<&'a str, Vec<&'a LineageEdge>>,
    up: bool,
}

impl<'a> Tree<'a> {
    fn walk(&self, id: &str, prefix: &str, seen: &mut HashSet<&'a str>, lines: &mut Vec<String>) {
        let Some(edges) = self.children.get(id) else {
            return;
        };
        for (i, e) in edges.iter().enumerate() {
            let last = i + 1 == edges.len();
            let child = ends(e, self.up).1;
            let branch = if last { "└── " } else { "├── " };
            let again = !seen.insert(child);
            let mut line = format!(
                "{prefix}{branch}{}  {}",
                e.rel_type,
                label(self.nodes.get(child).copied(), child)
            );
            if again {
                line.push_str("  (see above)");
            }
            lines.push(line);
            if !again {
                let deeper = format!("{prefix}{}", if last { "    " } else { "│   " });
                self.walk(child, &deeper, seen, lines);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str, title: Option<&str>) -> LineageNode {
        LineageNode {
            id: id.into(),
            title: title.map(str::to_string),
            alias: None,
            record_type: None,
            owner_type: None,
            owner_id: None,
            depth: 0,
            redacted: title.is_none(),
        }
    }

    fn edge(id: &str, from: &str, to: &str, t: &str) -> LineageEdge {
        LineageEdge {
            id: id.into(),
            from_asset_id: from.into(),
            to_asset_id: to.into(),
            rel_type: t.into(),
            analysis_mode: None,
        }
    }

    #[test]
    fn draws_a_tree_with_repeats_and_redactions() {
        let lineage = Lineage {
            root: "fig".into(),
            nodes: vec![
                node("fig", Some("Figure")),
                node("fit", Some("Fit")),
                node("raw", Some("Raw")),
                node("cfg", None),
            ],
            edges: vec![
                edge("1", "fig", "fit", "derived_from"),
                edge("2", "fit", "raw", "derived_from"),
                edge("3", "fig", "raw", "uses"),
                edge("4", "fit", "cfg", "configured_by"),
            ],
            truncated: false,
        };
        assert_eq!(
            draw(&lineage, "up"),
            [
                "fig  Figure",
                "├── derived_from  fit  Fit",
                "│   ├── configured_by  (no access) cfg",
                "│   └── derived_from  raw  Raw",
                "└── uses  raw  Raw  (see above)",
            ]
        );
        assert_eq!(draw(&lineage, "down"), ["fig  Figure", "(none)"]);
    }
}
