//! `[report]` in prodiff.toml: how reports present what they found. For now, where ticket
//! keys link to in the HTML report (`ticket_url`), checked when the config is read so a
//! bad template is a config error naming its line.

/// `[report] ticket_url`: a URL with a `{key}` placeholder (`https://jira.example.com/browse/{key}`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TicketTemplate(String);

impl TicketTemplate {
    /// Checks the template: an http(s) URL with a `{key}` placeholder and nothing that
    /// cannot stand in a URL. The error says what is wrong, for the config error.
    pub fn parse(template: &str) -> Result<TicketTemplate, String> {
        let example = "for example \"https://jira.example.com/browse/{key}\"";
        if !(template.starts_with("https://") || template.starts_with("http://")) {
            return Err(format!("{template:?} is not an http:// or https:// URL ({example})"));
        }
        if !template.contains("{key}") {
            return Err(format!("{template:?} has no {{key}} placeholder ({example})"));
        }
        if let Some(c) = template.chars().find(|c| c.is_whitespace() || c.is_control() || "\"'<>`\\".contains(*c)) {
            return Err(format!("{template:?} contains {c:?}, which cannot stand in a URL"));
        }
        Ok(TicketTemplate(template.to_string()))
    }

    /// The URL of ticket `key`, percent-encoded into the placeholder.
    pub fn url(&self, key: &str) -> String {
        self.0.replace("{key}", &percent_encode(key))
    }
}

/// RFC 3986 unreserved characters stay, everything else is `%XX`.
fn percent_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticket_templates_are_checked_and_filled_percent_encoded() {
        let t = TicketTemplate::parse("https://jira.example.com/browse/{key}").unwrap();
        assert_eq!(t.url("SHOP-1"), "https://jira.example.com/browse/SHOP-1");
        assert_eq!(t.url("a b&c"), "https://jira.example.com/browse/a%20b%26c");
        assert!(TicketTemplate::parse("https://jira.example.com/browse/").unwrap_err().contains("no {key}"));
        assert!(TicketTemplate::parse("javascript:alert(1)//{key}").unwrap_err().contains("not an http"));
        assert!(TicketTemplate::parse("https://x/{key}\"><b>").unwrap_err().contains("cannot stand"));
    }
}
