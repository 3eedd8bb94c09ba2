//! Patch-ids, for pairing cherry-picks the way git's `patch-ids.c` does: a full patch-id
//! (`git patch-id --stable`, libgit2's `Diff::patchid`) costs a diff with every changed
//! blob read, so the pairing computes it for the smaller side only, and for the other side
//! first a cheap pre-hash (the paths a commit changes, from a tree diff that reads no blob:
//! git's "header-only" id). Equal patch-ids imply equal pre-hashes, so a full patch-id is
//! computed only where a pre-hash matches.
//!
//! Both are kept for the run; patch-ids also in the persistent cache (a commit's patch-id
//! never changes: the commit id covers its tree and its parent's), under `patch-ids/` in the
//! cache directory. A cache that cannot be read or written only costs the diff again.

use std::cell::RefCell;
use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;

use git2::Oid;

use super::{GitError, Repo};
use crate::model::CommitId;

/// What the run learnt of each commit's patch.
#[derive(Default)]
pub(super) struct Patches {
    ids: RefCell<HashMap<Oid, Option<String>>>,
    pre: RefCell<HashMap<Oid, Option<(u64, String)>>>,
    store: Store,
}

impl Repo {
    /// `git patch-id --stable` of a commit's change against its parent; `None` for merges
    /// and commits that change nothing (git does not pair them either).
    pub fn patch_id(&self, id: &CommitId) -> Result<Option<String>, GitError> {
        let oid = self.oid(id)?;
        if let Some(known) = self.patches.ids.borrow().get(&oid) {
            return Ok(known.clone());
        }
        let pid = match self.patches.store.get(oid) {
            Some(cached) => cached,
            None => {
                let pid = self.compute_patch_id(id)?;
                self.patches.store.put(oid, pid.as_deref());
                pid
            }
        };
        self.patches.ids.borrow_mut().insert(oid, pid.clone());
        Ok(pid)
    }

    /// The pre-hash of a commit's patch: a hash of the paths it changes (both sides of each
    /// change), `None` exactly where `patch_id` is `None`. Reads trees, never blobs.
    pub fn patch_prehash(&self, id: &CommitId) -> Result<Option<u64>, GitError> {
        Ok(self.patch_paths(id)?.map(|(pre, _)| pre))
    }

    /// The pre-hash and the first path a commit changes (a commit with the same patch
    /// changes that path too: a cheap test to run before the pre-hash, see `touches`).
    pub fn patch_paths(&self, id: &CommitId) -> Result<Option<(u64, String)>, GitError> {
        let oid = self.oid(id)?;
        if let Some(known) = self.patches.pre.borrow().get(&oid) {
            return Ok(known.clone());
        }
        let doing = || format!("diffing {}", id.short());
        let pre = match self.trees_of(oid)? {
            None => None,
            Some((tree, parent)) => {
                let files = self.changed_files(tree, parent).map_err(|e| self.read_err(&doing(), e))?;
                files.first().cloned().map(|first| {
                    let mut h = DefaultHasher::new();
                    files.hash(&mut h);
                    (h.finish(), first)
                })
            }
        };
        self.patches.pre.borrow_mut().insert(oid, pre.clone());
        Ok(pre)
    }

    fn compute_patch_id(&self, id: &CommitId) -> Result<Option<String>, GitError> {
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
}

/// Patch-ids on disk: one small file per commit, `patch-ids/ab/cdef…`, holding the 40-hex
/// patch-id or `none`. Anything else read there is a miss.
#[derive(Default)]
struct Store {
    dir: Option<PathBuf>,
}

impl Store {
    fn path(&self, oid: Oid) -> Option<PathBuf> {
        let hex = super::hex(oid).0;
        Some(self.dir.as_ref()?.join("patch-ids").join(&hex[..2]).join(&hex[2..]))
    }

    fn get(&self, oid: Oid) -> Option<Option<String>> {
        let text = std::fs::read_to_string(self.path(oid)?).ok()?;
        match text.trim() {
            "none" => Some(None),
            t if t.len() == 40 && t.bytes().all(|b| b.is_ascii_hexdigit()) => Some(Some(t.to_string())),
            _ => None,
        }
    }

    fn put(&self, oid: Oid, pid: Option<&str>) {
        if let Some(path) = self.path(oid) {
            let _ = crate::cache_dir::write_atomically(&path, pid.unwrap_or("none").as_bytes());
        }
    }
}

impl Patches {
    /// Patches kept in the persistent cache at `dir` (none: only for the run).
    pub(super) fn new(dir: Option<PathBuf>) -> Patches {
        Patches { store: Store { dir }, ..Default::default() }
    }
}
