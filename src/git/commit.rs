//! Reading a raw commit object, so that one read of each commit serves both the walk
//! (parents, committer date) and the report (author, dates, message). Pure: bytes in,
//! borrowed fields out. Follows git's and libgit2's parsing: headers up to the first blank
//! line (continuation lines of `gpgsig` and `mergetag` start with a space), the message after
//! it with leading newlines dropped, identities as `Name <email> seconds zone`.

use git2::Oid;

/// The parts of a commit object prodiff uses, borrowed from its bytes.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Commit<'a> {
    pub parents: usize,
    pub author_name: &'a [u8],
    pub author_email: &'a [u8],
    pub author_time: i64,
    pub committer_time: i64,
    pub message: &'a [u8],
}

/// What is wrong with an object that should be a commit.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Malformed(pub &'static str);

/// Only what the walk needs: the parents and the committer date. Stops at the committer line.
pub(super) fn parents_and_date(raw: &[u8], parents: &mut Vec<Oid>) -> Result<i64, Malformed> {
    for line in Headers::new(raw) {
        if let Some(hex) = line.strip_prefix(b"parent ") {
            parents.push(oid(hex)?);
        } else if let Some(ident) = line.strip_prefix(b"committer ") {
            return Ok(identity(ident)?.2);
        }
    }
    Err(Malformed("no committer"))
}

/// The root tree: the first header line.
pub(super) fn tree(raw: &[u8]) -> Result<Oid, Malformed> {
    let hex = Headers::new(raw).next().and_then(|l| l.strip_prefix(b"tree ")).ok_or(Malformed("no tree"))?;
    oid(hex)
}

pub(super) fn parse(raw: &[u8]) -> Result<Commit<'_>, Malformed> {
    let mut parents = 0;
    let mut author = None;
    let mut committer_time = None;
    let mut headers = Headers::new(raw);
    for line in headers.by_ref() {
        if let Some(hex) = line.strip_prefix(b"parent ") {
            oid(hex)?;
            parents += 1;
        } else if let Some(ident) = line.strip_prefix(b"author ") {
            if author.is_none() {
                author = Some(identity(ident)?);
            }
        } else if let Some(ident) = line.strip_prefix(b"committer ") {
            if committer_time.is_none() {
                committer_time = Some(identity(ident)?.2);
            }
        }
    }
    let (author_name, author_email, author_time) = author.ok_or(Malformed("no author"))?;
    let committer_time = committer_time.ok_or(Malformed("no committer"))?;
    let message = headers.body.map_or(&[][..], |at| &raw[at..]);
    let start = message.iter().position(|&b| b != b'\n').unwrap_or(message.len());
    Ok(Commit { parents, author_name, author_email, author_time, committer_time, message: &message[start..] })
}

/// The first paragraph of a message on one line, as `git log --format=%s` and libgit2's
/// summary print it: its lines joined by single spaces, trailing whitespace dropped.
pub(super) fn summary(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, line) in message.split(|&b| b == b'\n').enumerate() {
        if i > 0 && line.iter().all(u8::is_ascii_whitespace) {
            break;
        }
        if !out.is_empty() {
            out.push(b' ');
        }
        let end = line.iter().rposition(|b| !b.is_ascii_whitespace()).map_or(0, |i| i + 1);
        let start = if out.is_empty() { 0 } else { line.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(0) };
        out.extend_from_slice(&line[start..end]);
    }
    out
}

/// The header lines, without continuation lines, up to the blank line before the message;
/// then `body` is where the message starts. One pass over the bytes: on walks of 100k+
/// commits this parse is a good part of the time.
struct Headers<'a> {
    raw: &'a [u8],
    at: usize,
    body: Option<usize>,
}

impl<'a> Headers<'a> {
    fn new(raw: &'a [u8]) -> Headers<'a> {
        Headers { raw, at: 0, body: None }
    }
}

impl<'a> Iterator for Headers<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        while self.at < self.raw.len() {
            let rest = &self.raw[self.at..];
            let line = &rest[..memchr::memchr(b'\n', rest).unwrap_or(rest.len())];
            self.at += line.len() + 1;
            if line.is_empty() {
                self.body = Some(self.at.min(self.raw.len()));
                self.at = self.raw.len();
                return None;
            }
            if line[0] != b' ' {
                return Some(line);
            }
        }
        None
    }
}

/// 40 hex digits (trailing whitespace allowed) into an id.
fn oid(hex: &[u8]) -> Result<Oid, Malformed> {
    let bad = Malformed("a parent id is not hex");
    let hex = &hex[..hex.iter().rposition(|b| !b.is_ascii_whitespace()).map_or(0, |i| i + 1)];
    if hex.len() != 40 {
        return Err(bad);
    }
    let mut bytes = [0u8; 20];
    for (i, pair) in hex.chunks_exact(2).enumerate() {
        let (hi, lo) = (NIBBLE[pair[0] as usize], NIBBLE[pair[1] as usize]);
        if (hi | lo) & 0x10 != 0 {
            return Err(bad);
        }
        bytes[i] = (hi << 4) | lo;
    }
    Oid::from_bytes(&bytes).map_err(|_| bad)
}

/// Each byte's value as a hex digit; 0x10 for bytes that are not one.
const NIBBLE: [u8; 256] = {
    let mut t = [0x10u8; 256];
    let mut c = 0;
    while c < 256 {
        t[c] = match c as u8 {
            b'0'..=b'9' => c as u8 - b'0',
            b'a'..=b'f' => c as u8 - b'a' + 10,
            b'A'..=b'F' => c as u8 - b'A' + 10,
            _ => 0x10,
        };
        c += 1;
    }
    t
};

/// `Name <email> seconds zone` into name, email and seconds (the zone is not needed: dates
/// are reported in UTC).
fn identity(ident: &[u8]) -> Result<(&[u8], &[u8], i64), Malformed> {
    let open = memchr::memrchr(b'<', ident).ok_or(Malformed("an identity has no <email>"))?;
    let close = memchr::memrchr(b'>', ident).filter(|&c| c > open);
    let close = close.ok_or(Malformed("an identity has no <email>"))?;
    let name = trim(&ident[..open]);
    let email = trim(&ident[open + 1..close]);
    Ok((name, email, seconds(&ident[close + 1..])))
}

/// The first word after the email as a signed number of seconds; 0 when it is not one.
fn seconds(rest: &[u8]) -> i64 {
    let rest = trim(rest);
    let word = &rest[..memchr::memchr(b' ', rest).unwrap_or(rest.len())];
    let (negative, digits) = match word.split_first() {
        Some((b'-', d)) => (true, d),
        Some((b'+', d)) => (false, d),
        _ => (false, word),
    };
    if digits.is_empty() {
        return 0;
    }
    let mut n: i64 = 0;
    for &c in digits {
        let d = match c {
            b'0'..=b'9' => (c - b'0') as i64,
            _ => return 0,
        };
        n = match n.checked_mul(10).and_then(|n| if negative { n.checked_sub(d) } else { n.checked_add(d) }) {
            Some(n) => n,
            None => return 0,
        };
    }
    n
}

fn trim(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|c| !c.is_ascii_whitespace()).unwrap_or(b.len());
    let end = b.iter().rposition(|c| !c.is_ascii_whitespace()).map_or(start, |i| i + 1);
    &b[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIGNED: &[u8] = b"tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n\
parent 1111111111111111111111111111111111111111\n\
parent 2222222222222222222222222222222222222222\n\
author Ana Lima <ana@example.com> 1700000000 +0100\n\
committer CI Bot <ci@example.com> 1700000100 -0500\n\
gpgsig -----BEGIN PGP SIGNATURE-----\n \n parent 3333333333333333333333333333333333333333\n -----END PGP SIGNATURE-----\n\
\n\n  Fix the thing\n  across lines  \n\nBody KEY-1\n";

    #[test]
    fn reads_parents_identities_and_message_but_not_signature_lines() {
        let c = parse(SIGNED).unwrap();
        assert_eq!(c.parents, 2);
        assert_eq!(
            (c.author_name, c.author_email, c.author_time),
            (&b"Ana Lima"[..], &b"ana@example.com"[..], 1700000000)
        );
        assert_eq!(c.committer_time, 1700000100);
        assert_eq!(c.message, b"  Fix the thing\n  across lines  \n\nBody KEY-1\n");
        assert_eq!(summary(c.message), b"  Fix the thing across lines");
        let mut parents = Vec::new();
        assert_eq!(parents_and_date(SIGNED, &mut parents), Ok(1700000100));
        assert_eq!(tree(SIGNED), Ok(Oid::from_str("4b825dc642cb6eb9a060e54bf8d69288fbee4904").unwrap()));
        let two = ["1111111111111111111111111111111111111111", "2222222222222222222222222222222222222222"];
        assert_eq!(parents, two.map(|h| Oid::from_str(h).unwrap()));
    }

    #[test]
    fn a_commit_without_a_committer_is_malformed() {
        assert_eq!(parse(b"tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n\nmsg\n"), Err(Malformed("no author")));
        assert!(parents_and_date(b"tree x\nparent zz\n\n", &mut Vec::new()).is_err());
    }

    #[test]
    fn dates_and_ids_parse_as_git_writes_them_and_anything_else_is_refused_or_zero() {
        assert_eq!(seconds(b" 1700000000 +0100"), 1700000000);
        assert_eq!(seconds(b" -5 +0000"), -5);
        assert_eq!(seconds(b" 99999999999999999999 +0000"), 0, "overflow");
        assert_eq!((seconds(b" x1 +0000"), seconds(b""), seconds(b" - +0000")), (0, 0, 0));
        let id = "0123456789abcdefABCDEF0123456789abcdef01";
        assert_eq!(oid(format!("{id} \r").as_bytes()), Ok(Oid::from_str(id).unwrap()));
        assert!(oid(&id.as_bytes()[..39]).is_err());
        assert!(oid(id.replace('f', "g").as_bytes()).is_err());
    }

    #[test]
    fn an_empty_message_has_an_empty_summary() {
        let raw =
            b"tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\nauthor A <a@b> 1 +0000\ncommitter A <a@b> 2 +0000\n\n";
        let c = parse(raw).unwrap();
        assert_eq!((c.message, summary(c.message)), (&b""[..], vec![]));
    }
}
