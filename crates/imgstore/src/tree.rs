//! `tree`: the parent/child graph of restored images, drawn with box-drawing characters.

use digest_set::Digest;

use std::collections::BTreeMap;

use crate::gofmt::human_size_with_precision;
use crate::store::{ImageEntry, Store};

/// The restored images, read once from the stores.
type Images = BTreeMap<Digest, ImageEntry>;

/// Draws the graph. With `root`, only that image and its descendants; otherwise every image
/// whose parent is not restored starts a tree. Siblings are ordered oldest first.
///
/// Each line: `<short id> <tags or <none>> <size>`, e.g.
/// `└── 2c8eeb116eab peer/child:1 97B`.
pub fn render_tree(store: &Store, root: Option<Digest>, no_trunc: bool) -> String {
    let images = store.images();
    let mut roots: Vec<Digest> = match root {
        Some(r) => vec![r],
        None => images
            .values()
            .filter(|e| e.parent_id().is_none_or(|p| !images.contains_key(&p)))
            .map(|e| e.id())
            .collect(),
    };
    sort_by_created(&images, &mut roots);
    let mut out = String::new();
    let mut seen = std::collections::HashSet::new();
    for r in roots {
        draw(store, &images, r, no_trunc, &mut seen, &mut out);
    }
    if root.is_none() {
        // Images on a parent cycle have no root above them: draw them too.
        let mut rest: Vec<Digest> = images
            .keys()
            .filter(|id| !seen.contains(*id))
            .copied()
            .collect();
        sort_by_created(&images, &mut rest);
        for r in rest {
            if !seen.contains(&r) {
                draw(store, &images, r, no_trunc, &mut seen, &mut out);
            }
        }
    }
    out
}

/// Draws `root` and its descendants; an image met again is printed once more, marked, and
/// not expanded (only a parent cycle can do that).
fn draw(
    store: &Store,
    images: &Images,
    root: Digest,
    no_trunc: bool,
    seen: &mut std::collections::HashSet<Digest>,
    out: &mut String,
) {
    // Iterative DFS: (id, prefix for its children, connector for its own line).
    let mut stack: Vec<(Digest, String, String)> = vec![(root, String::new(), String::new())];
    while let Some((id, prefix, connector)) = stack.pop() {
        out.push_str(&connector);
        out.push_str(&line(store, images, &id, no_trunc));
        if !seen.insert(id) {
            out.push_str(" (parent cycle)\n");
            continue;
        }
        out.push('\n');
        let mut kids = store.children(&id);
        sort_by_created(images, &mut kids);
        let n = kids.len();
        for (i, k) in kids.into_iter().enumerate().rev() {
            let last = i + 1 == n;
            let conn = format!("{prefix}{}", if last { "└── " } else { "├── " });
            let next = format!("{prefix}{}", if last { "    " } else { "│   " });
            stack.push((k, next, conn));
        }
    }
}

fn sort_by_created(images: &Images, ids: &mut [Digest]) {
    ids.sort_by_key(|id| (images.get(id).map(|e| e.created_unix()).unwrap_or(0), *id));
}

fn line(store: &Store, images: &Images, id: &Digest, no_trunc: bool) -> String {
    let (tags, digests) = store.repo_tags_digests(id);
    let names = if !tags.is_empty() {
        tags.join(", ")
    } else if !digests.is_empty() {
        digests.join(", ")
    } else {
        "<none>".to_owned()
    };
    let size = images.get(id).map(|e| e.size).unwrap_or(0);
    let shown = if no_trunc { id.to_string() } else { id.short() };
    format!(
        "{shown} {names} {}",
        human_size_with_precision(size as f64, 3)
    )
}
