//! Which commits touch a service's paths (`git rev-list --no-merges -- PATHS`), answered
//! cheaply for many services over the same commits: literal paths the way git prunes a tree
//! diff (the entry at that path in the commit's tree and its parent's differs or not, in
//! object id or mode),
//! wildcard patterns against the files each commit changes, diffed at most once per run.

use std::cell::RefCell;
use std::collections::hash_map::{Entry, HashMap};
use std::path::Path;

use git2::Oid;

use super::{GitError, Repo};
use crate::model::CommitId;

/// A commit's tree and its first parent's (None for a root commit); None for a merge.
type Trees = Option<(Oid, Option<Oid>)>;

/// What `touches` keeps for the run: each commit's trees, the files it changes (for
/// wildcard patterns) and each compiled pattern list.
#[derive(Default)]
pub(super) struct Touched {
    trees: RefCell<HashMap<Oid, Trees>>,
    /// Each commit's tree and parents, where read from its object.
    raw: RefCell<HashMap<Oid, (Oid, Vec<Oid>)>>,
    changed: RefCell<HashMap<Oid, Vec<String>>>,
    specs: RefCell<HashMap<Vec<String>, git2::Pathspec>>,
}

impl Repo {
    /// True when a non-merge commit changes a path under one of `paths` (like
    /// `git rev-list --no-merges -- paths`). Merges never match. Literal paths are answered
    /// the way git prunes a tree diff: the entry at that path, in the commit's tree and its
    /// parent's, differs or not. Patterns with wildcards are matched against the files the
    /// commit changes, diffed once per run whatever the number of services asking.
    pub fn touches(&self, id: &CommitId, paths: &[String]) -> Result<bool, GitError> {
        let doing = || format!("diffing {}", id.short());
        let oid = self.oid(id)?;
        let Some((tree, parent)) = self.trees_of(oid)? else { return Ok(false) };
        if paths.iter().all(|p| !p.contains(['*', '?', '[', '\\']) && !p.starts_with([':', '!'])) {
            for path in paths {
                if self.differs(tree, parent, path).map_err(|e| self.read_err(&doing(), e))? {
                    return Ok(true);
                }
            }
            return Ok(false);
        }
        if !self.touched.changed.borrow().contains_key(&oid) {
            let files = self.changed_files(tree, parent).map_err(|e| self.read_err(&doing(), e))?;
            self.touched.changed.borrow_mut().insert(oid, files);
        }
        let mut specs = self.touched.specs.borrow_mut();
        let spec = match specs.entry(paths.to_vec()) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => {
                e.insert(git2::Pathspec::new(paths).map_err(|e| self.read_err(&format!("reading paths {paths:?}"), e))?)
            }
        };
        let changed = self.touched.changed.borrow();
        Ok(changed[&oid].iter().any(|f| spec.matches_path(Path::new(f), git2::PathspecFlags::DEFAULT)))
    }

    /// A commit's tree and its first parent's, once per run; None for merges. From the
    /// commit-graph where it has them (no object read), else from the raw commit objects.
    pub(super) fn trees_of(&self, oid: Oid) -> Result<Trees, GitError> {
        if let Some(known) = self.touched.trees.borrow().get(&oid) {
            return Ok(*known);
        }
        let trees = match self.graph_trees(oid) {
            Some(trees) => trees,
            None => {
                let (tree, parents) = self.tree_and_parents(oid)?;
                match parents.as_slice() {
                    [] => Some((tree, None)),
                    [p] => Some((tree, Some(self.tree_and_parents(*p)?.0))),
                    _ => None,
                }
            }
        };
        self.touched.trees.borrow_mut().insert(oid, trees);
        Ok(trees)
    }

    /// `trees_of` from the commit-graph; None where it lacks the commit or is corrupt.
    fn graph_trees(&self, oid: Oid) -> Option<Trees> {
        let g = self.graph()?;
        let pos = g.position(oid.as_bytes())?;
        let mut parents = Vec::new();
        g.commit(pos, &mut parents).ok()?;
        let tree = |p: u32| Oid::from_bytes(g.tree(p)).ok();
        Some(match parents.as_slice() {
            [] => Some((tree(pos)?, None)),
            [p] => Some((tree(pos)?, Some(tree(*p)?))),
            _ => None,
        })
    }

    /// A commit's tree and parents from its raw object (a shallow boundary has none here),
    /// read once per run: a commit's parent is usually the next commit asked about.
    fn tree_and_parents(&self, oid: Oid) -> Result<(Oid, Vec<Oid>), GitError> {
        if let Some(known) = self.touched.raw.borrow().get(&oid) {
            return Ok(known.clone());
        }
        let read = self.read_tree_and_parents(oid)?;
        self.touched.raw.borrow_mut().insert(oid, read.clone());
        Ok(read)
    }

    fn read_tree_and_parents(&self, oid: Oid) -> Result<(Oid, Vec<Oid>), GitError> {
        let mut raw = Vec::new();
        super::objects::Objects::new(self).commit(oid, &mut raw)?;
        let mut parents = Vec::new();
        super::commit::parents_and_date(&raw, &mut parents).map_err(|m| super::malformed(&self.path, oid, m))?;
        if self.boundary().contains(&oid) {
            parents.clear();
        }
        let tree = super::commit::tree(&raw).map_err(|m| super::malformed(&self.path, oid, m))?;
        Ok((tree, parents))
    }

    /// Whether the entry at `path` (`""` or `.`: the whole tree) differs, in object id or
    /// mode, between `tree` and `parent` (None: a root commit). Descends both trees one
    /// component at a time and stops where the entries agree, as git's tree diff prunes: a
    /// commit that changes another directory costs two root-tree lookups. The mode counts as
    /// git counts it: `chmod +x` alone is a change.
    fn differs(&self, tree: Oid, parent: Option<Oid>, path: &str) -> Result<bool, git2::Error> {
        let names: Vec<&str> = path.split('/').filter(|c| !c.is_empty() && *c != ".").collect();
        let (mut a, mut b) = (Some(tree), parent);
        for (i, name) in names.iter().enumerate() {
            let (ea, eb) = (self.entry_in(a, name)?, self.entry_in(b, name)?);
            if ea == eb {
                return Ok(false);
            }
            if i + 1 == names.len() {
                return Ok(true);
            }
            let dir = |e: Option<(Oid, i32)>| e.filter(|(_, mode)| *mode == 0o040000).map(|(id, _)| id);
            (a, b) = (dir(ea), dir(eb));
            if a.is_none() && b.is_none() {
                // Neither side has a directory there: the path exists on neither.
                return Ok(false);
            }
        }
        Ok(Some(tree) != parent)
    }

    /// The id and mode of the entry `name` in the tree `tree` (None: no tree, or no entry).
    fn entry_in(&self, tree: Option<Oid>, name: &str) -> Result<Option<(Oid, i32)>, git2::Error> {
        let Some(tree) = tree else { return Ok(None) };
        let tree = self.repo.find_tree(tree)?;
        Ok(tree.get_name(name).map(|e| (e.id(), e.filemode())))
    }

    /// The paths a (non-merge) commit changes against its first parent, both sides of each
    /// change.
    pub(super) fn changed_files(&self, tree: Oid, parent: Option<Oid>) -> Result<Vec<String>, git2::Error> {
        let tree = self.repo.find_tree(tree)?;
        let parent = parent.map(|p| self.repo.find_tree(p)).transpose()?;
        let diff = self.repo.diff_tree_to_tree(parent.as_ref(), Some(&tree), None)?;
        let mut files = Vec::new();
        for delta in diff.deltas() {
            for file in [delta.old_file(), delta.new_file()] {
                if let Some(path) = file.path().map(|p| p.to_string_lossy().into_owned()) {
                    if files.last() != Some(&path) {
                        files.push(path);
                    }
                }
            }
        }
        Ok(files)
    }
}
