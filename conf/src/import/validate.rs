//! Keeps only what vigil accepts. Converted blocks are checked with vigil's own compiler; a block
//! it refuses is listed as unconverted with vigil's message instead of being emitted, so the
//! importer can never write a config `check-config` rejects.

use super::convert::Item;
use super::cx::Cx;
use super::toml_out::{Table, render};

/// Adds the `items` vigil accepts to `accepted` and returns them; lists the others.
///
/// All items are validated at once. vigil reports each error at the line of the key at fault,
/// so an error is charged to the item whose lines hold it, that item is dropped and the rest
/// re-validated: one validation when all is well, one more per refused item otherwise.
pub(super) fn accept(cx: &mut Cx<'_>, accepted: &mut Vec<Table>, items: Vec<Item>) -> Vec<Item> {
    let base = render("", accepted);
    let mut pending: Vec<Option<Item>> = items.into_iter().map(Some).collect();
    loop {
        let mut text = base.clone();
        let mut line = base.matches('\n').count() + 1;
        // (first line, index into pending) of each item in `text`.
        let mut starts = Vec::new();
        for (i, item) in pending.iter().enumerate() {
            if let Some(item) = item {
                let chunk = render("", &item.tables);
                starts.push((line, i));
                line += chunk.matches('\n').count();
                text.push_str(&chunk);
            }
        }
        let errors = match crate::load_str(&text, "imported.toml") {
            Ok(_) => break,
            Err(e) => e.0,
        };
        let mut culprits: Vec<(usize, String)> = Vec::new();
        for e in errors {
            let owner = starts.iter().rev().find(|(start, _)| *start <= e.line);
            if let Some(&(_, i)) = owner
                && !culprits.iter().any(|(c, _)| *c == i)
            {
                culprits.push((i, e.message));
            }
        }
        if culprits.is_empty() {
            // Only the already accepted part is blamed; the cause cannot be located.
            return one_by_one(cx, accepted, pending.into_iter().flatten().collect());
        }
        for (i, message) in culprits {
            if let Some(item) = pending.get_mut(i).and_then(Option::take) {
                refuse(cx, &item, &message);
            }
        }
    }
    let kept: Vec<Item> = pending.into_iter().flatten().collect();
    accepted.extend(kept.iter().flat_map(|i| i.tables.iter().cloned()));
    kept
}

/// The slow path: each item on its own on top of what was accepted before it.
fn one_by_one(cx: &mut Cx<'_>, accepted: &mut Vec<Table>, items: Vec<Item>) -> Vec<Item> {
    let mut kept = Vec::new();
    for item in items {
        let mut candidate = accepted.clone();
        candidate.extend(item.tables.iter().cloned());
        match valid(&candidate) {
            Ok(()) => {
                *accepted = candidate;
                kept.push(item);
            }
            Err(message) => refuse(cx, &item, &message),
        }
    }
    kept
}

fn refuse(cx: &mut Cx<'_>, item: &Item, message: &str) {
    // Line numbers of the generated TOML mean nothing to the reader of keepalived.conf.
    let message = match message.rfind(" (first at line ") {
        Some(i) if message.ends_with(')') => &message[..i],
        _ => message,
    };
    cx.skip_at(
        item.loc,
        format!(
            "{} not converted: vigil refuses the result: {message}",
            item.what
        ),
    );
}

/// Whether vigil accepts `tables`; else its first error message.
pub(super) fn valid(tables: &[Table]) -> Result<(), String> {
    crate::load_str(&render("", tables), "imported.toml")
        .map(|_| ())
        .map_err(|e| e.0.first().map(|e| e.message.clone()).unwrap_or_default())
}
