//! The tickets of a deployment event, as the ticket targets (Jira, Trello) see them: each key
//! the change shipped, each it removed, and the commits naming it. Pure: no I/O.
//!
//! A ticket counts as *removed* when the change removed commits naming it and shipped none
//! that do. The ledger keeps what a change shipped and removed, not every ticket a state
//! holds, so a ticket with two commits of which a rollback removed one counts as removed.

use crate::ledger::{Commit, Span};

/// Whether a change brought a ticket's commits in or took them out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Shipped,
    Removed,
}

/// One ticket of an event.
#[derive(Debug)]
pub struct Ticket<'a> {
    pub key: String,
    pub direction: Direction,
    /// The commits (shipped or removed, by `direction`) whose message names the key.
    pub commits: Vec<&'a Commit>,
}

/// The tickets `span`'s change shipped, then those it removed, each list sorted; only keys
/// `wanted` accepts.
pub fn tickets<'a>(span: &'a Span, wanted: impl Fn(&str) -> bool) -> Vec<Ticket<'a>> {
    let change = &span.change;
    let mut shipped: Vec<String> = change.tickets.clone();
    shipped.extend(change.shipped.iter().flat_map(|c| c.tickets.iter().cloned()));
    shipped.sort();
    shipped.dedup();
    let mut removed: Vec<String> =
        change.removed.iter().flat_map(|c| c.tickets.iter().cloned()).filter(|k| !shipped.contains(k)).collect();
    removed.sort();
    removed.dedup();
    let of = |key: &str, commits: &'a [Commit]| commits.iter().filter(|c| c.tickets.iter().any(|t| t == key)).collect();
    let mut out = Vec::new();
    for (keys, direction, commits) in
        [(shipped, Direction::Shipped, &change.shipped), (removed, Direction::Removed, &change.removed)]
    {
        for key in keys.into_iter().filter(|k| wanted(k)) {
            let commits = of(&key, commits);
            out.push(Ticket { key, direction, commits });
        }
    }
    out
}

/// Whether `key` is a Jira-style issue key (`SHOP-12`: a project key of an upper-case
/// letter, then upper-case letters, digits or `_`, a dash and a number), of one of
/// `projects` when any are given.
pub fn is_jira_key(key: &str, projects: &[String]) -> bool {
    let Some((project, number)) = key.split_once('-') else { return false };
    let project_ok = project.starts_with(|c: char| c.is_ascii_uppercase())
        && project.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
    let number_ok = !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()) && !number.starts_with('0');
    project_ok && number_ok && (projects.is_empty() || projects.iter().any(|p| p == project))
}

/// Whether `key` occurs in `text` as a whole word (not inside `SHOP-1010` or `XSHOP-101`).
pub fn names_key(text: &str, key: &str) -> bool {
    let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
    text.match_indices(key).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let mut after = text[at + key.len()..].chars();
        let (next, then) = (after.next(), after.next());
        // `A-SHOP-101` and `SHOP-101-2` are longer dashed runs, not the key.
        let dashed = before == Some('-') || (next == Some('-') && word(then));
        !word(before) && !word(next) && !dashed
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jira_keys_are_project_dash_number() {
        assert!(is_jira_key("SHOP-12", &[]));
        assert!(is_jira_key("DB2_X-5", &[]));
        assert!(!is_jira_key("#17", &[]));
        assert!(!is_jira_key("shop-12", &[]));
        assert!(!is_jira_key("SHOP-012", &[]));
        assert!(!is_jira_key("SHOP-", &[]));
        assert!(!is_jira_key("2SHOP-1", &[]));
        assert!(is_jira_key("SHOP-12", &["SHOP".to_string()]));
        assert!(!is_jira_key("PAY-12", &["SHOP".to_string()]));
    }

    #[test]
    fn a_key_is_named_only_as_a_whole_word() {
        assert!(names_key("SHOP-101 Faster checkout", "SHOP-101"));
        assert!(names_key("[[ IN PRODUCTION ]] Faster checkout (SHOP-101)", "SHOP-101"));
        assert!(names_key("SHOP-1010 and SHOP-101", "SHOP-101"));
        assert!(!names_key("SHOP-1010 Other", "SHOP-101"));
        assert!(!names_key("XSHOP-101", "SHOP-101"));
        assert!(!names_key("A-SHOP-101", "SHOP-101"));
        assert!(!names_key("SHOP-101-2", "SHOP-101"));
        assert!(names_key("SHOP-101: é", "SHOP-101"));
    }
}
