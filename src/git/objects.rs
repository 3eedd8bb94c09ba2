//! Where commit objects are read from: the repository's packs directly ([`super::pack`]), and
//! libgit2 for whatever they do not hold (loose objects, alternates, a pack written since the
//! repository was opened, an index format the pack reader leaves alone). Callers get the
//! object's bytes in a buffer they own and reuse; they never see which of the two answered.
//! It only reads.

use git2::{ObjectType, Oid};

use super::pack::{self, Kind};
use super::{read_err, GitError, Repo};

/// Reads commits out of one repository, on its thread. Its pack reader (an inflater and a
/// cache of delta bases) is the repository's, lent for as long as this lives.
pub(super) struct Objects<'r> {
    repo: &'r Repo,
    packs: &'r pack::Packs,
    reader: pack::Reader,
    odb: Option<git2::Odb<'r>>,
}

impl Drop for Objects<'_> {
    fn drop(&mut self) {
        *self.repo.reader.borrow_mut() = Some(std::mem::take(&mut self.reader));
    }
}

impl<'r> Objects<'r> {
    pub fn new(repo: &'r Repo) -> Objects<'r> {
        let reader = repo.reader.borrow_mut().take().unwrap_or_default();
        Objects { repo, packs: repo.packs(), reader, odb: None }
    }

    /// The bytes of commit `oid` into `out` (what it held is replaced).
    pub fn commit(&mut self, oid: Oid, out: &mut Vec<u8>) -> Result<(), GitError> {
        let doing = || format!("reading commit {oid}");
        let kind = match self.reader.read(self.packs, oid.as_bytes(), out) {
            Ok(Some(kind)) => kind.name(),
            Ok(None) => self.read_odb(oid, out)?,
            Err(pack::Corrupt(message)) => {
                return Err(GitError::Read { path: self.repo.path.clone(), doing: doing(), message })
            }
        };
        if kind != Kind::Commit.name() {
            let message = format!("the object is a {kind}, not a commit");
            return Err(GitError::Read { path: self.repo.path.clone(), doing: doing(), message });
        }
        Ok(())
    }

    fn read_odb(&mut self, oid: Oid, out: &mut Vec<u8>) -> Result<&'static str, GitError> {
        let doing = || format!("reading commit {oid}");
        if self.odb.is_none() {
            let odb = self.repo.repo.odb();
            self.odb = Some(odb.map_err(|e| read_err(&self.repo.path, "opening the object database", e))?);
        }
        let obj =
            self.odb.as_ref().expect("just opened").read(oid).map_err(|e| read_err(&self.repo.path, &doing(), e))?;
        out.clear();
        out.extend_from_slice(obj.data());
        Ok(match obj.kind() {
            ObjectType::Commit => "commit",
            ObjectType::Tree => "tree",
            ObjectType::Blob => "blob",
            ObjectType::Tag => "tag",
            _ => "object of unknown type",
        })
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::process::Command;

    use crate::model::CommitId;

    fn git(dir: &Path, args: &[&str]) -> String {
        let out = Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "A")
            .env("GIT_AUTHOR_EMAIL", "a@example.com")
            .env("GIT_COMMITTER_NAME", "C")
            .env("GIT_COMMITTER_EMAIL", "c@example.com")
            .env("GIT_AUTHOR_DATE", "@1700000000 +0000")
            .env("GIT_COMMITTER_DATE", "@1700000100 +0000")
            .output()
            .expect("git is installed");
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }

    /// Each commit's subject, author and parents as prodiff reads them and as git prints them.
    fn check(dir: &Path) -> usize {
        let repo = super::Repo::open(dir).unwrap();
        let log = git(dir, &["log", "--all", "--format=%H%x00%s%x00%an%x00%P"]);
        for line in log.lines() {
            let f: Vec<&str> = line.split('\0').collect();
            let info = repo.commit_info(&CommitId(f[0].to_string())).unwrap();
            assert_eq!((info.subject.as_str(), info.author.as_str()), (f[1], f[2]), "{line}");
            assert_eq!(info.parents, f[3].split_whitespace().count(), "{line}");
        }
        log.lines().count()
    }

    #[test]
    fn commits_are_read_from_packs_loose_objects_and_alternates_alike() {
        let dir = tempfile::tempdir().unwrap();
        let (base, clone) = (dir.path().join("base"), dir.path().join("clone"));
        std::fs::create_dir(&base).unwrap();
        git(&base, &["init", "-q", "-b", "main"]);
        for n in 0..5 {
            git(&base, &["commit", "-q", "--allow-empty", "-m", &format!("packed {n}")]);
        }
        git(&base, &["repack", "-q", "-ad"]);
        git(&base, &["commit", "-q", "--allow-empty", "-m", "loose in base"]);
        // The clone borrows the base's objects (objects/info/alternates) and adds loose ones.
        git(dir.path(), &["clone", "-q", "--shared", base.to_str().unwrap(), "clone"]);
        assert!(clone.join(".git/objects/info/alternates").exists());
        for n in 0..3 {
            git(&clone, &["commit", "-q", "--allow-empty", "-m", &format!("loose in clone {n}")]);
        }
        assert_eq!(check(&base), 6);
        assert_eq!(check(&clone), 9);
        // A walk over all of them: packed, loose and borrowed commits in one range.
        let repo = super::Repo::open(&clone).unwrap();
        let tip = repo.resolve_rev("HEAD").unwrap();
        let root = CommitId(git(&clone, &["rev-list", "--max-parents=0", "HEAD"]).trim().to_string());
        let log = repo.log(&tip, &root).unwrap();
        assert_eq!(log.commits.len(), 8);
        assert_eq!(log.commits[7].subject, "packed 1");
    }

    #[test]
    fn an_object_that_is_not_a_commit_is_named_as_what_it_is() {
        let dir = tempfile::tempdir().unwrap();
        git(dir.path(), &["init", "-q", "-b", "main"]);
        git(dir.path(), &["commit", "-q", "--allow-empty", "-m", "one"]);
        let tree = git(dir.path(), &["rev-parse", "HEAD^{tree}"]).trim().to_string();
        let repo = super::Repo::open(dir.path()).unwrap();
        let loose = repo.commit_info(&CommitId(tree.clone())).unwrap_err().to_string();
        git(dir.path(), &["repack", "-q", "-ad"]);
        let repo = super::Repo::open(dir.path()).unwrap();
        let packed = repo.commit_info(&CommitId(tree)).unwrap_err().to_string();
        assert!(loose.contains("the object is a tree, not a commit"), "{loose}");
        assert_eq!(packed, loose);
    }
}
