//! Ticket keys in commit messages: Jira-style `KEY-123`, GitHub `#123`, or the team's own
//! patterns. Pure: a `TicketMatcher` is built once from config and applied to messages.

pub use crate::config::history::{TicketMatcher, DEFAULT_PATTERNS};

/// Upper-case words that look like Jira keys in ordinary prose (`UTF-8`, `SHA-256`).
/// Only the default Jira pattern skips them; a configured pattern is taken as written.
const NOT_TICKETS: &[&str] = &["UTF", "SHA", "ISO", "RFC", "CVE", "HTTP", "TLS", "SSL", "AES", "RSA", "PEP", "MD"];

impl TicketMatcher {
    /// Ticket keys in `message`, in order of first appearance, without duplicates. A pattern
    /// with a capture group contributes group 1, otherwise its whole match.
    pub fn find(&self, message: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for re in &self.patterns {
            let keys: Vec<(usize, &str)> = if re.captures_len() > 1 {
                re.captures_iter(message).filter_map(|c| c.get(1)).map(|m| (m.start(), m.as_str())).collect()
            } else {
                re.find_iter(message).map(|m| (m.start(), m.as_str())).collect()
            };
            for (start, key) in keys {
                let (trimmed, start) = match self.defaults {
                    true => {
                        let t = key.trim_start_matches(|c| c != '#' && !is_key_start(c));
                        (t, start + key.len() - t.len())
                    }
                    false => (key.trim(), start),
                };
                if trimmed.is_empty() || out.iter().any(|k| k == trimmed) || self.is_prose(message, start, trimmed) {
                    continue;
                }
                out.push(trimmed.to_string());
            }
        }
        out
    }

    /// Whether `key` is one ticket key under these patterns, as a whole.
    pub fn is_key(&self, key: &str) -> bool {
        self.find(key) == [key]
    }

    /// What the default Jira pattern matches but is no ticket: prose words (`UTF-8`), a
    /// project key that is not letter-led (`Z0-9`: one letter, then digits) or is hex
    /// (`F9A9-4151`: four or more hex digits; `DB2-5` is a key), and a piece of a longer dashed run: a character range (`A-Z0-9`), a
    /// UUID, a date (`CVE-2023-1234`). Configured patterns are taken as written.
    fn is_prose(&self, message: &str, start: usize, key: &str) -> bool {
        if !self.defaults || key.starts_with('#') {
            return false;
        }
        let Some((project, _)) = key.split_once('-') else { return false };
        let letters = project.bytes().filter(u8::is_ascii_alphabetic).count();
        // A piece of a hash or UUID (`F9A9-4151`) is four or more hex digits; a short key with
        // a digit (`DB2-5`, `AB1-23`) is a real Jira project.
        let hex = project.len() >= 4
            && project.bytes().all(|b| b.is_ascii_hexdigit())
            && project.bytes().any(|b| b.is_ascii_digit());
        let before = &message.as_bytes()[..start];
        let after = &message.as_bytes()[start + key.len()..];
        let dashed_before = before.last() == Some(&b'-');
        let dashed_after = after.first() == Some(&b'-') && after.get(1).is_some_and(u8::is_ascii_alphanumeric);
        NOT_TICKETS.contains(&project) || letters < 2 || hex || dashed_before || dashed_after
    }
}

/// Where a Jira key can start, to trim the context character a default pattern matched.
fn is_key_start(c: char) -> bool {
    c.is_ascii_uppercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use regex::Regex;

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
    fn ranges_hex_and_dashed_runs_are_not_tickets() {
        let m = TicketMatcher::defaults();
        let msg = "match [A-Z0-9]+ and Z0-9; id 2C5F9A9-4151-4D8E-9C3A-1B2C3D4E5F60; F9A9-4151; CVE-2023-1234";
        assert!(m.find(msg).is_empty(), "{:?}", m.find(msg));
        assert_eq!(m.find("Fix SHOP-42, PAY2-7 and AB_C-3 (#9)"), ["SHOP-42", "PAY2-7", "AB_C-3", "#9"]);
        assert!(m.is_key("SHOP-42"));
        assert!(!m.is_key("CVE-2023-1234") && !m.is_key("SHOP-42 and more") && !m.is_key("Z0-9"));
        // Short project keys with digits, or made of hex letters only, are real keys.
        assert_eq!(m.find("DB2-5 and ABC-123, FACE-9; AB1-23"), ["DB2-5", "ABC-123", "FACE-9", "AB1-23"]);
    }

    #[test]
    fn configured_patterns_replace_the_defaults() {
        let m = TicketMatcher::new(vec![Regex::new(r"\bT[0-9]{3}\b").unwrap()]);
        assert_eq!(m.find("T123 and SHOP-1 and UTF-8"), ["T123"]);
    }
}
