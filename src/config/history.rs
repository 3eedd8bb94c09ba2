//! History's section of prodiff.toml (`[tickets]`): the ticket patterns, as plain data.
//! Config builds the matcher; `history::tickets` applies it to commit messages.

use regex::Regex;

/// The defaults: Jira keys and GitHub issue numbers.
/// ASCII word boundaries (`(?-u:\b)`): ticket keys are ASCII, and Unicode boundaries make
/// the scan of 150k messages several times slower.
/// No capture groups either: `find_iter` runs on the fast DFA, `captures_iter` does not.
/// The GitHub pattern's leading context character is trimmed off afterwards.
pub const DEFAULT_PATTERNS: &[&str] =
    &[r"(?-u:\b)[A-Z][A-Z0-9_]+-[0-9]+(?-u:\b)", r"(?:^|[^0-9A-Za-z_&/])#[0-9]+(?-u:\b)"];

#[derive(Clone, Debug)]
pub struct TicketMatcher {
    pub(crate) patterns: Vec<Regex>,
    pub(crate) defaults: bool,
}

impl TicketMatcher {
    pub fn defaults() -> TicketMatcher {
        let patterns = DEFAULT_PATTERNS.iter().map(|p| Regex::new(p).expect("default ticket pattern")).collect();
        TicketMatcher { patterns, defaults: true }
    }

    pub fn new(patterns: Vec<Regex>) -> TicketMatcher {
        TicketMatcher { patterns, defaults: false }
    }
}
