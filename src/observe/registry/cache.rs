//! A persistent cache of immutable facts: content addressed by digest (manifests, indexes,
//! config blobs), so a second run fetches nothing it has already verified. Tag answers are
//! never stored here: a tag can move, so it is asked again on every run.
//!
//! Location: `$PRODIFF_CACHE_DIR`, else `$XDG_CACHE_HOME/prodiff`, else `~/.cache/prodiff`.
//! Entries are re-hashed on read; a corrupt entry is ignored and refetched. A cache that
//! cannot be written is not an error: prodiff then just asks the registry again.

use std::path::PathBuf;

use crate::reference::Digest;

#[derive(Debug, Clone)]
pub struct Cache {
    dir: Option<PathBuf>,
}

impl Cache {
    /// The cache at the default location (see the module docs).
    pub fn from_env() -> Cache {
        Cache { dir: dir_from_env() }
    }

    /// A cache that stores nothing.
    pub fn none() -> Cache {
        Cache { dir: None }
    }

    fn path(&self, digest: &Digest) -> Option<PathBuf> {
        let (algo, hex) = digest.as_str().split_once(':')?;
        Some(self.dir.as_ref()?.join("blobs").join(algo).join(hex))
    }

    /// The verified content for `digest`, if cached.
    pub fn get(&self, digest: &Digest) -> Option<Vec<u8>> {
        let bytes = std::fs::read(self.path(digest)?).ok()?;
        super::verify(&bytes, digest).ok()?;
        Some(bytes)
    }

    /// Stores content already verified against `digest`. Failures are ignored (see above).
    pub fn put(&self, digest: &Digest, bytes: &[u8]) {
        if let Some(path) = self.path(digest) {
            let _ = write_atomically(&path, bytes);
        }
    }
}

pub use crate::cache_dir::{dir_from_env, write_atomically};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_verified_on_read() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache { dir: Some(dir.path().to_path_buf()) };
        let digest = Digest::parse(&super::super::sha256(b"manifest")).unwrap();
        assert_eq!(cache.get(&digest), None);
        cache.put(&digest, b"manifest");
        assert_eq!(cache.get(&digest).as_deref(), Some(&b"manifest"[..]));
        std::fs::write(cache.path(&digest).unwrap(), b"tampered").unwrap();
        assert_eq!(cache.get(&digest), None, "a corrupt entry is a miss");
        assert_eq!(Cache::none().get(&digest), None);
    }
}
