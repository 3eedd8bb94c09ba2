//! The one redaction layer: every message, finding key, report, baseline and diagnostic
//! (log lines and progress messages included) passes through `text` before a person or a
//! file sees it.
//!
//! Two rules. URLs lose their userinfo (`tcp://user:pw@host` prints as `tcp://host`; a
//! bare `ssh://user@host` keeps its user, which is not a secret). And every secret prodiff
//! read (docker config `auths`, identity tokens, credential-helper answers, tokens from
//! token endpoints, URL userinfo) is `register`ed when it is read and replaced by
//! `[redacted]` in every form it can come back in: raw, base64 of `user:password` (standard,
//! unpadded and URL-safe), JSON-escaped (serde's, `\/` and `\u00XX` styles) and
//! percent-encoded (either hex case), and the combinations (a JSON-escaped base64 header).
//!
//! The registry of secrets is process-wide on purpose: secrets are read deep inside
//! sources and registry clients, and the printing happens far away in `report`; passing a
//! redactor through every layer would make forgetting it the easy path. This module must
//! never print anything itself.

use std::borrow::Cow;
use std::io::{self, Write};
use std::sync::{LazyLock, RwLock};

use base64::Engine as _;
use regex::Regex;

/// What a secret is replaced with: neutral in JSON, XML, markdown and workflow commands.
pub const MARK: &str = "[redacted]";

/// Secrets shorter than this are not searched for: a one-letter password would shred every
/// message. They still never reach output through prodiff's own messages (those never quote
/// credentials); the limit only bounds what an echoing server could bring back.
pub const MIN_SECRET: usize = 4;

/// How much of a server's body, or of a bad value, a message quotes.
pub const EXCERPT: usize = 200;

#[derive(Default)]
struct Secrets {
    /// Every form of every secret, longest first.
    forms: Vec<String>,
    matcher: Option<Regex>,
}

static SECRETS: LazyLock<RwLock<Secrets>> = LazyLock::new(RwLock::default);

/// `scheme://userinfo@`: group 1 is the scheme, group 2 the userinfo.
static USERINFO: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?i)\b([a-z][a-z0-9+.\-]*://)([^/\s@"'<>\[\]]+)@"#).expect("the userinfo pattern compiles")
});

/// Remembers a secret value (a password, a token), so that it is redacted everywhere.
pub fn register(secret: &str) {
    if secret.chars().count() < MIN_SECRET {
        return;
    }
    let mut roots = vec![secret.to_string()];
    roots.extend(base64_forms(secret));
    add(roots);
}

/// Remembers a user name and password: the password, and `user:password` with its base64
/// forms (what a basic `Authorization` header carries). The user alone is not a secret.
pub fn register_login(user: &str, password: &str) {
    register(password);
    let pair = format!("{user}:{password}");
    if password.is_empty() {
        // A token sent as the user of a URL (`https://TOKEN@host`).
        register(user);
    }
    let mut roots = base64_forms(&pair);
    if !password.is_empty() {
        roots.push(pair);
    }
    add(roots);
}

/// Remembers the userinfo of a URL (`https://user:pw@host/…`), if it has one.
pub fn register_url(url: &str) {
    for c in USERINFO.captures_iter(url) {
        let info = percent_decode(&c[2]);
        match info.split_once(':') {
            Some((user, password)) => register_login(user, password),
            None if !c[1].to_ascii_lowercase().starts_with("ssh") => register_login(&info, ""),
            None => {}
        }
    }
}

/// `s` with URL userinfo removed and every registered secret replaced by `[redacted]`.
pub fn text(s: &str) -> String {
    let no_userinfo = USERINFO.replace_all(s, |c: &regex::Captures| {
        let scheme = &c[1];
        let keeps_user = scheme.to_ascii_lowercase().starts_with("ssh") && !c[2].contains(':');
        if keeps_user {
            c[0].to_string()
        } else {
            scheme.to_string()
        }
    });
    let secrets = SECRETS.read().unwrap_or_else(|e| e.into_inner());
    match &secrets.matcher {
        Some(re) => re.replace_all(&no_userinfo, MARK).into_owned(),
        None => no_userinfo.into_owned(),
    }
}

/// A redacted excerpt of at most `EXCERPT` characters (of a body a server sent, of a bad
/// value), with how much was left out.
pub fn excerpt(s: &str) -> String {
    clip(&text(s), EXCERPT)
}

/// `s` cut to `max` characters, saying how many were left out.
pub fn clip(s: &str, max: usize) -> String {
    let n = s.chars().count();
    if n <= max {
        return s.to_string();
    }
    let head: String = s.chars().take(max).collect();
    format!("{head}… ({} more characters)", n - max)
}

/// `message` with every quoted part (`"…"` or `` `…` ``) longer than `EXCERPT` characters
/// cut: parsers quote the bad value whole, and a bad value can be megabytes.
pub fn clip_quoted(message: &str) -> String {
    static QUOTED: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r#""(?:[^"\\]|\\.)*"|`[^`]*`"#).expect("the quote pattern compiles"));
    QUOTED
        .replace_all(message, |c: &regex::Captures| {
            let q = &c[0];
            if q.chars().count() <= EXCERPT + 2 {
                return q.to_string();
            }
            let inner: String = q.chars().skip(1).take(EXCERPT).collect();
            let end = &q[q.len() - 1..];
            format!("{end}{inner}…{end} ({} characters)", q.chars().count() - 2)
        })
        .into_owned()
}

fn add(roots: Vec<String>) {
    let mut secrets = SECRETS.write().unwrap_or_else(|e| e.into_inner());
    let before = secrets.forms.len();
    for root in roots {
        for form in encodings(&root) {
            if form.chars().count() >= MIN_SECRET && !secrets.forms.contains(&form) {
                secrets.forms.push(form);
            }
        }
    }
    if secrets.forms.len() == before {
        return;
    }
    secrets.forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
    let alternation: Vec<String> = secrets.forms.iter().map(|f| regex::escape(f)).collect();
    // Thousands of forms still compile (the literals become one automaton); a failure only
    // keeps the previous matcher, never stops the run.
    if let Ok(re) = regex::RegexBuilder::new(&alternation.join("|")).size_limit(64 << 20).build() {
        secrets.matcher = Some(re);
    }
}

fn base64_forms(s: &str) -> Vec<String> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let mut out: Vec<String> = [STANDARD, STANDARD_NO_PAD].iter().map(|e| e.encode(s)).collect();
    out.extend([URL_SAFE, URL_SAFE_NO_PAD].iter().map(|e| e.encode(s)));
    // Without padding, a longer base64 text holding these bytes at an offset that is not a
    // multiple of three encodes them differently; the unpadded form still matches the
    // common case of a header value on its own.
    out.sort();
    out.dedup();
    out
}

/// The ways one text can come back from a server or a serializer.
fn encodings(root: &str) -> Vec<String> {
    let mut out = vec![root.to_string()];
    out.extend(json_forms(root));
    out.extend(percent_forms(root));
    for j in json_forms(root) {
        out.extend(percent_forms(&j));
    }
    out.sort();
    out.dedup();
    out
}

/// serde's escaping, PHP's (`\/`), Go's (`\u0026` for `&`, `<`, `>`), and every
/// non-alphanumeric character as `\u00XX` (either hex case).
fn json_forms(s: &str) -> Vec<String> {
    let serde = serde_json::to_string(s).map(|q| q[1..q.len() - 1].to_string()).unwrap_or_default();
    let php = serde.replace('/', "\\/");
    let go = |f: &str| f.replace('&', "\\u0026").replace('<', "\\u003c").replace('>', "\\u003e");
    let all = |upper: bool| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_string()
                } else {
                    let mut buf = [0u16; 2];
                    c.encode_utf16(&mut buf)
                        .iter()
                        .map(|u| if upper { format!("\\u{u:04X}") } else { format!("\\u{u:04x}") })
                        .collect()
                }
            })
            .collect()
    };
    vec![serde.clone(), php.clone(), go(&serde), go(&php), all(false), all(true)]
}

/// Percent-encoding of everything but unreserved characters, in both hex cases, and the
/// form encoding (`+` for a space).
fn percent_forms(s: &str) -> Vec<String> {
    let enc = |upper: bool, plus: bool| -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
                b' ' if plus => "+".to_string(),
                _ if upper => format!("%{b:02X}"),
                _ => format!("%{b:02x}"),
            })
            .collect()
    };
    vec![enc(true, false), enc(false, false), enc(true, true)]
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |j: usize| b.get(j).and_then(|c| (*c as char).to_digit(16));
        match (b[i], hex(i + 1), hex(i + 2)) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A writer that redacts what passes through it, line by line (secrets never span lines:
/// every encoding above escapes newlines). `finish` writes the last, unterminated line.
pub struct Writer<'a> {
    inner: &'a mut dyn Write,
    line: Vec<u8>,
}

impl<'a> Writer<'a> {
    pub fn new(inner: &'a mut dyn Write) -> Writer<'a> {
        Writer { inner, line: Vec::new() }
    }

    /// Writes what is left and flushes.
    pub fn finish(mut self) -> io::Result<()> {
        self.emit()?;
        self.inner.flush()
    }

    fn emit(&mut self) -> io::Result<()> {
        if self.line.is_empty() {
            return Ok(());
        }
        let clean: Cow<str> = String::from_utf8_lossy(&self.line);
        self.inner.write_all(text(&clean).as_bytes())?;
        self.line.clear();
        Ok(())
    }
}

impl Write for Writer<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut rest = buf;
        while let Some(i) = rest.iter().position(|b| *b == b'\n') {
            self.line.extend_from_slice(&rest[..=i]);
            self.emit()?;
            rest = &rest[i + 1..];
        }
        self.line.extend_from_slice(rest);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Standard error through the redaction layer, for log lines (the tracing subscriber
/// writes each event with one call, so each call is redacted as a whole).
#[derive(Default)]
pub struct Stderr;

impl Write for Stderr {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        io::stderr().write_all(text(&String::from_utf8_lossy(buf)).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        // Few cases: each registration rebuilds the matcher, and the registry is shared by
        // every test of this binary (hence the prefix: no other test's text can match).
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]

        /// Redaction is total: any text, any registered secret, never a panic, and the
        /// secret never survives.
        #[test]
        fn redaction_never_panics_and_never_misses(s in ".{0,200}", tail in "[ -~]{1,30}") {
            let secret = format!("pt-secret-{tail}");
            register(&secret);
            let out = text(&format!("{s}{secret}{s}"));
            proptest::prop_assert!(!out.contains(&secret), "{out}");
            let _ = clip_quoted(&s);
            let _ = excerpt(&s);
        }
    }

    #[test]
    fn userinfo_is_removed_but_an_ssh_user_stays() {
        assert_eq!(
            text("Docker host tcp://ops:Pw-1@10.0.0.5:2376: refused"),
            "Docker host tcp://10.0.0.5:2376: refused"
        );
        assert_eq!(text("see https://tok3n@git.example/x"), "see https://git.example/x");
        assert_eq!(text("ssh://deploy@host"), "ssh://deploy@host");
        assert_eq!(text("ssh://deploy:pw@host"), "ssh://host");
        assert_eq!(text("mail ada@example.com"), "mail ada@example.com");
    }

    #[test]
    fn a_login_is_redacted_in_every_encoding() {
        let (user, pw) = ("canary-user-rd1", "pw/with&odd+chars=rd1");
        register_login(user, pw);
        let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pw}"));
        let json = serde_json::to_string(&b64).unwrap();
        for leak in [
            pw.to_string(),
            b64.clone(),
            b64.replace('/', "\\/"),
            json.clone(),
            pw.replace('&', "\\u0026"),
            pw.replace('/', "%2F").replace('&', "%26").replace('+', "%2B").replace('=', "%3D"),
            b64.replace('/', "%2f").replace('+', "%2b").replace('=', "%3d"),
        ] {
            let out = text(&format!("the server said {{\"detail\":\"{leak}\"}}"));
            assert!(out.contains(MARK) && !out.contains(&leak), "{leak} -> {out}");
        }
    }

    #[test]
    fn the_writer_redacts_across_writes_and_excerpts_are_short() {
        register("wr1ter-s3cret");
        let mut out = Vec::new();
        let mut w = Writer::new(&mut out);
        w.write_all(b"a wr1ter-").unwrap();
        w.write_all(b"s3cret b\nlast wr1ter-s3cret").unwrap();
        w.finish().unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "a [redacted] b\nlast [redacted]");
        let bad = format!("invalid type: string \"{}\", expected a map", "y".repeat(8_000_000));
        let clipped = clip_quoted(&bad);
        assert!(clipped.len() < 400 && clipped.ends_with("(8000000 characters), expected a map"), "{clipped}");
        let long = "x".repeat(10_000);
        assert_eq!(excerpt(&long).chars().count(), EXCERPT + "… (9800 more characters)".chars().count());
    }
}
