//! Where prodiff keeps immutable facts on disk (registry blobs, git patch-ids), and how it
//! writes them: `$PRODIFF_CACHE_DIR`, else `$XDG_CACHE_HOME/prodiff`, else `~/.cache/prodiff`,
//! each file written to a temporary name and renamed. Ground floor: imports nothing of prodiff.

use std::path::{Path, PathBuf};

/// The cache directory (see the module docs); also where git keeps its immutable facts.
pub fn dir_from_env() -> Option<PathBuf> {
    std::env::var_os("PRODIFF_CACHE_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()).map(|x| PathBuf::from(x).join("prodiff"))
        })
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/prodiff")))
}

/// Writes `bytes` to `path` through a temporary file and a rename, so readers never see half.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().expect("cache paths have a parent");
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".{}.{}.tmp", path.file_name().unwrap().to_string_lossy(), std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}
