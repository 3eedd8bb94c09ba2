//! git's packfiles read directly (`objects/pack/*.idx`, version 2, and their `.pack`), for the
//! object reads that dominate a walk without a commit-graph: libgit2 serialises pack reads
//! behind one lock and inflates through zlib's streaming interface, where an id lookup here is
//! the index's fan-out table and a binary search in a mapped file, and an object one call to
//! libdeflate (its size is in the pack, so it inflates in one go into a buffer of that size).
//! OFS and REF deltas are resolved, with a small cache of delta bases as git keeps one. The
//! formats are git's Documentation/gitformat-pack.txt.
//!
//! It only reads, and only what it was opened on: loose objects, alternates, a pack written
//! after it was opened or a version-1 index are not found here ([`Reader::read`] answers
//! `None`), and the caller asks libgit2. A pack or index whose header does not parse is left
//! to libgit2 the same way. Every offset and size read from a file is checked before it is
//! used: a truncated or corrupt pack is an [`Corrupt`] error naming the pack, never a panic.

use std::fs;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

const HASH: usize = 20;
/// An index v2: magic, version, fan-out, then per object an id, a CRC and a 31-bit offset.
const IDX_MAGIC: &[u8] = b"\xfftOc\0\0\0\x02";
const IDX_HEADER: usize = 8 + 256 * 4;
/// Deltas on deltas deeper than this are taken for a cycle (git's own limit is 4095).
const MAX_CHAIN: usize = 10_000;
/// Slots of the delta-base cache, and the bytes it may hold (git keeps up to 96 MiB).
const CACHE_SLOTS: usize = 1024;
const CACHE_BYTES: usize = 32 << 20;

/// An object's type, as the pack numbers it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Commit,
    Tree,
    Blob,
    Tag,
}

impl Kind {
    fn from_pack(t: u8) -> Option<Kind> {
        Some(match t {
            1 => Kind::Commit,
            2 => Kind::Tree,
            3 => Kind::Blob,
            4 => Kind::Tag,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Commit => "commit",
            Kind::Tree => "tree",
            Kind::Blob => "blob",
            Kind::Tag => "tag",
        }
    }
}

/// A pack that does not hold what its index or its own headers say.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Corrupt(pub String);

/// The packs of one object directory, mapped. Shared between threads; each reads through its
/// own [`Reader`].
pub(super) struct Packs {
    packs: Vec<Pack>,
}

struct Pack {
    path: PathBuf,
    idx: Mmap,
    data: Mmap,
    count: usize,
}

impl Packs {
    /// The usable packs under `objects/pack`; none when there is no such directory.
    pub fn open(objects: &Path) -> Packs {
        let Ok(dir) = fs::read_dir(objects.join("pack")) else { return Packs { packs: Vec::new() } };
        let mut idx_paths: Vec<PathBuf> = dir
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "idx"))
            .collect();
        idx_paths.sort();
        // Newest first, as git orders them: recent objects are looked up most.
        let mut packs: Vec<(std::time::SystemTime, Pack)> = idx_paths
            .iter()
            .filter_map(|idx| Pack::open(idx).map(|p| (fs::metadata(&p.path).and_then(|m| m.modified()), p)))
            .map(|(t, p)| (t.unwrap_or(std::time::UNIX_EPOCH), p))
            .collect();
        packs.sort_by_key(|p| std::cmp::Reverse(p.0));
        Packs { packs: packs.into_iter().map(|(_, p)| p).collect() }
    }

    /// Which pack holds `oid`, and at which offset.
    fn find(&self, oid: &[u8], hint: usize) -> Option<(usize, u64)> {
        if let Some(ofs) = self.packs.get(hint).and_then(|p| p.find(oid)) {
            return Some((hint, ofs));
        }
        self.packs.iter().enumerate().filter(|(i, _)| *i != hint).find_map(|(i, p)| p.find(oid).map(|o| (i, o)))
    }
}

impl Pack {
    /// The index at `idx` and its pack, if both parse: an index v2 whose fan-out ends at its
    /// object count, and a pack of version 2 or 3 with as many objects. Anything else is
    /// left to libgit2.
    fn open(idx_path: &Path) -> Option<Pack> {
        let path = idx_path.with_extension("pack");
        let map = |p: &Path| -> Option<Mmap> {
            let file = fs::File::open(p).ok()?;
            // SAFETY: git writes packs and indexes under temporary names and renames them into
            // place; it never changes one in place (a repack deletes them, and a mapping of a
            // deleted file stays readable), so the mapping stays what was validated.
            unsafe { Mmap::map(&file) }.ok()
        };
        let (idx, data) = (map(idx_path)?, map(&path)?);
        if idx.len() < IDX_HEADER + 2 * HASH || &idx[..8] != IDX_MAGIC {
            return None;
        }
        let fan = |i: usize| u32::from_be_bytes(idx[8 + i * 4..12 + i * 4].try_into().expect("4 bytes"));
        let count = fan(255) as usize;
        if (1..256).any(|i| fan(i) < fan(i - 1)) || idx.len() < IDX_HEADER + count * (HASH + 8) + 2 * HASH {
            return None;
        }
        let version = data.get(4..8).map(|v| u32::from_be_bytes(v.try_into().expect("4 bytes")));
        let objects = data.get(8..12).map(|v| u32::from_be_bytes(v.try_into().expect("4 bytes")) as usize);
        if data.len() < 12 + HASH || &data[..4] != b"PACK" || !matches!(version, Some(2 | 3)) || objects != Some(count)
        {
            return None;
        }
        Some(Pack { path, idx, data, count })
    }

    fn fanout(&self, byte: usize) -> usize {
        u32::from_be_bytes(self.idx[8 + byte * 4..12 + byte * 4].try_into().expect("4 bytes")) as usize
    }

    fn oid_at(&self, i: usize) -> &[u8] {
        &self.idx[IDX_HEADER + i * HASH..IDX_HEADER + (i + 1) * HASH]
    }

    fn find(&self, oid: &[u8]) -> Option<u64> {
        let first = oid[0] as usize;
        let (mut lo, mut hi) = (if first == 0 { 0 } else { self.fanout(first - 1) }, self.fanout(first));
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.oid_at(mid).cmp(oid) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Some(self.offset(mid)),
            }
        }
        None
    }

    /// The pack offset of index entry `i`: 31 bits, or an index into the 64-bit table. An
    /// offset past the table reads as 0, which no object has (the read then fails).
    fn offset(&self, i: usize) -> u64 {
        let small = IDX_HEADER + self.count * (HASH + 4) + i * 4;
        let v = u32::from_be_bytes(self.idx[small..small + 4].try_into().expect("4 bytes"));
        if v & 0x8000_0000 == 0 {
            return v as u64;
        }
        let large = IDX_HEADER + self.count * (HASH + 8) + (v & 0x7fff_ffff) as usize * 8;
        match self.idx.get(large..large + 8) {
            Some(b) => u64::from_be_bytes(b.try_into().expect("8 bytes")),
            None => 0,
        }
    }

    /// The objects' bytes end where the pack's trailing checksum starts.
    fn body(&self) -> &[u8] {
        &self.data[..self.data.len() - HASH]
    }
}

/// One entry's header: its type, its inflated size and where its deflated data starts, and
/// for a delta what it is a delta on.
struct Entry {
    kind: u8,
    size: usize,
    data: usize,
    base: Base,
}

enum Base {
    None,
    Offset(u64),
    Id([u8; HASH]),
}

fn entry(body: &[u8], ofs: u64) -> Result<Entry, &'static str> {
    let truncated = "an object header runs past the end of the pack";
    let mut at = usize::try_from(ofs).ok().filter(|&o| o >= 12).ok_or("an offset points into the pack header")?;
    let byte = |at: &mut usize| -> Result<u8, &'static str> {
        let b = *body.get(*at).ok_or(truncated)?;
        *at += 1;
        Ok(b)
    };
    let mut c = byte(&mut at)?;
    let kind = (c >> 4) & 7;
    let mut size = (c & 15) as u64;
    let mut shift = 4;
    while c & 0x80 != 0 {
        c = byte(&mut at)?;
        if shift > 57 {
            return Err("an object size does not fit in 64 bits");
        }
        size |= ((c & 0x7f) as u64) << shift;
        shift += 7;
    }
    let size = usize::try_from(size).map_err(|_| "an object is larger than memory")?;
    let base = match kind {
        6 => {
            let mut c = byte(&mut at)?;
            let mut back = (c & 0x7f) as u64;
            while c & 0x80 != 0 {
                c = byte(&mut at)?;
                back = back.checked_add(1).and_then(|b| b.checked_mul(128)).ok_or("a delta's base offset overflows")?
                    + (c & 0x7f) as u64;
            }
            Base::Offset(
                ofs.checked_sub(back).filter(|&b| back > 0 && b >= 12).ok_or("a delta's base lies outside the pack")?,
            )
        }
        7 => {
            let id = body.get(at..at + HASH).ok_or(truncated)?;
            at += HASH;
            Base::Id(id.try_into().expect("20 bytes"))
        }
        1..=4 => Base::None,
        _ => return Err("an object has an unknown type"),
    };
    Ok(Entry { kind, size, data: at, base })
}

/// Reads objects out of [`Packs`]; one per thread (it keeps its inflater and delta-base cache).
pub(super) struct Reader {
    inflater: libdeflater::Decompressor,
    /// The pack that answered last: commits of one history tend to share a pack.
    last: usize,
    cache: Vec<Option<Cached>>,
    cached_bytes: usize,
    delta: Vec<u8>,
}

struct Cached {
    pack: usize,
    ofs: u64,
    kind: Kind,
    bytes: Vec<u8>,
}

impl Default for Reader {
    fn default() -> Reader {
        Reader {
            inflater: libdeflater::Decompressor::new(),
            last: 0,
            cache: Vec::new(),
            cached_bytes: 0,
            delta: Vec::new(),
        }
    }
}

impl Reader {
    /// The object `oid` into `out` (replacing what it held), with its kind; `None` when no
    /// pack has it.
    pub fn read(&mut self, packs: &Packs, oid: &[u8], out: &mut Vec<u8>) -> Result<Option<Kind>, Corrupt> {
        let Some((pack, ofs)) = packs.find(oid, self.last) else { return Ok(None) };
        self.last = pack;
        self.read_at(packs, pack, ofs, out).map(Some).map_err(|why| {
            let path = packs.packs[pack].path.display();
            Corrupt(format!("{path}: object {} at offset {ofs}: {why}", hex(oid)))
        })
    }

    /// The object at `ofs` in pack `pack`: its chain of deltas followed down to a whole object
    /// (or one in the cache), then the deltas applied back up. Every base on the way and a
    /// delta's result are cached: the next commit of a walk is usually a delta on one of them.
    fn read_at(&mut self, packs: &Packs, pack: usize, ofs: u64, out: &mut Vec<u8>) -> Result<Kind, String> {
        let mut chain: Vec<(usize, u64, Entry)> = Vec::new();
        let (mut at_pack, mut at) = (pack, ofs);
        let kind = loop {
            if let Some(c) = self.cached(at_pack, at) {
                out.clear();
                out.extend_from_slice(&c.bytes);
                break c.kind;
            }
            let body = packs.packs[at_pack].body();
            let e = entry(body, at)?;
            match e.base {
                Base::None => {
                    inflate(&mut self.inflater, body, &e, out)?;
                    break Kind::from_pack(e.kind).expect("1 to 4 are object types");
                }
                Base::Offset(base) => {
                    chain.push((at_pack, at, e));
                    at = base;
                }
                Base::Id(id) => {
                    chain.push((at_pack, at, e));
                    (at_pack, at) = packs.find(&id, at_pack).ok_or("the base of a delta is in no pack")?;
                }
            }
            if chain.len() > MAX_CHAIN {
                return Err("a chain of deltas does not end".into());
            }
        };
        if chain.is_empty() {
            return Ok(kind);
        }
        let mut result = std::mem::take(out);
        while let Some((p, o, e)) = chain.pop() {
            let mut delta = std::mem::take(&mut self.delta);
            inflate(&mut self.inflater, packs.packs[p].body(), &e, &mut delta)?;
            self.cache(at_pack, at, kind, &result);
            let mut next = Vec::new();
            apply(&result, &delta, &mut next)?;
            self.delta = delta;
            (result, at_pack, at) = (next, p, o);
        }
        self.cache(at_pack, at, kind, &result);
        *out = result;
        Ok(kind)
    }

    fn slot(pack: usize, ofs: u64) -> usize {
        ((ofs ^ (pack as u64).rotate_left(48)).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 54) as usize % CACHE_SLOTS
    }

    fn cached(&self, pack: usize, ofs: u64) -> Option<&Cached> {
        self.cache.get(Self::slot(pack, ofs))?.as_ref().filter(|c| c.pack == pack && c.ofs == ofs)
    }

    fn cache(&mut self, pack: usize, ofs: u64, kind: Kind, bytes: &[u8]) {
        if self.cached(pack, ofs).is_some() {
            return;
        }
        if self.cache.is_empty() {
            self.cache.resize_with(CACHE_SLOTS, || None);
        }
        let slot = &mut self.cache[Self::slot(pack, ofs)];
        let freed = slot.as_ref().map_or(0, |c| c.bytes.len());
        if self.cached_bytes - freed + bytes.len() > CACHE_BYTES {
            return;
        }
        self.cached_bytes = self.cached_bytes - freed + bytes.len();
        *slot = Some(Cached { pack, ofs, kind, bytes: bytes.to_vec() });
    }
}

/// Inflates an entry's data into `out`, which it must fill exactly. (Deflate expands at most
/// 1032 to 1: a header claiming more than that of what is left of the pack is corrupt, and is
/// not allocated.)
fn inflate(inflater: &mut libdeflater::Decompressor, body: &[u8], e: &Entry, out: &mut Vec<u8>) -> Result<(), String> {
    let input = &body[e.data..];
    if e.size / 1032 > input.len() {
        return Err(format!("its header says {} bytes, more than the rest of the pack inflates to", e.size));
    }
    out.clear();
    out.resize(e.size, 0);
    let n = inflater.zlib_decompress(input, out).map_err(|err| match err {
        libdeflater::DecompressionError::BadData => "its data does not inflate (corrupt or truncated)".to_string(),
        libdeflater::DecompressionError::InsufficientSpace => {
            format!("it inflates to more than the {} bytes its header says", e.size)
        }
    })?;
    if n != e.size {
        return Err(format!("it inflates to {n} bytes, its header says {}", e.size));
    }
    Ok(())
}

/// Applies a git delta (sizes, then copy and insert instructions) to `base`, into `out`.
fn apply(base: &[u8], delta: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
    let mut at = 0;
    let (base_size, size) = (varint(delta, &mut at)?, varint(delta, &mut at)?);
    if base_size != base.len() {
        return Err(format!("a delta expects a base of {base_size} bytes, the base has {}", base.len()));
    }
    out.clear();
    // A corrupt size is not allocated up front: the result grows as instructions produce it.
    out.reserve_exact(size.min(base.len() + delta.len()));
    let bad = || "a delta instruction runs past the delta or its base".to_string();
    while at < delta.len() {
        let op = delta[at];
        at += 1;
        if op & 0x80 != 0 {
            let mut arg = |bits: u8, shift: u32, v: &mut usize| -> Result<(), String> {
                if op & bits != 0 {
                    *v |= (*delta.get(at).ok_or_else(bad)? as usize) << shift;
                    at += 1;
                }
                Ok(())
            };
            let (mut ofs, mut len) = (0usize, 0usize);
            for (i, bit) in [1u8, 2, 4, 8].into_iter().enumerate() {
                arg(bit, 8 * i as u32, &mut ofs)?;
            }
            for (i, bit) in [16u8, 32, 64].into_iter().enumerate() {
                arg(bit, 8 * i as u32, &mut len)?;
            }
            if len == 0 {
                len = 0x10000;
            }
            out.extend_from_slice(base.get(ofs..ofs.checked_add(len).ok_or_else(bad)?).ok_or_else(bad)?);
        } else if op != 0 {
            let n = op as usize;
            out.extend_from_slice(delta.get(at..at + n).ok_or_else(bad)?);
            at += n;
        } else {
            return Err("a delta has the reserved instruction 0".into());
        }
        if out.len() > size {
            return Err(bad());
        }
    }
    if out.len() != size {
        return Err(format!("a delta gives {} bytes, it says {size}", out.len()));
    }
    Ok(())
}

fn varint(b: &[u8], at: &mut usize) -> Result<usize, String> {
    let (mut v, mut shift) = (0usize, 0u32);
    loop {
        let c = *b.get(*at).ok_or("a delta's header is truncated")?;
        *at += 1;
        if shift > 56 {
            return Err("a delta's size does not fit in 64 bits".into());
        }
        v |= ((c & 0x7f) as usize) << shift;
        shift += 7;
        if c & 0x80 == 0 {
            return Ok(v);
        }
    }
}

fn hex(oid: &[u8]) -> String {
    oid.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::process::Command;

    fn git(dir: &Path, args: &[&str]) -> Vec<u8> {
        let out = Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "A")
            .env("GIT_AUTHOR_EMAIL", "a@example.com")
            .env("GIT_COMMITTER_NAME", "A")
            .env("GIT_COMMITTER_EMAIL", "a@example.com")
            .env("GIT_AUTHOR_DATE", "@1700000000 +0000")
            .env("GIT_COMMITTER_DATE", "@1700000000 +0000")
            .output()
            .expect("git is installed");
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        out.stdout
    }

    /// A history whose commits differ little (long shared messages), so that a thorough
    /// repack stores commits, trees and blobs as deltas.
    fn history(dir: &Path, commits: usize) {
        git(dir, &["init", "-q", "-b", "main"]);
        let body = "A long description that every commit shares, so that commits deltify.\n".repeat(8);
        for n in 0..commits {
            let file = dir.join(format!("f{}.txt", n % 3));
            let mut text = fs::read_to_string(&file).unwrap_or_default();
            text.push_str(&format!("line {n} of a file that grows by one line per commit\n"));
            fs::write(&file, text).unwrap();
            git(dir, &["add", "."]);
            git(dir, &["commit", "-q", "-m", &format!("change {n}\n\n{body}")]);
        }
    }

    /// Every object git has, as `git cat-file --batch` prints it: id -> (type, bytes).
    fn objects(dir: &Path) -> HashMap<Vec<u8>, (String, Vec<u8>)> {
        let out = git(dir, &["cat-file", "--batch-all-objects", "--batch", "--unordered"]);
        let (mut all, mut at) = (HashMap::new(), 0);
        while at < out.len() {
            let eol = at + out[at..].iter().position(|&b| b == b'\n').unwrap();
            let head = String::from_utf8(out[at..eol].to_vec()).unwrap();
            let words: Vec<&str> = head.split(' ').collect();
            let size: usize = words[2].parse().unwrap();
            let id = (0..20).map(|i| u8::from_str_radix(&words[0][2 * i..2 * i + 2], 16).unwrap()).collect();
            all.insert(id, (words[1].to_string(), out[eol + 1..eol + 1 + size].to_vec()));
            at = eol + 1 + size + 1;
        }
        all
    }

    /// The first file under objects/pack with that extension.
    fn file(dir: &Path, ext: &str) -> PathBuf {
        let mut files = fs::read_dir(dir.join(".git/objects/pack")).unwrap().map(|e| e.unwrap().path());
        files.find(|p| p.extension().is_some_and(|x| x == ext)).unwrap()
    }

    /// How many objects of each kind `git verify-pack` lists as deltas.
    fn deltas(dir: &Path, kind: &str) -> usize {
        let mut n = 0;
        for idx in fs::read_dir(dir.join(".git/objects/pack")).unwrap().map(|e| e.unwrap().path()) {
            if idx.extension().is_some_and(|x| x == "idx") {
                let out = String::from_utf8(git(dir, &["verify-pack", "-v", idx.to_str().unwrap()])).unwrap();
                n += out
                    .lines()
                    .filter(|l| l.split_whitespace().nth(1) == Some(kind) && l.split_whitespace().count() >= 7)
                    .count();
            }
        }
        n
    }

    /// Reads every object of `dir` out of its packs and compares it with git's; returns how
    /// many were found in a pack.
    fn check_against_git(dir: &Path) -> usize {
        let packs = Packs::open(&dir.join(".git/objects"));
        let mut reader = Reader::default();
        let (mut out, mut found) = (Vec::new(), 0);
        // Twice: the second time bases and results come out of the cache.
        for _ in 0..2 {
            for (id, (kind, bytes)) in objects(dir) {
                if let Some(got) = reader.read(&packs, &id, &mut out).unwrap() {
                    assert_eq!((got.name(), &out), (kind.as_str(), &bytes), "object {}", hex(&id));
                    found += 1;
                }
            }
        }
        found / 2
    }

    #[test]
    fn reads_every_object_of_a_thorough_repack_with_commits_stored_as_deltas() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        history(d, 60);
        git(d, &["repack", "-q", "-adf", "--depth=50", "--window=250"]);
        assert!(deltas(d, "commit") > 10, "the repack stored commits as deltas");
        assert!(deltas(d, "blob") > 10);
        let all = objects(d).len();
        assert_eq!(check_against_git(d), all);
    }

    #[test]
    fn reads_deltas_on_bases_named_by_id() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        history(d, 30);
        git(d, &["-c", "repack.useDeltaBaseOffset=false", "repack", "-q", "-adf", "--depth=50", "--window=250"]);
        assert!(deltas(d, "commit") > 5);
        assert_eq!(check_against_git(d), objects(d).len());
    }

    #[test]
    fn several_packs_a_kept_one_among_them_and_loose_objects_are_left_to_libgit2() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        history(d, 10);
        git(d, &["repack", "-q", "-ad"]);
        let kept = fs::read_dir(d.join(".git/objects/pack")).unwrap().map(|e| e.unwrap().path());
        let kept: Vec<PathBuf> = kept.filter(|p| p.extension().is_some_and(|x| x == "pack")).collect();
        fs::write(kept[0].with_extension("keep"), "").unwrap();
        git(d, &["commit", "-q", "--allow-empty", "-m", "second pack"]);
        git(d, &["repack", "-q", "-d"]);
        git(d, &["commit", "-q", "--allow-empty", "-m", "loose"]);
        assert_eq!(Packs::open(&d.join(".git/objects")).packs.len(), 2);
        let loose = git(d, &["rev-parse", "HEAD"]);
        let loose: Vec<u8> = (0..20)
            .map(|i| u8::from_str_radix(std::str::from_utf8(&loose[2 * i..2 * i + 2]).unwrap(), 16).unwrap())
            .collect();
        let packs = Packs::open(&d.join(".git/objects"));
        assert_eq!(Reader::default().read(&packs, &loose, &mut Vec::new()), Ok(None));
        assert_eq!(check_against_git(d), objects(d).len() - 1, "all but the loose commit");
    }

    #[test]
    fn a_truncated_or_damaged_pack_gives_errors_naming_it_not_panics() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        history(d, 40);
        git(d, &["repack", "-q", "-adf", "--depth=50", "--window=250"]);
        let all = objects(d);
        let pack = file(d, "pack");
        let whole = fs::read(&pack).unwrap();
        let damaged = |bytes: &[u8]| -> (usize, usize) {
            fs::remove_file(&pack).unwrap();
            fs::write(&pack, bytes).unwrap();
            let packs = Packs::open(&d.join(".git/objects"));
            let (mut reader, mut ok, mut failed) = (Reader::default(), 0, 0);
            for (id, (kind, bytes)) in &all {
                match reader.read(&packs, id, &mut Vec::new()) {
                    Ok(Some(got)) if got.name() == kind => ok += 1,
                    Ok(other) => panic!("{other:?} for a {kind} of {} bytes", bytes.len()),
                    Err(Corrupt(why)) => {
                        assert!(why.contains(pack.to_str().unwrap()), "{why}");
                        failed += 1;
                    }
                }
            }
            (ok, failed)
        };
        // Cut in half (the trailing checksum with it): the objects in the first half still
        // read, the others are errors.
        let (ok, failed) = damaged(&whole[..whole.len() / 2]);
        assert!(ok > 0 && failed > 0, "{ok} read, {failed} failed");
        // Every byte after the header flipped in turn, a few hundred times: no panic, every
        // object either right or an error.
        for at in (12..whole.len() - 20).step_by(whole.len() / 300 + 1) {
            let mut bytes = whole.clone();
            bytes[at] ^= 0x5a;
            let (ok, failed) = damaged(&bytes);
            assert_eq!(ok + failed, all.len());
        }
    }

    #[test]
    fn an_index_that_does_not_parse_leaves_its_pack_to_libgit2() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        history(d, 3);
        git(d, &["repack", "-q", "-ad"]);
        let idx = file(d, "idx");
        let whole = fs::read(&idx).unwrap();
        fs::remove_file(&idx).unwrap();
        fs::write(&idx, &whole[..whole.len() / 2]).unwrap();
        assert!(Packs::open(&d.join(".git/objects")).packs.is_empty());
    }

    /// An index of one object whose offset is entry `large` of the 64-bit table (which holds
    /// one offset, `at`), beside a pack with no room for it.
    fn large_offset_pack(dir: &Path, large: u32, at: u64) -> Packs {
        let id = [0x42u8; 20];
        let mut idx = IDX_MAGIC.to_vec();
        for byte in 0..256 {
            idx.extend_from_slice(&u32::from(byte >= 0x42).to_be_bytes());
        }
        idx.extend_from_slice(&id);
        idx.extend_from_slice(&[0; 4]);
        idx.extend_from_slice(&(0x8000_0000 | large).to_be_bytes());
        idx.extend_from_slice(&at.to_be_bytes());
        idx.extend_from_slice(&[0; 40]);
        fs::create_dir_all(dir.join("pack")).unwrap();
        fs::write(dir.join("pack/pack-1.idx"), idx).unwrap();
        let mut pack = b"PACK\0\0\0\x02\0\0\0\x01".to_vec();
        pack.extend_from_slice(&[0; 20]);
        fs::write(dir.join("pack/pack-1.pack"), pack).unwrap();
        Packs::open(dir)
    }

    #[test]
    fn offsets_past_two_gigabytes_come_from_the_64_bit_table_and_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let packs = large_offset_pack(dir.path(), 0, 0x1_0000_0010);
        assert_eq!(packs.find(&[0x42; 20], 0), Some((0, 0x1_0000_0010)));
        let err = Reader::default().read(&packs, &[0x42; 20], &mut Vec::new()).unwrap_err();
        assert!(err.0.contains("pack-1.pack: object 4242") && err.0.contains("past the end"), "{}", err.0);
        // An entry past the 64-bit table reads as offset 0, which no object has.
        let dir = tempfile::tempdir().unwrap();
        let packs = large_offset_pack(dir.path(), 100, 0x1_0000_0010);
        let err = Reader::default().read(&packs, &[0x42; 20], &mut Vec::new()).unwrap_err();
        assert!(err.0.contains("pack header"), "{}", err.0);
        assert_eq!(Reader::default().read(&packs, &[0x41; 20], &mut Vec::new()), Ok(None));
    }

    #[test]
    fn a_delta_copies_from_its_base_and_inserts_new_bytes() {
        // base 11 bytes -> 13 bytes: copy 6 at 0 ("hello "), insert "big ", copy 3 at 6 ("wor").
        let delta = [11, 13, 0x91, 0, 6, 4, b'b', b'i', b'g', b' ', 0x91, 6, 3];
        let mut out = Vec::new();
        apply(b"hello world", &delta, &mut out).unwrap();
        assert_eq!(out, b"hello big wor");
    }

    #[test]
    fn a_delta_reaching_past_its_base_is_an_error_not_a_panic() {
        let mut out = Vec::new();
        assert!(apply(b"hello", &[5, 9, 0x91, 2, 9], &mut out).unwrap_err().contains("past"));
        assert!(apply(b"hello", &[6, 1, 1, b'x'], &mut out).unwrap_err().contains("base of 6 bytes"));
        assert!(apply(b"hello", &[5, 1, 0], &mut out).unwrap_err().contains("reserved"));
        assert!(apply(b"hello", &[5, 3, 5, b'x'], &mut out).is_err());
        assert!(apply(b"hello", &[0x80], &mut out).is_err());
    }

    #[test]
    fn entry_headers_that_run_off_the_pack_are_errors() {
        let body = b"PACK\0\0\0\x02\0\0\0\x01\x95";
        assert!(entry(body, 12).is_err());
        assert!(entry(body, 3).is_err());
        let delta_before_start = b"PACK\0\0\0\x02\0\0\0\x01\x65\x7f";
        assert!(entry(delta_before_start, 12).is_err());
    }
}
