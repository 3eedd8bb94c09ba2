//! git's commit-graph files (`objects/info/commit-graph`, or a split chain under
//! `objects/info/commit-graphs/`), read directly: libgit2 does not use them, and with one the
//! ancestry walk needs no object reads at all, which is how `git rev-list` gets its speed.
//! Only what the walk needs is read: the commit ids, parents and committer dates. The format
//! is git's Documentation/gitformat-commit-graph.txt.
//!
//! A file whose header, chunk table or fanout does not parse is not used (the walk then reads
//! objects, which is slower but right). Parent positions and extra-edge lists are checked
//! as they are read, so that opening costs nothing; one out of bounds is a [`Corrupt`] error,
//! on which the caller walks again without the graph.

use std::fs;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

const HASH_LEN: usize = 20;
const PARENT_NONE: u32 = 0x7000_0000;
const EXTRA_EDGES: u32 = 0x8000_0000;
const LAST_EDGE: u32 = 0x8000_0000;
const LEVEL_MAX: u32 = 0x3fff_ffff;

/// All layers of a repository's commit-graph, base first. Positions are global across layers,
/// as in git: a layer's commits come after all commits of the layers below it.
pub(super) struct Graph {
    layers: Vec<Layer>,
}

/// A commit-graph entry that points outside the graph.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Corrupt(pub String);

struct Layer {
    data: Mmap,
    /// Commits in the layers below this one.
    base: u32,
    count: u32,
    fanout: usize,
    oids: usize,
    cdat: usize,
    edges: Option<(usize, usize)>,
}

impl Graph {
    /// The repository's commit-graph under `objects`, if it has a usable one. `Err` says why an
    /// existing one cannot be used.
    pub fn open(objects: &Path) -> Result<Option<Graph>, String> {
        let single = objects.join("info/commit-graph");
        let paths = if single.is_file() {
            vec![single]
        } else {
            let chain = objects.join("info/commit-graphs/commit-graph-chain");
            match fs::read_to_string(&chain) {
                Ok(text) => chain_files(objects, &text),
                Err(_) => return Ok(None),
            }
        };
        let mut layers: Vec<Layer> = Vec::new();
        for path in paths {
            let base = layers.last().map_or(0, |l| l.base + l.count);
            let file = fs::File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            // SAFETY: git writes commit-graph files to a temporary name and renames them into
            // place; it never changes one in place, so the mapping stays what was validated.
            let data = unsafe { Mmap::map(&file) }.map_err(|e| format!("{}: {e}", path.display()))?;
            let layer = Layer::parse(data, base, layers.len()).map_err(|e| format!("{}: {e}", path.display()))?;
            layers.push(layer);
        }
        if layers.last().is_some_and(|l| l.base.checked_add(l.count).is_none_or(|n| n == u32::MAX)) {
            return Err(format!("{}: too many commits", objects.join("info").display()));
        }
        Ok(Some(Graph { layers }))
    }

    /// The global position of a commit, if the graph has it.
    pub fn position(&self, oid: &[u8]) -> Option<u32> {
        self.layers.iter().rev().find_map(|l| l.find(oid).map(|i| l.base + i))
    }

    pub fn oid(&self, pos: u32) -> &[u8] {
        let (layer, i) = self.layer(pos);
        layer.oid(i)
    }

    /// The committer date and topological level of the commit at `pos` (a position this graph
    /// handed out); its parents' positions go into `parents`. The level is `None` where git
    /// wrote none (0) or capped it: then it bounds nothing.
    pub fn commit(&self, pos: u32, parents: &mut Vec<u32>) -> Result<(i64, Option<u32>), Corrupt> {
        let (layer, i) = self.layer(pos);
        let limit = layer.base + layer.count;
        let corrupt = || Corrupt(format!("commit {pos} has a parent position out of range"));
        let mut parent = |p: u32| {
            if p >= limit {
                return Err(corrupt());
            }
            parents.push(p);
            Ok(())
        };
        let at = layer.cdat + i as usize * (HASH_LEN + 16) + HASH_LEN;
        let (p1, p2) = (layer.u32(at), layer.u32(at + 4));
        if p1 != PARENT_NONE {
            parent(p1)?;
        }
        if p2 & EXTRA_EDGES != 0 {
            let (start, end) = layer.edges.ok_or_else(|| Corrupt("an octopus merge but no EDGE chunk".into()))?;
            let mut e = start + (p2 & !EXTRA_EDGES) as usize * 4;
            loop {
                if e + 4 > end {
                    return Err(Corrupt("an extra-edge list runs past the EDGE chunk".into()));
                }
                let v = layer.u32(e);
                parent(v & !LAST_EDGE)?;
                if v & LAST_EDGE != 0 {
                    break;
                }
                e += 4;
            }
        } else if p2 != PARENT_NONE {
            parent(p2)?;
        }
        let word = layer.u32(at + 8);
        let level = Some(word >> 2).filter(|&l| l != 0 && l != LEVEL_MAX);
        let hi = (word & 0x3) as i64;
        Ok(((hi << 32) | layer.u32(at + 12) as i64, level))
    }

    /// The root tree id of the commit at `pos` (a position this graph handed out).
    pub fn tree(&self, pos: u32) -> &[u8] {
        let (layer, i) = self.layer(pos);
        let at = layer.cdat + i as usize * (HASH_LEN + 16);
        &layer.data[at..at + HASH_LEN]
    }

    /// How many commits the graph has: positions run from 0 to this.
    pub fn len(&self) -> usize {
        self.total() as usize
    }

    fn total(&self) -> u32 {
        self.layers.last().map_or(0, |l| l.base + l.count)
    }

    fn layer(&self, pos: u32) -> (&Layer, u32) {
        let layer = self.layers.iter().rev().find(|l| pos >= l.base).expect("positions are checked when opened");
        (layer, pos - layer.base)
    }
}

impl Layer {
    fn parse(data: Mmap, base: u32, lower_layers: usize) -> Result<Layer, String> {
        if data.len() < 8 || &data[..4] != b"CGPH" {
            return Err("not a commit-graph file".into());
        }
        if data[4] != 1 {
            return Err(format!("commit-graph version {} is not supported", data[4]));
        }
        if data[5] != 1 {
            return Err("not a SHA-1 commit-graph".into());
        }
        let chunks = data[6] as usize;
        if data[7] as usize != lower_layers {
            return Err(format!("it builds on {} layers, the chain has {lower_layers}", data[7]));
        }
        let table_end = 8 + (chunks + 1) * 12;
        if data.len() < table_end {
            return Err("truncated chunk table".into());
        }
        let mut found: Vec<([u8; 4], usize, usize)> = Vec::new();
        for c in 0..chunks {
            let at = 8 + c * 12;
            let id: [u8; 4] = data[at..at + 4].try_into().expect("four bytes");
            let start = be64(&data[at + 4..at + 12]);
            let end = be64(&data[at + 16..at + 24]);
            if start < table_end as u64 || start > end || end > data.len() as u64 {
                return Err(format!("chunk {} is out of bounds", String::from_utf8_lossy(&id)));
            }
            found.push((id, start as usize, end as usize));
        }
        let chunk = |id: &[u8; 4]| found.iter().find(|c| &c.0 == id).map(|c| (c.1, c.2));
        let (fanout, fanout_end) = chunk(b"OIDF").ok_or("no OIDF chunk")?;
        let (oids, oids_end) = chunk(b"OIDL").ok_or("no OIDL chunk")?;
        let (cdat, cdat_end) = chunk(b"CDAT").ok_or("no CDAT chunk")?;
        if fanout_end - fanout != 256 * 4 {
            return Err("the OIDF chunk has the wrong size".into());
        }
        let count = be32(&data[fanout + 255 * 4..]);
        let n = count as usize;
        if oids_end - oids != n * HASH_LEN || cdat_end - cdat != n * (HASH_LEN + 16) {
            return Err("the OIDL or CDAT chunk does not match the commit count".into());
        }
        let mut previous = 0;
        for b in 0..256 {
            let v = be32(&data[fanout + b * 4..]);
            if v < previous || v > count {
                return Err("the OIDF fanout is not monotonic".into());
            }
            previous = v;
        }
        let edges = chunk(b"EDGE");
        Ok(Layer { data, base, count, fanout, oids, cdat, edges })
    }

    fn find(&self, oid: &[u8]) -> Option<u32> {
        let first = oid[0] as usize;
        let lo = if first == 0 { 0 } else { self.u32(self.fanout + (first - 1) * 4) } as usize;
        let hi = self.u32(self.fanout + first * 4) as usize;
        let slice = &self.data[self.oids + lo * HASH_LEN..self.oids + hi * HASH_LEN];
        let (mut a, mut b) = (0, hi - lo);
        while a < b {
            let mid = (a + b) / 2;
            match slice[mid * HASH_LEN..(mid + 1) * HASH_LEN].cmp(oid) {
                std::cmp::Ordering::Less => a = mid + 1,
                std::cmp::Ordering::Greater => b = mid,
                std::cmp::Ordering::Equal => return Some((lo + mid) as u32),
            }
        }
        None
    }

    fn oid(&self, i: u32) -> &[u8] {
        let at = self.oids + i as usize * HASH_LEN;
        &self.data[at..at + HASH_LEN]
    }

    fn u32(&self, at: usize) -> u32 {
        be32(&self.data[at..])
    }
}

/// The layer files a `commit-graph-chain` lists, base first.
fn chain_files(objects: &Path, text: &str) -> Vec<PathBuf> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|hash| objects.join(format!("info/commit-graphs/graph-{hash}.graph")))
        .collect()
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes(b[..4].try_into().expect("four bytes"))
}

fn be64(b: &[u8]) -> u64 {
    u64::from_be_bytes(b[..8].try_into().expect("eight bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn git(dir: &Path, args: &[&str], date: u64) -> String {
        let out = Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "A")
            .env("GIT_AUTHOR_EMAIL", "a@example.com")
            .env("GIT_COMMITTER_NAME", "A")
            .env("GIT_COMMITTER_EMAIL", "a@example.com")
            .env("GIT_AUTHOR_DATE", format!("@{date} +0000"))
            .env("GIT_COMMITTER_DATE", format!("@{date} +0000"))
            .output()
            .expect("git is installed");
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }

    /// Parents and dates of every commit, as git prints them and as the graph has them.
    fn check(dir: &Path) {
        let graph = Graph::open(&dir.join(".git/objects")).unwrap().expect("a commit-graph");
        for line in git(dir, &["log", "--all", "--format=%H %ct %P"], 0).lines() {
            let mut words = line.split(' ');
            let oid = git2::Oid::from_str(words.next().unwrap()).unwrap();
            let date: i64 = words.next().unwrap().parse().unwrap();
            let parents: Vec<&str> = words.filter(|w| !w.is_empty()).collect();
            let pos = graph.position(oid.as_bytes()).expect("every commit is in the graph");
            let mut got = Vec::new();
            let (got_date, level) = graph.commit(pos, &mut got).unwrap();
            assert_eq!(got_date, date);
            // Levels grow from the roots: every parent is below its child.
            for &p in &got {
                assert!(graph.commit(p, &mut Vec::new()).unwrap().1 < level, "{line}");
            }
            let got: Vec<String> =
                got.iter().map(|&p| git2::Oid::from_bytes(graph.oid(p)).unwrap().to_string()).collect();
            assert_eq!(got, parents, "{line}");
        }
    }

    #[test]
    fn reads_what_git_writes_octopus_merges_and_split_chains_included() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        git(d, &["init", "-q", "-b", "main"], 0);
        git(d, &["commit", "-q", "--allow-empty", "-m", "root"], 1_700_000_000);
        for b in ["a", "b", "c"] {
            git(d, &["checkout", "-q", "-b", b, "main"], 0);
            git(d, &["commit", "-q", "--allow-empty", "-m", b], 1_700_000_100);
        }
        git(d, &["checkout", "-q", "main"], 0);
        git(d, &["merge", "-q", "--no-ff", "-m", "octopus", "a", "b", "c"], 4_294_967_296 + 5);
        git(d, &["commit-graph", "write", "--reachable", "--split=no-merge"], 0);
        git(d, &["commit", "-q", "--allow-empty", "-m", "after"], 1_700_000_300);
        git(d, &["commit-graph", "write", "--reachable", "--split=no-merge"], 0);
        assert!(!d.join(".git/objects/info/commit-graph").exists());
        check(d);
        git(d, &["commit-graph", "write", "--reachable"], 0);
        assert!(d.join(".git/objects/info/commit-graph").exists());
        check(d);
        assert!(Graph::open(&d.join("no-such-dir")).unwrap().is_none());
    }

    /// Opens `bytes` as the commit-graph of a scratch object directory.
    fn open_bytes(bytes: &[u8]) -> Result<Option<Graph>, String> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("info")).unwrap();
        std::fs::write(dir.path().join("info/commit-graph"), bytes).unwrap();
        Graph::open(dir.path()).map_err(|e| e.rsplit(": ").next().unwrap().to_string())
    }

    #[test]
    fn files_that_are_not_commit_graphs_are_refused_with_a_reason() {
        assert_eq!(open_bytes(b"PACK....").err().unwrap(), "not a commit-graph file");
        assert_eq!(open_bytes(b"CGPH\x01\x02\x03\x00").err().unwrap(), "not a SHA-1 commit-graph");
        assert_eq!(open_bytes(b"CGPH\x01\x01\x03\x00").err().unwrap(), "truncated chunk table");
        let mut oob = b"CGPH\x01\x01\x01\x00OIDF".to_vec();
        oob.extend_from_slice(&1000u64.to_be_bytes());
        oob.extend_from_slice(&[0; 4]);
        oob.extend_from_slice(&2000u64.to_be_bytes());
        assert_eq!(open_bytes(&oob).err().unwrap(), "chunk OIDF is out of bounds");
    }
}
