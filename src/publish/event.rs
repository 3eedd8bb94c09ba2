//! A ledger span as the versioned JSON event targets receive (`version` 1). Adding fields
//! keeps the version; renaming or removing one is version 2.

use serde_json::{json, Value};

use crate::ledger::{time, Span};

/// The event format's version.
pub const VERSION: u32 = 1;

/// The stable id of a span's event (the same in any ledger engine): `ENV/SERVICE/FIRST_SEEN`.
pub fn id(span: &Span) -> String {
    format!("{}/{}/{}", span.environment, span.service, span.first_seen)
}

/// The event as JSON.
pub fn json(span: &Span) -> Value {
    let rfc = |s: i64| time(s).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    json!({
        "version": VERSION,
        "id": id(span),
        "environment": span.environment,
        "service": span.service,
        "kind": span.change.kind.as_str(),
        "at": rfc(span.at()),
        "first_seen": rfc(span.first_seen),
        "prev_seen": span.prev_seen.map(rfc),
        "from": span.change.from,
        "to": span.parts,
        "shipped": span.change.shipped,
        "removed": span.change.removed,
        "tickets": span.change.tickets,
    })
}
