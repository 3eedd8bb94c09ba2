//! The Trello target: for each ticket an event in the configured environment shipped or
//! removed, the card is renamed with a prefix (`[[ IN PRODUCTION ]]`, `[[ NOT DEPLOYED ]]`),
//! replacing any earlier prefix of the two, never doubling one. A card is found by a search
//! for the ticket key on the configured boards (`GET /1/search`), then an exact match of the
//! key as a whole word in its name; with `by_commit`, also by a search for each shipped or
//! removed commit's full SHA, then a comment on the card naming that SHA
//! (`GET /1/cards/{id}/actions?filter=commentCard`). Each search, comment check and rename
//! (`PUT /1/cards/{id}?name=…`) is a step, so a retry goes on where the last run stopped; a
//! card found twice in one event is renamed once, and one already named right is left alone.
//!
//! Auth is Trello's `key` and `token` query parameters, both secrets from the environment:
//! registered with the redaction layer, so URLs print with `[redacted]` in their place. A
//! ticket with no card is no failure (a key needs no card); a card gone between the search
//! and the rename (404) is a note. Other errors (401 `invalid token`, 429) are failures.

use std::collections::BTreeMap;

use anyhow::Result;
use serde_json::{json, Value};

use super::http::{Request, Response};
use super::tickets::{self, Direction};
use super::{secret_from_env, Done, Step, Target};
use crate::config::TrelloTarget;
use crate::ledger::Span;

/// Cards a search returns at most (a key or a SHA names few cards).
const CARDS_LIMIT: usize = 50;
/// What a dry run shows for the name a search would have found (unencoded, to be read).
const CARD_NAME: &str = "{card name}";

/// How a card is looked for.
enum By {
    Key(String),
    /// A commit's full SHA.
    Commit(String),
}

/// One search of an event: its step names' prefix, what it finds cards by, and which prefix
/// the cards it finds get.
struct Lookup {
    name: String,
    by: By,
    direction: Direction,
}

/// The cards found so far: id → (name as found, the prefix it gets).
type Found = BTreeMap<String, (String, Direction)>;

impl Target for TrelloTarget {
    fn id(&self) -> &str {
        &self.id
    }

    /// The searches (and comment checks) first, then one rename per card found.
    fn next(&self, span: &Span, done: &Done) -> Result<Option<Step>> {
        if span.environment != self.environment {
            return Ok(None);
        }
        let mut found = Found::new();
        for l in self.lookups(span) {
            if let Some(step) = self.lookup_step(&l, done, &mut found)? {
                return Ok(Some(step));
            }
        }
        for (id, (name, direction)) in &found {
            let step = format!("card/{id}");
            let new = self.renamed(name, *direction);
            if !done.contains_key(&step) && new != *name {
                return Ok(Some(self.rename(step, id, &new)?));
            }
        }
        Ok(None)
    }
}

impl TrelloTarget {
    /// One search per ticket key, and with `by_commit` one per commit shipped or removed.
    fn lookups(&self, span: &Span) -> Vec<Lookup> {
        let wanted = |k: &str| {
            !k.starts_with('#')
                && (self.projects.is_empty() || self.projects.iter().any(|p| k.split('-').next() == Some(p)))
        };
        let mut out: Vec<Lookup> = tickets::tickets(span, wanted)
            .into_iter()
            .map(|t| Lookup { name: t.key.clone(), by: By::Key(t.key), direction: t.direction })
            .collect();
        if self.by_commit {
            let change = &span.change;
            let commits = change.shipped.iter().map(|c| (c, Direction::Shipped));
            for (c, direction) in commits.chain(change.removed.iter().map(|c| (c, Direction::Removed))) {
                let name = c.sha[..c.sha.len().min(12)].to_string();
                out.push(Lookup { name, by: By::Commit(c.sha.clone()), direction });
            }
        }
        out
    }

    /// The next step of one lookup, adding the cards it found to `found` once it has none.
    fn lookup_step(&self, l: &Lookup, done: &Done, found: &mut Found) -> Result<Option<Step>> {
        let search = format!("{}/search", l.name);
        let Some(kept) = done.get(&search) else {
            let query = match &l.by {
                By::Key(k) | By::Commit(k) => k,
            };
            return Ok(Some(self.search(search, query)?));
        };
        if kept.is_null() {
            return self.placeholder_step(l, done);
        }
        for card in kept.as_array().into_iter().flatten() {
            let (Some(id), Some(name)) = (card["id"].as_str(), card["name"].as_str()) else { continue };
            let matches = match &l.by {
                By::Key(k) => tickets::names_key(name, k),
                By::Commit(sha) => {
                    let step = format!("{}/comments/{id}", l.name);
                    let Some(shas) = done.get(&step) else { return Ok(Some(self.comments(step, id)?)) };
                    shas.as_array().is_some_and(|s| s.iter().any(|s| s.as_str() == Some(sha)))
                }
            };
            if matches {
                let entry = found.entry(id.to_string()).or_insert((name.to_string(), l.direction));
                if l.direction == Direction::Shipped {
                    entry.1 = Direction::Shipped;
                }
            }
        }
        Ok(None)
    }

    /// In a dry run no search is answered: the requests a found card would take, with
    /// `{card id}` and `{card name}` for what the search would have said.
    fn placeholder_step(&self, l: &Lookup, done: &Done) -> Result<Option<Step>> {
        let comments = format!("{}/comments", l.name);
        if matches!(l.by, By::Commit(_)) && !done.contains_key(&comments) {
            return Ok(Some(self.comments(comments, "{card id}")?));
        }
        let card = format!("{}/card", l.name);
        if done.contains_key(&card) {
            return Ok(None);
        }
        let mut step = self.rename(card, "{card id}", &format!("{} {CARD_NAME}", self.prefix(l.direction)))?;
        step.request.url = step.request.url.replace(&encode(CARD_NAME), CARD_NAME);
        Ok(Some(step))
    }

    fn prefix(&self, direction: Direction) -> &str {
        match direction {
            Direction::Shipped => &self.deployed_prefix,
            Direction::Removed => &self.removed_prefix,
        }
    }

    /// `name` with the prefix for `direction`, in place of any earlier prefix (of either kind,
    /// however often it was put there).
    pub fn renamed(&self, name: &str, direction: Direction) -> String {
        let mut rest = name.trim_start();
        loop {
            let before = rest;
            for p in [&self.deployed_prefix, &self.removed_prefix] {
                if let Some(r) = rest.strip_prefix(p.as_str()) {
                    rest = r.trim_start();
                }
            }
            if rest == before {
                break;
            }
        }
        let prefix = self.prefix(direction);
        if rest.is_empty() {
            prefix.to_string()
        } else {
            format!("{prefix} {rest}")
        }
    }

    /// `GET /1/search` for cards on the configured boards; keeps `[{id, name}]`.
    fn search(&self, name: String, query: &str) -> Result<Step> {
        let limit = CARDS_LIMIT.to_string();
        let boards = self.boards.join(",");
        let params = [
            ("query", query),
            ("modelTypes", "cards"),
            ("idBoards", boards.as_str()),
            ("card_fields", "name"),
            ("cards_limit", limit.as_str()),
        ];
        let request = self.request("GET", "/1/search", &params)?;
        Ok(Step { name, request, also_ok: &[], keep: keep_cards })
    }

    /// `GET /1/cards/{id}/actions?filter=commentCard`; keeps the full SHAs its comments name.
    fn comments(&self, name: String, card: &str) -> Result<Step> {
        let request = self.request("GET", &format!("/1/cards/{card}/actions"), &[("filter", "commentCard")])?;
        Ok(Step { name, request, also_ok: &[], keep: keep_shas })
    }

    /// `PUT /1/cards/{id}?name=…`; a card gone since the search (404) is a note.
    fn rename(&self, name: String, card: &str, new: &str) -> Result<Step> {
        let request = self.request("PUT", &format!("/1/cards/{card}"), &[("name", new)])?;
        Ok(Step { name, request, also_ok: &[404], keep: keep_renamed })
    }

    /// A request to `path` with `params`, then the key and token (from the environment).
    fn request(&self, method: &'static str, path: &str, params: &[(&str, &str)]) -> Result<Request> {
        let key = secret_from_env(&self.id, &self.key_env, "API key")?;
        let token = secret_from_env(&self.id, &self.token_env, "token")?;
        let query: Vec<String> = params
            .iter()
            .copied()
            .chain([("key", key.as_str()), ("token", token.as_str())])
            .map(|(k, v)| format!("{k}={}", encode(v)))
            .collect();
        let url = format!("{}{path}?{}", self.url, query.join("&"));
        let headers = vec![
            ("accept".to_string(), "application/json".to_string()),
            ("user-agent".to_string(), concat!("prodiff/", env!("CARGO_PKG_VERSION")).to_string()),
        ];
        Ok(Request { method, url, headers, body: String::new() })
    }
}

/// Percent-encodes a query value: all but RFC 3986's unreserved characters and `,` (Trello's
/// list separator).
fn encode(v: &str) -> String {
    let mut out = String::new();
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~,".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The cards of a search answer, `[{id, name}]`.
fn keep_cards(r: &Response) -> Result<Value, String> {
    let v: Value = serde_json::from_str(&r.body).map_err(|e| format!("search: not JSON ({e})"))?;
    let cards = v.get("cards").and_then(Value::as_array).ok_or("search: no `cards` in the answer")?;
    Ok(cards.iter().map(|c| json!({"id": c.get("id"), "name": c.get("name")})).collect())
}

/// The full SHAs (40 hex digits, lower-cased) the comments of a card name.
fn keep_shas(r: &Response) -> Result<Value, String> {
    let v: Value = serde_json::from_str(&r.body).map_err(|e| format!("comments: not JSON ({e})"))?;
    let actions = v.as_array().ok_or("comments: not a list of actions")?;
    let mut shas: Vec<String> =
        actions.iter().filter_map(|a| a.pointer("/data/text").and_then(Value::as_str)).flat_map(full_shas).collect();
    shas.sort();
    shas.dedup();
    Ok(json!(shas))
}

/// Runs of exactly 40 hex digits in `text`.
fn full_shas(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_ascii_hexdigit()).filter(|w| w.len() == 40).map(str::to_ascii_lowercase).collect()
}

/// A renamed card's new name; a card that is gone (404) is a note.
fn keep_renamed(r: &Response) -> Result<Value, String> {
    if r.status == 404 {
        let why = crate::redact::clip(&crate::redact::text(r.body.trim()), 80);
        return Ok(json!({"missing": true, "note": format!("the card is gone (HTTP 404 {why}): skipped")}));
    }
    let v: Value = serde_json::from_str(&r.body).unwrap_or(Value::Null);
    Ok(json!({"name": v.get("name")}))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> TrelloTarget {
        TrelloTarget {
            id: "trello".into(),
            url: "https://api.trello.com".into(),
            key_env: "K".into(),
            token_env: "T".into(),
            boards: vec!["b1".into()],
            environment: "production".into(),
            deployed_prefix: "[[ IN PRODUCTION ]]".into(),
            removed_prefix: "[[ NOT DEPLOYED ]]".into(),
            by_commit: false,
            projects: vec![],
        }
    }

    #[test]
    fn a_prefix_replaces_an_earlier_one_and_is_never_doubled() {
        let t = target();
        assert_eq!(t.renamed("SHOP-1 Cart", Direction::Shipped), "[[ IN PRODUCTION ]] SHOP-1 Cart");
        assert_eq!(t.renamed("[[ IN PRODUCTION ]] SHOP-1 Cart", Direction::Shipped), "[[ IN PRODUCTION ]] SHOP-1 Cart");
        assert_eq!(t.renamed("[[ IN PRODUCTION ]] SHOP-1 Cart", Direction::Removed), "[[ NOT DEPLOYED ]] SHOP-1 Cart");
        assert_eq!(
            t.renamed("[[ NOT DEPLOYED ]] [[ IN PRODUCTION ]]SHOP-1 Cart", Direction::Shipped),
            "[[ IN PRODUCTION ]] SHOP-1 Cart"
        );
        assert_eq!(t.renamed("[[ NOT DEPLOYED ]]", Direction::Shipped), "[[ IN PRODUCTION ]]");
    }

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(encode("[[ IN PRODUCTION ]] a&b=c"), "%5B%5B%20IN%20PRODUCTION%20%5D%5D%20a%26b%3Dc");
        assert_eq!(encode("b1,b2"), "b1,b2");
        assert_eq!(encode("é"), "%C3%A9");
    }

    #[test]
    fn comments_name_full_shas_only() {
        let sha = "0123456789abcdef0123456789ABCDEF01234567";
        let text = format!("Fixed in https://github.com/o/r/commit/{sha} (short: 0123456)");
        assert_eq!(full_shas(&text), [sha.to_ascii_lowercase()]);
        assert!(full_shas(&format!("{sha}0")).is_empty());
    }
}
