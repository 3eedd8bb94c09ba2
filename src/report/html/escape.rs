//! The one HTML escaping function. Every piece of text on a page that did not come from
//! this module's callers' string literals (inventory values, labels, commit messages,
//! server answers, names from the config, URLs) passes through `esc`, in element content
//! and in attribute values alike (attributes are always double-quoted).
//!
//! Escaping changes how a secret is spelt (`&` becomes `&amp;`), which would hide it from
//! the output writer's redaction; so every value is redacted first, then escaped.

use std::borrow::Cow;

/// `s`, redacted, as HTML text: `&`, `<`, `>`, `"` and `'` become character references, and
/// control characters other than tab and newline (which HTML would otherwise reject or
/// show as nothing) become U+FFFD.
pub fn esc(s: &str) -> Cow<'_, str> {
    let redacted = crate::redact::text(s);
    if redacted != s {
        return Cow::Owned(escape(&redacted).into_owned());
    }
    escape(s)
}

fn escape(s: &str) -> Cow<'_, str> {
    let special = |c: char| matches!(c, '&' | '<' | '>' | '"' | '\'') || (c.is_control() && c != '\n' && c != '\t');
    if !s.chars().any(special) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' && c != '\t' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::esc;

    #[test]
    fn markup_and_quotes_become_text() {
        assert_eq!(esc("<script>alert('x')</script>"), "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;");
        assert_eq!(esc("a \"b\" & c"), "a &quot;b&quot; &amp; c");
        assert_eq!(esc("nul\u{0}bell\u{7}"), "nul\u{fffd}bell\u{fffd}");
        assert!(matches!(esc("plain text"), std::borrow::Cow::Borrowed(_)));
    }

    #[test]
    fn secrets_are_redacted_before_they_are_escaped() {
        crate::redact::register("pa&ss<word>42");
        assert_eq!(esc("token pa&ss<word>42 here"), "token [redacted] here");
        assert_eq!(esc("https://user:pw@example.com/x"), "https://example.com/x");
    }
}
