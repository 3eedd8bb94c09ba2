//! The repository floor (between config and observe): takes a path and gives commits, refs,
//! trees and walks as owned values. Observe (GitOps declarations), resolve (is that SHA
//! here, which tag names it) and history all read git through it.
//!
//! The repository, behind one small interface that hands out owned values.
//!
//! git2 lives here and nowhere else: callers get `CommitId`s, `CommitInfo`s and plain
//! strings, never a `git2::Commit<'repo>`. Every walk error is returned, never dropped.
//! This module only reads: it never writes refs, objects or config.

use std::cell::{Cell, OnceCell, RefCell};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use chrono::{DateTime, TimeZone, Utc};
use git2::{DiffOptions, ErrorCode, ObjectType, Oid, Repository};

use crate::model::CommitId;

mod commit;
mod graph;
mod objects;
mod pack;
mod patch;
mod paths;
mod walk;

#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("cannot open a git repository at {path}: {message}")]
    Open { path: PathBuf, message: String },
    #[error("{rev:?} does not name a commit in {path}: {message}")]
    Rev { path: PathBuf, rev: String, message: String },
    #[error(
        "cannot find the mainline branch in {path}: tried origin/HEAD, main and master; \
         set `mainline` in prodiff.toml or pass --mainline"
    )]
    NoMainline { path: PathBuf },
    #[error("git failed in {path} while {doing}: {message}")]
    Read { path: PathBuf, doing: String, message: String },
}

/// The answer to "which commit is this hex string?".
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lookup {
    Found(CommitId),
    NotFound,
    Ambiguous,
    /// It names an object that is not a commit (a blob, say).
    NotACommit,
}

/// What a report needs to know of one commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitInfo {
    pub id: CommitId,
    pub subject: String,
    pub message: String,
    pub author: String,
    pub email: String,
    pub date: DateTime<Utc>,
    pub committed: DateTime<Utc>,
    pub parents: usize,
}

/// A range's commits, and whether its excluded end is an ancestor of the included one (so the
/// opposite range is empty).
pub struct Log<T> {
    pub commits: Vec<T>,
    pub includes_exclude: bool,
}

/// What the walk knows of a commit without reading its object (with a commit-graph, nothing
/// is read): enough to count a range and date its oldest commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Brief {
    pub id: CommitId,
    pub committed: DateTime<Utc>,
    pub parents: usize,
}

pub struct Repo {
    repo: Repository,
    path: PathBuf,
    graph: OnceCell<Option<graph::Graph>>,
    graph_broken: Cell<bool>,
    /// Ranges walked for path-filtered comparisons, by (include, exclude).
    walks: RefCell<HashMap<(CommitId, CommitId), SharedLog>>,
    /// What `touches` learnt of each commit.
    touched: paths::Touched,
    /// Patch-ids and their pre-hashes, for pairing cherry-picks.
    patches: patch::Patches,
    /// In a shallow clone, the boundary commits (`.git/shallow`): git walks them as roots.
    boundary: OnceCell<HashSet<Oid>>,
    /// The packs, mapped on first use, and the reader that inflates out of them.
    packs: OnceCell<pack::Packs>,
    reader: RefCell<Option<pack::Reader>>,
}

type SharedLog = Rc<Log<Brief>>;

/// Loads commits for the walk: from the commit-graph when it has them, else from objects.
struct Loader<'r> {
    repo: &'r Repo,
    objects: objects::Objects<'r>,
    graph: Option<&'r graph::Graph>,
    /// Whether the objects' bytes are kept for the report (`log`), or only parsed (`log_brief`).
    keep_raw: bool,
    /// The object read last, when its bytes are not kept.
    buf: Vec<u8>,
    /// Scratch lists of parents, reused from commit to commit.
    positions: Vec<u32>,
    ids: Vec<Oid>,
    /// Set when the graph turned out to be corrupt: the walk is then done again without it.
    corrupt: Option<graph::Corrupt>,
}

impl walk::Load for Loader<'_> {
    type Error = GitError;

    fn key(&self, oid: Oid) -> walk::Key {
        match self.graph.and_then(|g| g.position(oid.as_bytes())) {
            Some(pos) => walk::Key::Pos(pos),
            None => walk::Key::Oid(oid),
        }
    }

    fn oid(&self, key: walk::Key) -> Oid {
        match (key, self.graph) {
            (walk::Key::Oid(oid), _) => oid,
            (walk::Key::Pos(p), Some(g)) => Oid::from_bytes(g.oid(p)).expect("20-byte ids"),
            (walk::Key::Pos(_), None) => unreachable!("positions come from the graph"),
        }
    }

    fn positions(&self) -> usize {
        self.graph.map_or(0, |g| g.len())
    }

    fn levels(&self) -> bool {
        self.graph.is_some()
    }

    fn load(&mut self, key: walk::Key, parents: &mut Vec<walk::Key>) -> Result<walk::Loaded, GitError> {
        let oid = match (key, self.graph) {
            (walk::Key::Pos(pos), Some(g)) => {
                self.positions.clear();
                let (date, level) = g.commit(pos, &mut self.positions).map_err(|c| {
                    let e = GitError::Read {
                        path: self.repo.path.clone(),
                        doing: "reading the commit-graph".into(),
                        message: c.0.clone(),
                    };
                    self.corrupt = Some(c);
                    e
                })?;
                parents.extend(self.positions.iter().map(|&p| walk::Key::Pos(p)));
                return Ok(walk::Loaded { date, level, raw: None });
            }
            _ => self.oid(key),
        };
        let mut raw = if self.keep_raw { Vec::new() } else { std::mem::take(&mut self.buf) };
        self.objects.commit(oid, &mut raw)?;
        let mut ids = std::mem::take(&mut self.ids);
        ids.clear();
        let date = commit::parents_and_date(&raw, &mut ids).map_err(|m| malformed(&self.repo.path, oid, m))?;
        let boundary = self.repo.boundary();
        if !boundary.is_empty() && boundary.contains(&oid) {
            // A shallow clone's boundary: its parents were never fetched.
            ids.clear();
        }
        parents.extend(ids.iter().map(|&id| self.key(id)));
        self.ids = ids;
        let raw = if self.keep_raw {
            Some(raw)
        } else {
            self.buf = raw;
            None
        };
        Ok(walk::Loaded { date, level: None, raw })
    }
}

impl Repo {
    /// Opens the repository containing `path` (like git, it looks upwards).
    pub fn open(path: &Path) -> Result<Repo, GitError> {
        static SETUP: std::sync::Once = std::sync::Once::new();
        SETUP.call_once(|| {
            // Every object read is re-hashed by default; git does not do that on reads, and on
            // a 150k-commit walk it costs ~10%. prodiff only reads, so corruption shows up as a
            // parse error instead.
            git2::opts::strict_hash_verification(false);
            // The walk reads each commit once and keeps what it needs: caching commits too only
            // costs (~30% of a 137k-commit walk, benches/README.md). Trees and blobs, read
            // again by neighbouring diffs, stay cached.
            // SAFETY: libgit2's global settings; set once, before this process reads any object.
            unsafe { git2::opts::set_cache_object_limit(ObjectType::Commit, 0) }.ok();
        });
        let repo = Repository::discover(path)
            .map_err(|e| GitError::Open { path: path.to_path_buf(), message: e.message().to_string() })?;
        let path = repo.workdir().unwrap_or_else(|| repo.path());
        // `/tmp/x/` and `/tmp/x` are one repository; print it without the trailing slash.
        let path = path.components().collect::<PathBuf>();
        Ok(Repo {
            repo,
            path,
            graph: Default::default(),
            graph_broken: Default::default(),
            walks: Default::default(),
            touched: Default::default(),
            patches: patch::Patches::new(crate::cache_dir::dir_from_env()),
            boundary: Default::default(),
            packs: Default::default(),
            reader: Default::default(),
        })
    }

    fn packs(&self) -> &pack::Packs {
        self.packs.get_or_init(|| pack::Packs::open(&self.repo.commondir().join("objects")))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The URL of a remote, if the repository has it.
    pub fn remote_url(&self, name: &str) -> Option<String> {
        self.repo.find_remote(name).ok()?.url().ok().map(str::to_string)
    }

    pub fn is_shallow(&self) -> bool {
        self.repo.is_shallow()
    }

    /// The commits whose parents a shallow clone lacks; empty when it is not shallow.
    fn boundary(&self) -> &HashSet<Oid> {
        self.boundary.get_or_init(|| {
            let Ok(text) = std::fs::read_to_string(self.repo.commondir().join("shallow")) else {
                return HashSet::new();
            };
            text.lines().filter_map(|l| Oid::from_str(l.trim()).ok()).collect()
        })
    }

    /// True when `tip ^hidden` holds a shallow clone's boundary commit: what lies behind it
    /// is missing here, and may belong to that range.
    pub fn reaches_boundary(&self, tip: &CommitId, hidden: &CommitId) -> Result<bool, GitError> {
        let boundary = self.boundary();
        if boundary.is_empty() {
            return Ok(false);
        }
        Ok(self
            .walk(std::slice::from_ref(tip), std::slice::from_ref(hidden))?
            .iter()
            .any(|c| self.oid(c).is_ok_and(|o| boundary.contains(&o))))
    }

    /// The mainline: the configured branch, else origin/HEAD, else main, else master.
    /// Returns the name it settled on and its commit.
    pub fn mainline(&self, configured: Option<&str>) -> Result<(String, CommitId), GitError> {
        if let Some(rev) = configured {
            return Ok((rev.to_string(), self.resolve_rev(rev)?));
        }
        if let Ok(r) = self.repo.find_reference("refs/remotes/origin/HEAD") {
            if let Ok(Some(target)) = r.symbolic_target() {
                let name = target.strip_prefix("refs/remotes/").unwrap_or(target).to_string();
                return Ok((name.clone(), self.resolve_rev(&name)?));
            }
        }
        for name in ["main", "master", "origin/main", "origin/master"] {
            if let Ok(id) = self.resolve_rev(name) {
                return Ok((name.to_string(), id));
            }
        }
        Err(GitError::NoMainline { path: self.path.clone() })
    }

    /// Resolves any revision git understands (`main`, `v1.2.0`, `HEAD~3`) to a commit.
    pub fn resolve_rev(&self, rev: &str) -> Result<CommitId, GitError> {
        let err = |e: git2::Error| GitError::Rev {
            path: self.path.clone(),
            rev: rev.to_string(),
            message: e.message().to_string(),
        };
        let obj = self.repo.revparse_single(rev).map_err(err)?;
        let commit = obj.peel_to_commit().map_err(err)?;
        Ok(CommitId(commit.id().to_string()))
    }

    /// Looks a full or abbreviated hex commit id up, without guessing.
    pub fn lookup_commit(&self, hex: &str) -> Lookup {
        if hex.len() < 4 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Lookup::NotFound;
        }
        match self.repo.find_object_by_prefix(hex, None) {
            Ok(obj) => match obj.peel_to_commit() {
                Ok(c) if obj.kind() == Some(ObjectType::Commit) => Lookup::Found(CommitId(c.id().to_string())),
                _ => Lookup::NotACommit,
            },
            Err(e) if e.code() == ErrorCode::Ambiguous => self.commit_by_prefix(hex),
            Err(_) => Lookup::NotFound,
        }
    }

    /// A prefix several objects share names the one commit among them, if there is one (as
    /// `git rev-parse PREFIX^{commit}` does): a blob or tree that happens to share the prefix
    /// does not make an image tag ambiguous.
    fn commit_by_prefix(&self, hex: &str) -> Lookup {
        let Ok(odb) = self.repo.odb() else { return Lookup::Ambiguous };
        let prefix: Vec<u8> = hex.bytes().filter_map(|b| (b as char).to_digit(16).map(|d| d as u8)).collect();
        let mut sharing = Vec::new();
        let listed = odb.foreach(|oid| {
            let bytes = oid.as_bytes();
            let nibble = |i: usize| if i % 2 == 0 { bytes[i / 2] >> 4 } else { bytes[i / 2] & 15 };
            if prefix.iter().enumerate().all(|(i, &d)| nibble(i) == d) {
                sharing.push(*oid);
            }
            true
        });
        if listed.is_err() {
            return Lookup::Ambiguous;
        }
        sharing.sort();
        sharing.dedup();
        let commits: Vec<Oid> = sharing
            .into_iter()
            .filter(|oid| odb.read_header(*oid).is_ok_and(|(_, kind)| kind == ObjectType::Commit))
            .collect();
        match commits.as_slice() {
            [one] => Lookup::Found(self::hex(*one)),
            [] => Lookup::NotACommit,
            _ => Lookup::Ambiguous,
        }
    }

    /// The commit a git tag points at, peeling annotated tags. `None` when there is no tag.
    pub fn tag_commit(&self, tag: &str) -> Option<CommitId> {
        let r = self.repo.find_reference(&format!("refs/tags/{tag}")).ok()?;
        let commit = r.peel_to_commit().ok()?;
        Some(CommitId(commit.id().to_string()))
    }

    /// All tags as (name, commit), for tags that peel to a commit. Sorted by name.
    pub fn tags(&self) -> Result<Vec<(String, CommitId)>, GitError> {
        let names = self.repo.tag_names(None).map_err(|e| self.read_err("listing tags", e))?;
        let mut out: Vec<_> = names
            .iter()
            .filter_map(|n| n.ok().flatten())
            .filter_map(|n| self.tag_commit(n).map(|c| (n.to_string(), c)))
            .collect();
        out.sort();
        Ok(out)
    }

    /// Local and remote-tracking branches as (name, tip), sorted by name: `feature/x`,
    /// `origin/feature/x`. Symbolic refs (`origin/HEAD`) are left out.
    pub fn branches(&self) -> Result<Vec<(String, CommitId)>, GitError> {
        let list = self.repo.branches(None).map_err(|e| self.read_err("listing branches", e))?;
        let mut out = Vec::new();
        for item in list {
            let (branch, _) = item.map_err(|e| self.read_err("listing branches", e))?;
            let r = branch.get();
            if matches!(r.symbolic_target(), Ok(Some(_))) {
                continue;
            }
            let (Ok(name), Ok(commit)) = (r.shorthand(), r.peel_to_commit()) else { continue };
            out.push((name.to_string(), hex(commit.id())));
        }
        out.sort();
        Ok(out)
    }

    /// The mainline's first-parent chain from `tip`, newest first, down to the first commit
    /// committed before `since` (kept) or a root. A merge's first parent is the branch it
    /// was made on, so this is the mainline's own history (`git log --first-parent`).
    pub fn first_parents(&self, tip: &CommitId, since: DateTime<Utc>) -> Result<Vec<CommitId>, GitError> {
        let mut out = Vec::new();
        let mut at = Some(self.find_commit(tip)?);
        while let Some(c) = at {
            let id = hex(c.id());
            let committed = Utc.timestamp_opt(c.time().seconds(), 0).single().unwrap_or_default();
            out.push(id);
            if committed < since || self.boundary().contains(&c.id()) {
                break;
            }
            at = match c.parent_ids().next() {
                Some(p) => Some(self.repo.find_commit(p).map_err(|e| self.read_err("reading a first parent", e))?),
                None => None,
            };
        }
        Ok(out)
    }

    /// `git rev-list include ^exclude`, in git's order.
    pub fn range(&self, include: &CommitId, exclude: &CommitId) -> Result<Vec<CommitId>, GitError> {
        self.walk(std::slice::from_ref(include), std::slice::from_ref(exclude))
    }

    /// `git rev-list TIPS ^HIDDEN...`: every commit reachable from a tip and from no hidden one.
    pub fn walk(&self, tips: &[CommitId], hidden: &[CommitId]) -> Result<Vec<CommitId>, GitError> {
        Ok(self.rev_list(tips, hidden, false)?.commits.into_iter().map(|w| hex(w.oid)).collect())
    }

    /// `git log include ^exclude`: the commits of `range`, each with what a report needs.
    pub fn log(&self, include: &CommitId, exclude: &CommitId) -> Result<Log<CommitInfo>, GitError> {
        let walk = self.rev_list(std::slice::from_ref(include), std::slice::from_ref(exclude), true)?;
        Ok(Log { commits: self.infos(walk.commits)?, includes_exclude: walk.reached_hidden })
    }

    /// `log_brief`, walked once per run for each range: services with path filters share it.
    pub fn log_brief_shared(&self, include: &CommitId, exclude: &CommitId) -> Result<SharedLog, GitError> {
        let key = (include.clone(), exclude.clone());
        if let Some(log) = self.walks.borrow().get(&key) {
            return Ok(log.clone());
        }
        let log = Rc::new(self.log_brief(include, exclude)?);
        self.walks.borrow_mut().insert(key, log.clone());
        Ok(log)
    }

    /// `log` without reading the commits: ids, commit dates and parent counts.
    pub fn log_brief(&self, include: &CommitId, exclude: &CommitId) -> Result<Log<Brief>, GitError> {
        let walk = self.rev_list(std::slice::from_ref(include), std::slice::from_ref(exclude), false)?;
        let commits = walk
            .commits
            .iter()
            .map(|w| Brief { id: hex(w.oid), committed: utc(w.date), parents: w.parents as usize })
            .collect();
        Ok(Log { commits, includes_exclude: walk.reached_hidden })
    }

    /// The walk; `keep_raw` keeps the bytes of the objects it reads, for the report.
    fn rev_list(&self, tips: &[CommitId], hidden: &[CommitId], keep_raw: bool) -> Result<walk::Walk, GitError> {
        let tips = tips.iter().map(|t| self.oid(t)).collect::<Result<Vec<_>, _>>()?;
        let hidden = hidden.iter().map(|t| self.oid(t)).collect::<Result<Vec<_>, _>>()?;
        let mut loader = Loader {
            repo: self,
            objects: objects::Objects::new(self),
            graph: self.graph(),
            keep_raw,
            buf: Vec::new(),
            positions: Vec::new(),
            ids: Vec::new(),
            corrupt: None,
        };
        let walk = walk::rev_list(&mut loader, &tips, &hidden);
        let Some(graph::Corrupt(why)) = loader.corrupt.take() else { return walk };
        warn_graph_unused(&format!("{}: {why}", self.repo.commondir().join("objects/info").display()));
        self.graph_broken.set(true);
        loader.graph = None;
        walk::rev_list(&mut loader, &tips, &hidden)
    }

    /// The commit-graph, read on first use; `None` where git would not use one either.
    fn graph(&self) -> Option<&graph::Graph> {
        if self.graph_broken.get() {
            return None;
        }
        self.graph
            .get_or_init(|| {
                let off = self.repo.config().and_then(|c| c.get_bool("core.commitGraph")).ok() == Some(false);
                if off || self.repo.is_shallow() || self.repo.commondir().join("info/grafts").exists() {
                    return None;
                }
                match graph::Graph::open(&self.repo.commondir().join("objects")) {
                    Ok(g) => g,
                    Err(why) => {
                        warn_graph_unused(&why);
                        None
                    }
                }
            })
            .as_ref()
    }

    /// The report's view of walked commits, read where the walk did not read them. A long
    /// list is parsed on two threads, the second half reading only from the packs (libgit2's
    /// repository is not for sharing): what it cannot read there, the first thread reads.
    fn infos(&self, walked: Vec<walk::Walked>) -> Result<Vec<CommitInfo>, GitError> {
        let mut objects = objects::Objects::new(self);
        let mut buf = Vec::new();
        if walked.len() < PARALLEL {
            return walked.iter().map(|w| info(&self.path, &mut objects, &mut buf, w)).collect();
        }
        let (first, second) = walked.split_at(walked.len() / 2);
        let (path, packs) = (&self.path, self.packs());
        std::thread::scope(|scope| {
            let other = scope.spawn(move || packed_infos(path, packs, second));
            let mut out = Vec::with_capacity(walked.len());
            for w in first {
                out.push(info(&self.path, &mut objects, &mut buf, w)?);
            }
            let rest = other.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            for (w, got) in second.iter().zip(rest) {
                out.push(match got {
                    Some(got) => got?,
                    None => info(&self.path, &mut objects, &mut buf, w)?,
                });
            }
            Ok(out)
        })
    }

    /// Where `tip` joins the history of `known` (commit -> position, newest first): the
    /// lowest position among the known commits it reaches, and how many commits of its own
    /// it has before them. Walks only `tip`'s own commits, at most `cap` (then `None`), so a
    /// release branch costs its few hotfixes, not the history below them.
    pub fn joins(
        &self,
        tip: &CommitId,
        known: &HashMap<CommitId, usize>,
        cap: usize,
    ) -> Result<Option<(usize, usize)>, GitError> {
        if let Some(&pos) = known.get(tip) {
            return Ok(Some((pos, 0)));
        }
        let (mut objects, mut raw) = (objects::Objects::new(self), Vec::new());
        let (mut seen, mut queue) = (HashSet::new(), vec![self.oid(tip)?]);
        let (mut join, mut own, mut parents) = (None::<usize>, 0, Vec::new());
        while let Some(oid) = queue.pop() {
            if !seen.insert(oid) {
                continue;
            }
            if let Some(&pos) = known.get(&hex(oid)) {
                join = Some(join.map_or(pos, |j| j.min(pos)));
                continue;
            }
            own += 1;
            if own > cap {
                return Ok(None);
            }
            parents.clear();
            objects.commit(oid, &mut raw)?;
            commit::parents_and_date(&raw, &mut parents).map_err(|m| malformed(&self.path, oid, m))?;
            if !self.boundary().contains(&oid) {
                queue.extend(parents.iter().copied());
            }
        }
        Ok(join.map(|j| (j, own)))
    }

    /// True when `ancestor` is `descendant` or one of its ancestors.
    pub fn contains(&self, descendant: &CommitId, ancestor: &CommitId) -> Result<bool, GitError> {
        if descendant == ancestor {
            return Ok(true);
        }
        self.repo.graph_descendant_of(self.oid(descendant)?, self.oid(ancestor)?).map_err(|e| {
            self.read_err(&format!("checking whether {} contains {}", descendant.short(), ancestor.short()), e)
        })
    }

    /// Every file under `dir` (`""`: the whole tree) at `commit`, as (path, content), for
    /// reading declared state from a GitOps repository at a ref.
    pub fn files_at(&self, commit: &CommitId, dir: &str) -> Result<Vec<(String, Vec<u8>)>, GitError> {
        let doing = || format!("listing {dir} at {}", commit.short());
        let root = self.find_commit(commit)?.tree().map_err(|e| self.read_err(&doing(), e))?;
        let dir = dir.trim_matches('/');
        let tree = if dir.is_empty() {
            root
        } else {
            let entry = root.get_path(Path::new(dir)).map_err(|e| self.read_err(&doing(), e))?;
            match entry.kind() {
                Some(ObjectType::Tree) => self.repo.find_tree(entry.id()).map_err(|e| self.read_err(&doing(), e))?,
                _ => {
                    let blob = self.repo.find_blob(entry.id()).map_err(|e| self.read_err(&doing(), e))?;
                    return Ok(vec![(dir.to_string(), blob.content().to_vec())]);
                }
            }
        };
        let mut out = Vec::new();
        let mut failed = None;
        tree.walk(git2::TreeWalkMode::PreOrder, |parent, entry| {
            if entry.kind() == Some(ObjectType::Blob) {
                let path =
                    format!("{}{}{parent}{}", dir, if dir.is_empty() { "" } else { "/" }, entry.name().unwrap_or(""));
                match self.repo.find_blob(entry.id()) {
                    Ok(b) => out.push((path, b.content().to_vec())),
                    Err(e) => {
                        failed = Some(e);
                        return git2::TreeWalkResult::Abort;
                    }
                }
            }
            git2::TreeWalkResult::Ok
        })
        .map_err(|e| self.read_err(&doing(), e))?;
        match failed {
            Some(e) => Err(self.read_err(&doing(), e)),
            None => Ok(out),
        }
    }

    /// A file's content at a commit; `None` when the file does not exist there.
    pub fn file_at(&self, commit: &CommitId, path: &str) -> Result<Option<Vec<u8>>, GitError> {
        let doing = || format!("reading {path} at {}", commit.short());
        let tree = self.find_commit(commit)?.tree().map_err(|e| self.read_err(&doing(), e))?;
        let entry = match tree.get_path(Path::new(path)) {
            Ok(e) => e,
            Err(e) if e.code() == ErrorCode::NotFound => return Ok(None),
            Err(e) => return Err(self.read_err(&doing(), e)),
        };
        let blob = self.repo.find_blob(entry.id()).map_err(|e| self.read_err(&doing(), e))?;
        Ok(Some(blob.content().to_vec()))
    }

    pub fn merge_base(&self, a: &CommitId, b: &CommitId) -> Result<Option<CommitId>, GitError> {
        match self.repo.merge_base(self.oid(a)?, self.oid(b)?) {
            Ok(oid) => Ok(Some(CommitId(oid.to_string()))),
            Err(e) if e.code() == ErrorCode::NotFound => Ok(None),
            Err(e) => Err(self.read_err("finding the merge base", e)),
        }
    }

    pub fn commit_info(&self, id: &CommitId) -> Result<CommitInfo, GitError> {
        let oid = self.oid(id)?;
        let mut raw = Vec::new();
        objects::Objects::new(self).commit(oid, &mut raw)?;
        parse_info(&self.path, oid, &raw)
    }

    /// Files changed between two commits with lines added and removed, for plans.
    pub fn diff_stat(&self, from: &CommitId, to: &CommitId) -> Result<Vec<(String, usize, usize)>, GitError> {
        let doing = || format!("diffing {}..{}", from.short(), to.short());
        let a = self.find_commit(from)?.tree().map_err(|e| self.read_err(&doing(), e))?;
        let b = self.find_commit(to)?.tree().map_err(|e| self.read_err(&doing(), e))?;
        let diff = self.repo.diff_tree_to_tree(Some(&a), Some(&b), None).map_err(|e| self.read_err(&doing(), e))?;
        let mut out = Vec::new();
        for i in 0..diff.deltas().len() {
            let patch = git2::Patch::from_diff(&diff, i).map_err(|e| self.read_err(&doing(), e))?;
            let delta = diff.get_delta(i).expect("delta index in range");
            let path = delta.new_file().path().or(delta.old_file().path());
            let path = path.map(|p| p.to_string_lossy().into_owned()).unwrap_or_default();
            let (adds, dels) = match patch {
                Some(p) => p.line_stats().map(|(_, a, d)| (a, d)).unwrap_or((0, 0)),
                None => (0, 0),
            };
            out.push((path, adds, dels));
        }
        Ok(out)
    }

    fn diff_to_parent(
        &self,
        c: &git2::Commit<'_>,
        opts: Option<&mut DiffOptions>,
    ) -> Result<git2::Diff<'_>, git2::Error> {
        let tree = c.tree()?;
        let parent_tree = match c.parent_count() {
            0 => None,
            _ => Some(c.parent(0)?.tree()?),
        };
        self.repo.diff_tree_to_tree(parent_tree.as_ref(), Some(&tree), opts)
    }

    fn find_commit(&self, id: &CommitId) -> Result<git2::Commit<'_>, GitError> {
        self.repo.find_commit(self.oid(id)?).map_err(|e| self.read_err(&format!("reading commit {}", id.short()), e))
    }

    fn oid(&self, id: &CommitId) -> Result<Oid, GitError> {
        Oid::from_str(&id.0).map_err(|e| self.read_err(&format!("parsing commit id {}", id.0), e))
    }

    fn read_err(&self, doing: &str, e: git2::Error) -> GitError {
        read_err(&self.path, doing, e)
    }
}

/// The answer stays right without the graph (commits are read instead), only slower; the
/// hint is how to get a good one back.
fn warn_graph_unused(why: &str) {
    eprintln!(
        "prodiff: warning: not using the commit-graph ({why}); reading commits instead \
         (`git commit-graph write --reachable` rewrites it)"
    );
}

/// One walked commit as the report sees it, read first if the walk did not read it.
fn info(
    path: &Path,
    objects: &mut objects::Objects<'_>,
    buf: &mut Vec<u8>,
    w: &walk::Walked,
) -> Result<CommitInfo, GitError> {
    match &w.raw {
        Some(raw) => parse_info(path, w.oid, raw),
        None => {
            objects.commit(w.oid, buf)?;
            parse_info(path, w.oid, buf)
        }
    }
}

/// From how many commits `infos` splits the work between two threads.
const PARALLEL: usize = 1024;

/// `info` for each commit, from the packs only; `None` where they do not have it.
fn packed_infos(
    path: &Path,
    packs: &pack::Packs,
    walked: &[walk::Walked],
) -> Vec<Option<Result<CommitInfo, GitError>>> {
    let (mut reader, mut buf) = (pack::Reader::default(), Vec::new());
    let mut one = |w: &walk::Walked| match &w.raw {
        Some(raw) => Some(parse_info(path, w.oid, raw)),
        None => match reader.read(packs, w.oid.as_bytes(), &mut buf) {
            Ok(Some(pack::Kind::Commit)) => Some(parse_info(path, w.oid, &buf)),
            // Not in a pack, not a commit or unreadable: the other thread reads it and says why.
            _ => None,
        },
    };
    walked.iter().map(&mut one).collect()
}

fn parse_info(path: &Path, oid: Oid, raw: &[u8]) -> Result<CommitInfo, GitError> {
    let c = commit::parse(raw).map_err(|m| malformed(path, oid, m))?;
    Ok(CommitInfo {
        id: hex(oid),
        subject: lossy(&commit::summary(c.message)),
        message: lossy(c.message),
        author: lossy(c.author_name),
        email: lossy(c.author_email),
        date: utc(c.author_time),
        committed: utc(c.committer_time),
        parents: c.parents,
    })
}

fn malformed(path: &Path, oid: Oid, m: commit::Malformed) -> GitError {
    GitError::Read { path: path.to_path_buf(), doing: format!("reading commit {oid}"), message: m.0.to_string() }
}

fn read_err(path: &Path, doing: &str, e: git2::Error) -> GitError {
    GitError::Read { path: path.to_path_buf(), doing: doing.to_string(), message: e.message().to_string() }
}

/// An id as 40 hex digits (`Oid`'s Display goes through libgit2 and the formatter: on lists
/// of 100k commits that shows).
fn hex(oid: Oid) -> CommitId {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = [0u8; 40];
    for (i, b) in oid.as_bytes().iter().enumerate() {
        s[2 * i] = DIGITS[(b >> 4) as usize];
        s[2 * i + 1] = DIGITS[(b & 15) as usize];
    }
    CommitId(std::str::from_utf8(&s).expect("hex digits").to_owned())
}

fn utc(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(seconds, 0).single().unwrap_or_default()
}

/// Commit text is bytes in git; reports want UTF-8 and must not fail on legacy encodings.
fn lossy(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_owned(),
        Err(_) => String::from_utf8_lossy(bytes).into_owned(),
    }
}
