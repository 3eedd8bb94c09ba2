//! Ticket keys in commit messages: Jira-style `KEY-123`, GitHub `#123`, or the team's own
//! patterns. Pure: a `TicketMatcher` is built once from config and applied to messages.

use regex::Regex;

/// The defaults: Jira keys and GitHub issue numbers.
/// ASCII word boundaries (`(?-u:\b)`): ticket keys are ASCII, and Unicode boundaries make
/// the scan of 150k messages several times slower.
/// No capture groups either: `find_iter` runs on the fast DFA, `captures_iter` does not.
/// The GitHub pattern's leading context character is trimmed off afterwards.
pub const DEFAULT_PATTERNS: &[&str] =
    &[r"(?-u:\b)[A-Z][A-Z0-9]+-[0-9]+(?-u:\b)", r"(?:^|[^0-9A-Za-z_&/])#[0-9]+(?-u:\b)"];

/// Upper-case words that look like Jira keys in ordinary prose (`UTF-8`, `SHA-256`).
/// Only the default Jira pattern skips them; a configured pattern is taken as written.
const NOT_TICKETS: &[&str] = &["UTF", "SHA", "ISO", "RFC", "CVE", "HTTP", "TLS", "SSL", "AES", "RSA", "PEP", "MD"];

#[derive(Clone, Debug)]
pub struct TicketMatcher {
    patterns: Vec<Regex>,
    defaults: bool,
}

impl TicketMatcher {
    pub fn defaults() -> TicketMatcher {
        let patterns = DEFAULT_PATTERNS.iter().map(|p| Regex::new(p).expect("default ticket pattern")).collect();
        TicketMatcher { patterns, defaults: true }
    }

    pub fn new(patterns: Vec<Regex>) -> TicketMatcher {
        TicketMatcher { patterns, defaults: false }
    }

    /// Ticket keys in `message`, in order of first appearance, without duplicates. A pattern
    /// with a capture group contributes group 1, otherwise its whole match.
    pub fn find(&self, message: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for re in &self.patterns {
            let keys: Vec<&str> = if re.captures_len() > 1 {
                re.captures_iter(message).filter_map(|c| c.get(1)).map(|m| m.as_str()).collect()
            } else {
                re.find_iter(message).map(|m| m.as_str()).collect()
            };
            for key in keys {
                let key =
                    if self.defaults { key.trim_start_matches(|c| c != '#' && !is_key_start(c)) } else { key.trim() };
                if key.is_empty() || out.iter().any(|k| k == key) || self.is_prose(key) {
                    continue;
                }
                out.push(key.to_string());
            }
        }
        out
    }

    fn is_prose(&self, key: &str) -> bool {
        if !self.defaults {
            return false;
        }
        key.split_once('-').is_some_and(|(p, _)| NOT_TICKETS.contains(&p))
    }
}

/// Where a Jira key can start, to trim the context character a default pattern matched.
fn is_key_start(c: char) -> bool {
    c.is_ascii_uppercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_jira_and_github_keys_once_each() {
        let m = TicketMatcher::defaults();
        let msg = "Fix checkout rounding (SHOP-42)\n\nSee #17 and SHOP-42; refs PAY-7.";
        assert_eq!(m.find(msg), ["SHOP-42", "PAY-7", "#17"]);
    }

    #[test]
    fn prose_and_urls_are_not_tickets() {
        let m = TicketMatcher::defaults();
        assert!(m.find("Decode UTF-8 and SHA-256 per RFC-7231; see a/b#12 and &#38;").is_empty());
    }

    #[test]
    fn configured_patterns_replace_the_defaults() {
        let m = TicketMatcher::new(vec![Regex::new(r"\bT[0-9]{3}\b").unwrap()]);
        assert_eq!(m.find("T123 and SHOP-1 and UTF-8"), ["T123"]);
    }
}
