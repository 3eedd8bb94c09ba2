//! The repository, behind one small interface that hands out owned values.
//!
//! git2 lives here and nowhere else: callers get `CommitId`s, `CommitInfo`s and plain
//! strings, never a `git2::Commit<'repo>`. Every walk error is returned, never dropped.
//! This module only reads: it never writes refs, objects or config.

use std::path::{Path, PathBuf};

use chrono::{DateTime, TimeZone, Utc};
use git2::{DiffOptions, ErrorCode, ObjectType, Oid, Repository, Sort};

use crate::model::CommitId;

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

pub struct Repo {
    repo: Repository,
    path: PathBuf,
}

impl Repo {
    /// Opens the repository containing `path` (like git, it looks upwards).
    pub fn open(path: &Path) -> Result<Repo, GitError> {
        // Every object read is re-hashed by default; git does not do that on reads, and on a
        // 150k-commit walk it costs ~10%. prodiff only reads, so corruption shows up as a
        // parse error instead.
        git2::opts::strict_hash_verification(false);
        let repo = Repository::discover(path)
            .map_err(|e| GitError::Open { path: path.to_path_buf(), message: e.message().to_string() })?;
        let path = repo.workdir().unwrap_or_else(|| repo.path());
        // `/tmp/x/` and `/tmp/x` are one repository; print it without the trailing slash.
        let path = path.components().collect::<PathBuf>();
        Ok(Repo { repo, path })
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
            Err(e) if e.code() == ErrorCode::Ambiguous => Lookup::Ambiguous,
            Err(_) => Lookup::NotFound,
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

    /// `git rev-list include ^exclude`: newest first (commit time, parents after children).
    pub fn range(&self, include: &CommitId, exclude: &CommitId) -> Result<Vec<CommitId>, GitError> {
        self.walk(std::slice::from_ref(include), std::slice::from_ref(exclude))
    }

    /// `git rev-list TIPS ^HIDDEN...`: every commit reachable from a tip and from no hidden one.
    pub fn walk(&self, tips: &[CommitId], hidden: &[CommitId]) -> Result<Vec<CommitId>, GitError> {
        let doing = || format!("walking history from {} tip(s)", tips.len());
        let mut walk = self.repo.revwalk().map_err(|e| self.read_err(&doing(), e))?;
        walk.set_sorting(Sort::TOPOLOGICAL | Sort::TIME).map_err(|e| self.read_err(&doing(), e))?;
        for t in tips {
            walk.push(self.oid(t)?).map_err(|e| self.read_err(&doing(), e))?;
        }
        for h in hidden {
            walk.hide(self.oid(h)?).map_err(|e| self.read_err(&doing(), e))?;
        }
        walk.map(|r| r.map(|oid| CommitId(oid.to_string())).map_err(|e| self.read_err(&doing(), e))).collect()
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
        let c = self.find_commit(id)?;
        let author = c.author();
        let time = |t: git2::Time| Utc.timestamp_opt(t.seconds(), 0).single().unwrap_or_default();
        Ok(CommitInfo {
            id: id.clone(),
            subject: lossy(c.summary_bytes()),
            message: lossy(Some(c.message_bytes())),
            author: lossy(Some(author.name_bytes())),
            email: lossy(Some(author.email_bytes())),
            date: time(author.when()),
            committed: time(c.time()),
            parents: c.parent_count(),
        })
    }

    /// `git patch-id --stable` of a commit's change against its parent; `None` for merges
    /// (git does not compute patch-ids for them either).
    pub fn patch_id(&self, id: &CommitId) -> Result<Option<String>, GitError> {
        let doing = || format!("computing the patch-id of {}", id.short());
        let c = self.find_commit(id)?;
        if c.parent_count() > 1 {
            return Ok(None);
        }
        let diff = self.diff_to_parent(&c, None).map_err(|e| self.read_err(&doing(), e))?;
        if diff.deltas().len() == 0 {
            return Ok(None);
        }
        let pid = diff.patchid(None).map_err(|e| self.read_err(&doing(), e))?;
        Ok(Some(pid.to_string()))
    }

    /// True when a non-merge commit changes a path under one of `paths` (like
    /// `git rev-list --no-merges -- paths`). Merges never match.
    pub fn touches(&self, id: &CommitId, paths: &[String]) -> Result<bool, GitError> {
        let c = self.find_commit(id)?;
        if c.parent_count() > 1 {
            return Ok(false);
        }
        let mut opts = DiffOptions::new();
        for p in paths {
            opts.pathspec(p);
        }
        let diff = self
            .diff_to_parent(&c, Some(&mut opts))
            .map_err(|e| self.read_err(&format!("diffing {}", id.short()), e))?;
        Ok(diff.deltas().len() > 0)
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
        GitError::Read { path: self.path.clone(), doing: doing.to_string(), message: e.message().to_string() }
    }
}

/// Commit text is bytes in git; reports want UTF-8 and must not fail on legacy encodings.
fn lossy(bytes: Option<&[u8]>) -> String {
    bytes.map(|b| String::from_utf8_lossy(b).into_owned()).unwrap_or_default()
}
