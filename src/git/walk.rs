//! `git rev-list TIPS ^HIDDEN`, done the way git does it (revision.c, `limit_list`), so that
//! the same commits come out in the same order: a queue by committer date, newest first and
//! first-in-first-out among equal dates; commits reachable from a hidden one are marked
//! uninteresting as the walk meets them, and it stops once only uninteresting commits are left
//! in the queue and a few more (git's allowance for clock skew) have changed nothing.
//!
//! Each commit is loaded once, through [`Load`]: from the commit-graph when it has the commit,
//! else from its object, whose bytes are kept so the report can be built without reading
//! it again. With a commit-graph the walk then settles what dates could not: see `settle`.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};

use git2::Oid;

/// How the walk names a commit: by its position in the commit-graph when the graph has it
/// (no hashing, no searching), else by its id. A commit has one key: the loader hands out
/// positions for every commit the graph has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Key {
    Pos(u32),
    Oid(Oid),
}

/// What loading a commit tells the walk.
pub(super) struct Loaded {
    pub date: i64,
    /// Its topological level (1 for roots, more than any parent's), where a commit-graph has it.
    pub level: Option<u32>,
    /// The object's bytes, when it was read.
    pub raw: Option<Vec<u8>>,
}

/// Where the walk gets a commit's parents and committer date.
pub(super) trait Load {
    type Error;
    /// The key of a commit id.
    fn key(&self, oid: Oid) -> Key;
    fn oid(&self, key: Key) -> Oid;
    /// How many positions the commit-graph has (0 without one).
    fn positions(&self) -> usize;
    /// Whether commits can have levels at all (there is a commit-graph).
    fn levels(&self) -> bool;
    /// Appends the keys of the parents of `key` to `parents`.
    fn load(&mut self, key: Key, parents: &mut Vec<Key>) -> Result<Loaded, Self::Error>;
}

/// What a walk found: the commits, and whether a hidden commit is itself reachable from a
/// tip (then `hidden ^tips` is empty, and nobody needs to walk it to find that out).
pub(super) struct Walk {
    pub commits: Vec<Walked>,
    pub reached_hidden: bool,
}

/// One commit of the result: its committer date and number of parents, and its object's
/// bytes when the walk read them.
pub(super) struct Walked {
    pub oid: Oid,
    pub date: i64,
    pub parents: u32,
    pub raw: Option<Vec<u8>>,
}

/// git's SLOP: how many uninteresting commits the walk takes after the last interesting one.
const SLOP: u32 = 5;

const SEEN: u8 = 1;
const ADDED: u8 = 2;
const UNINTERESTING: u8 = 4;
const LOADED: u8 = 8;
const QUEUED: u8 = 16;
const HIDDEN: u8 = 32;

struct Node {
    key: Key,
    date: i64,
    /// Topological level; `u32::MAX` when unknown.
    level: u32,
    flags: u8,
    /// This commit's parents: `parents[first..first + count]`.
    first: u32,
    count: u32,
    /// Index + 1 of its object's bytes in `Walker::raws`; 0 when it was not read. (Kept out
    /// of the node: walks of 100k+ commits are faster with small nodes.)
    raw: u32,
}

struct Walker<'l, L> {
    loader: &'l mut L,
    nodes: Vec<Node>,
    /// Node index + 1 by graph position (0: none yet; zeroed memory comes from the kernel
    /// page by page, so a short walk in a big graph touches little of it), and by id for
    /// commits the graph lacks (keyed by the raw bytes: comparing `Oid`s goes through libgit2).
    by_pos: Vec<u32>,
    by_oid: HashMap<[u8; 20], u32, BuildHasherDefault<OidHasher>>,
    raws: Vec<Vec<u8>>,
    parents: Vec<u32>,
    queue: BinaryHeap<(i64, Reverse<u64>, u32)>,
    seq: u64,
    /// Queued commits not (yet) known to be uninteresting.
    interesting: usize,
    reached_hidden: bool,
    scratch: Vec<Key>,
}

/// The commits reachable from `tips` and from no `hidden` commit, in `git rev-list` order.
pub(super) fn rev_list<L: Load>(loader: &mut L, tips: &[Oid], hidden: &[Oid]) -> Result<Walk, L::Error> {
    let positions = loader.positions();
    let mut w = Walker {
        loader,
        nodes: Vec::new(),
        by_pos: vec![0; positions],
        by_oid: HashMap::default(),
        raws: Vec::new(),
        parents: Vec::new(),
        queue: BinaryHeap::new(),
        seq: 0,
        interesting: 0,
        reached_hidden: false,
        scratch: Vec::new(),
    };
    // Like `git rev-list ^hidden tips`: the command line in that order, sorted by date, stably.
    let mut start = Vec::new();
    for (oid, hide) in hidden.iter().map(|o| (o, true)).chain(tips.iter().map(|o| (o, false))) {
        let key = w.loader.key(*oid);
        let n = w.node(key);
        w.load(n)?;
        if hide {
            w.mark(n);
            w.nodes[n as usize].flags |= HIDDEN;
        } else if w.nodes[n as usize].flags & HIDDEN != 0 {
            w.reached_hidden = true;
        }
        if w.nodes[n as usize].flags & SEEN == 0 {
            w.nodes[n as usize].flags |= SEEN;
            start.push(n);
        }
    }
    start.sort_by_key(|&n| Reverse(w.nodes[n as usize].date));
    for n in start {
        w.push(n);
    }
    let order = w.limit(!hidden.is_empty())?;
    if !hidden.is_empty() && w.loader.levels() {
        w.settle(&order)?;
    }
    let reached_hidden = w.reached_hidden;
    let (loader, nodes, mut raws) = (w.loader, w.nodes, w.raws);
    let mut out = Vec::with_capacity(order.len());
    for n in order {
        let node = &nodes[n as usize];
        if node.flags & UNINTERESTING == 0 {
            let oid = loader.oid(node.key);
            let raw = node.raw.checked_sub(1).map(|i| std::mem::take(&mut raws[i as usize]));
            out.push(Walked { oid, date: node.date, parents: node.count, raw });
        }
    }
    Ok(Walk { commits: out, reached_hidden })
}

impl<L: Load> Walker<'_, L> {
    /// The walk proper; `limited` when there are hidden commits and so a point to stop early.
    fn limit(&mut self, limited: bool) -> Result<Vec<u32>, L::Error> {
        let mut out = Vec::new();
        let mut date = i64::MAX;
        let mut slop = SLOP;
        while let Some(n) = self.pop() {
            self.process_parents(n)?;
            if self.nodes[n as usize].flags & UNINTERESTING != 0 {
                self.mark_parents(n);
                slop = self.still_interesting(date, slop);
                if slop > 0 || !limited {
                    continue;
                }
                break;
            }
            date = self.nodes[n as usize].date;
            out.push(n);
        }
        Ok(out)
    }

    /// Where git's walk ends, dates have decided: a commit dated before its parents can leave
    /// an ancestor of a hidden commit unvisited, and git then lists commits the hidden side
    /// has. Levels decide exactly: a commit only reaches commits of a lower level, so the
    /// uninteresting commits still queued are followed while their level is above the lowest
    /// level listed, or unknown (newer than the commit-graph). With dates that do not lie this
    /// follows nothing.
    fn settle(&mut self, listed: &[u32]) -> Result<(), L::Error> {
        let floor = listed
            .iter()
            .map(|&n| &self.nodes[n as usize])
            .filter(|node| node.flags & UNINTERESTING == 0)
            .map(|node| node.level)
            .min()
            .unwrap_or(u32::MAX);
        while let Some(n) = self.pop() {
            let level = self.nodes[n as usize].level;
            if level == u32::MAX || level > floor {
                self.process_parents(n)?;
                self.mark_parents(n);
            }
        }
        Ok(())
    }

    fn still_interesting(&self, date: i64, slop: u32) -> u32 {
        let Some(&(newest, _, _)) = self.queue.peek() else { return 0 };
        if date <= newest || self.interesting > 0 {
            return SLOP;
        }
        slop - 1
    }

    /// Loads the parents and queues the new ones; an uninteresting commit passes that on.
    fn process_parents(&mut self, n: u32) -> Result<(), L::Error> {
        if self.nodes[n as usize].flags & ADDED != 0 {
            return Ok(());
        }
        self.nodes[n as usize].flags |= ADDED;
        let uninteresting = self.nodes[n as usize].flags & UNINTERESTING != 0;
        let (first, count) = (self.nodes[n as usize].first, self.nodes[n as usize].count);
        for i in first..first + count {
            let p = self.parents[i as usize];
            if uninteresting {
                self.mark(p);
            }
            self.load(p)?;
            if uninteresting {
                self.mark_parents(p);
            } else if self.nodes[p as usize].flags & HIDDEN != 0 {
                // Reached from a tip through commits the hidden side does not have.
                self.reached_hidden = true;
            }
            if self.nodes[p as usize].flags & SEEN == 0 {
                self.nodes[p as usize].flags |= SEEN;
                self.push(p);
            }
        }
        Ok(())
    }

    /// Marks everything already loaded below `n` uninteresting (git's mark_parents_uninteresting).
    fn mark_parents(&mut self, n: u32) {
        let node = &self.nodes[n as usize];
        let mut stack: Vec<u32> = self.parents[node.first as usize..(node.first + node.count) as usize].to_vec();
        while let Some(p) = stack.pop() {
            if self.nodes[p as usize].flags & UNINTERESTING != 0 {
                continue;
            }
            self.mark(p);
            let node = &self.nodes[p as usize];
            stack.extend_from_slice(&self.parents[node.first as usize..(node.first + node.count) as usize]);
        }
    }

    fn mark(&mut self, n: u32) {
        let node = &mut self.nodes[n as usize];
        if node.flags & UNINTERESTING == 0 {
            node.flags |= UNINTERESTING;
            if node.flags & QUEUED != 0 {
                self.interesting -= 1;
            }
        }
    }

    fn push(&mut self, n: u32) {
        let node = &mut self.nodes[n as usize];
        node.flags |= QUEUED;
        if node.flags & UNINTERESTING == 0 {
            self.interesting += 1;
        }
        self.queue.push((node.date, Reverse(self.seq), n));
        self.seq += 1;
    }

    fn pop(&mut self) -> Option<u32> {
        let (_, _, n) = self.queue.pop()?;
        let node = &mut self.nodes[n as usize];
        node.flags &= !QUEUED;
        if node.flags & UNINTERESTING == 0 {
            self.interesting -= 1;
        }
        Some(n)
    }

    fn node(&mut self, key: Key) -> u32 {
        let next = self.nodes.len() as u32 + 1;
        let slot = match key {
            Key::Pos(p) => &mut self.by_pos[p as usize],
            Key::Oid(oid) => self.by_oid.entry(oid.as_bytes().try_into().expect("SHA-1 ids")).or_insert(0),
        };
        if *slot == 0 {
            *slot = next;
            self.nodes.push(Node { key, date: 0, level: u32::MAX, flags: 0, first: 0, count: 0, raw: 0 });
        }
        *slot - 1
    }

    fn load(&mut self, n: u32) -> Result<(), L::Error> {
        if self.nodes[n as usize].flags & LOADED != 0 {
            return Ok(());
        }
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        let Loaded { date, level, raw } = self.loader.load(self.nodes[n as usize].key, &mut scratch)?;
        let first = self.parents.len() as u32;
        for key in &scratch {
            let p = self.node(*key);
            self.parents.push(p);
        }
        self.scratch = scratch;
        let node = &mut self.nodes[n as usize];
        node.date = date;
        node.level = level.unwrap_or(u32::MAX);
        if let Some(raw) = raw {
            self.raws.push(raw);
            node.raw = self.raws.len() as u32;
        }
        node.first = first;
        node.count = self.parents.len() as u32 - first;
        node.flags |= LOADED;
        Ok(())
    }
}

/// Object ids are already uniformly random: eight of their bytes are a good hash, and much
/// cheaper than SipHash over twenty on a walk of 100k+ commits.
#[derive(Default)]
struct OidHasher(u64);

impl Hasher for OidHasher {
    fn write(&mut self, bytes: &[u8]) {
        if let Some(eight) = bytes.get(..8) {
            self.0 ^= u64::from_le_bytes(eight.try_into().expect("eight bytes"));
        }
    }

    fn write_usize(&mut self, _: usize) {}

    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A history in memory: commit number -> (date, parents); loads counted; levels given
    /// (as a commit-graph would) or not.
    struct Mem(HashMap<Oid, (i64, Vec<Oid>)>, usize, bool);

    fn id(n: u8) -> Oid {
        Oid::from_bytes(&[n; 20]).unwrap()
    }

    fn history(commits: &[(u8, i64, &[u8])]) -> Mem {
        Mem(commits.iter().map(|(n, d, ps)| (id(*n), (*d, ps.iter().map(|p| id(*p)).collect()))).collect(), 0, false)
    }

    impl Load for Mem {
        type Error = String;
        fn key(&self, oid: Oid) -> Key {
            Key::Oid(oid)
        }
        fn oid(&self, key: Key) -> Oid {
            match key {
                Key::Oid(oid) => oid,
                Key::Pos(_) => unreachable!("no graph here"),
            }
        }
        fn positions(&self) -> usize {
            0
        }
        fn levels(&self) -> bool {
            self.2
        }
        fn load(&mut self, key: Key, parents: &mut Vec<Key>) -> Result<Loaded, String> {
            self.1 += 1;
            let oid = self.oid(key);
            let (date, ps) = self.0.get(&oid).ok_or(format!("missing {oid}"))?;
            parents.extend(ps.iter().map(|p| Key::Oid(*p)));
            let level = if self.2 { Some(self.level(oid)) } else { None };
            Ok(Loaded { date: *date, level, raw: None })
        }
    }

    impl Mem {
        fn level(&self, oid: Oid) -> u32 {
            1 + self.0[&oid].1.iter().map(|p| self.level(*p)).max().unwrap_or(0)
        }
    }

    fn list(h: &mut Mem, tips: &[u8], hidden: &[u8]) -> Vec<u8> {
        let tips: Vec<Oid> = tips.iter().map(|n| id(*n)).collect();
        let hidden: Vec<Oid> = hidden.iter().map(|n| id(*n)).collect();
        rev_list(h, &tips, &hidden).unwrap().commits.iter().map(|w| w.oid.as_bytes()[0]).collect()
    }

    #[test]
    fn a_range_lists_what_the_tip_has_and_the_hidden_side_lacks_newest_first() {
        // 1 - 2 - 3 - 5 (merge) - 6
        //      \- 4 -/
        let mut h =
            history(&[(1, 10, &[]), (2, 20, &[1]), (3, 30, &[2]), (4, 35, &[2]), (5, 50, &[3, 4]), (6, 60, &[5])]);
        assert_eq!(list(&mut h, &[6], &[3]), vec![6, 5, 4]);
        assert_eq!(list(&mut h, &[3], &[6]), Vec::<u8>::new());
        assert_eq!(list(&mut h, &[6], &[]), vec![6, 5, 4, 3, 2, 1]);
        assert_eq!(list(&mut h, &[4], &[3]), vec![4]);
    }

    #[test]
    fn the_walk_tells_whether_the_hidden_commit_is_an_ancestor_of_a_tip() {
        let mut h = history(&[(1, 10, &[]), (2, 20, &[1]), (3, 30, &[2]), (4, 35, &[2]), (5, 50, &[3, 4])]);
        let reached = |h: &mut Mem, tip: u8, hidden: u8| rev_list(h, &[id(tip)], &[id(hidden)]).unwrap().reached_hidden;
        assert!(reached(&mut h, 5, 4));
        assert!(reached(&mut h, 5, 1));
        assert!(reached(&mut h, 3, 3));
        assert!(!reached(&mut h, 3, 4));
        assert!(!reached(&mut h, 1, 5));
    }

    #[test]
    fn equal_dates_come_out_first_in_first_out() {
        let mut h = history(&[(1, 10, &[]), (2, 10, &[1]), (3, 10, &[1]), (4, 10, &[2, 3])]);
        assert_eq!(list(&mut h, &[4], &[]), vec![4, 2, 3, 1]);
    }

    #[test]
    fn the_walk_stops_early_once_only_uninteresting_commits_are_left() {
        // A long shared history below 100: 200 ^150 must not load it all.
        let mut commits: Vec<(u8, i64, Vec<u8>)> = vec![(1, 1, vec![])];
        for n in 2..=200u8 {
            commits.push((n, n as i64 * 10, vec![n - 1]));
        }
        let refs: Vec<(u8, i64, &[u8])> = commits.iter().map(|(n, d, p)| (*n, *d, p.as_slice())).collect();
        let mut h = history(&refs);
        assert_eq!(list(&mut h, &[200], &[150]).len(), 50);
        assert!(h.1 < 70, "loaded {} commits", h.1);
    }

    #[test]
    fn a_commit_skewed_into_the_future_below_the_hidden_side_is_still_hidden() {
        // 3 (hidden) sits on 2, whose date is later than the tip's: git's slop keeps walking.
        let mut h = history(&[(1, 10, &[]), (2, 100, &[1]), (3, 30, &[2]), (4, 40, &[2]), (5, 50, &[4, 3])]);
        assert_eq!(list(&mut h, &[5], &[3]), vec![5, 4]);
    }

    #[test]
    fn levels_finish_the_walk_where_a_commit_dated_too_early_ends_it_too_soon() {
        // T(100) - B(20) - C(10); the hidden H(90) reaches B through S1(9) .. S7(3), dated
        // before their parents: git's walk gives up on that chain and lists B and C.
        let mut commits: Vec<(u8, i64, Vec<u8>)> =
            vec![(1, 10, vec![]), (2, 20, vec![1]), (3, 100, vec![2]), (10, 90, vec![11])];
        for s in 11..=17u8 {
            commits.push((s, 20 - s as i64, vec![if s == 17 { 2 } else { s + 1 }]));
        }
        let refs: Vec<(u8, i64, &[u8])> = commits.iter().map(|(n, d, p)| (*n, *d, p.as_slice())).collect();
        let mut h = history(&refs);
        assert_eq!(list(&mut h, &[3], &[10]), vec![3, 2, 1], "as git rev-list 3 ^10 answers");
        h.2 = true;
        assert_eq!(list(&mut h, &[3], &[10]), vec![3], "with levels, as it is");
    }

    #[test]
    fn a_missing_commit_is_an_error_not_a_shorter_list() {
        let mut h = history(&[(2, 20, &[1])]);
        assert_eq!(rev_list(&mut h, &[id(2)], &[]).err().unwrap(), format!("missing {}", id(1)));
    }
}
