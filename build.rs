//! Puts the commit prodiff is built from into `--version`: `git rev-parse` when the source
//! is a git checkout, `PRODIFF_BUILD_COMMIT` when a packager sets it, "unknown commit"
//! otherwise (a tarball, `cargo install` from crates.io). Never fails the build.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=PRODIFF_BUILD_COMMIT");
    let commit = std::env::var("PRODIFF_BUILD_COMMIT")
        .ok()
        .filter(|c| !c.trim().is_empty())
        .or_else(git_commit)
        .unwrap_or_else(|| "unknown commit".to_string());
    println!("cargo:rustc-env=PRODIFF_BUILD_COMMIT={}", commit.trim());
}

/// The short HEAD commit, and a rerun when HEAD or the branch it names moves.
fn git_commit() -> Option<String> {
    let commit = git(&["rev-parse", "--short=10", "HEAD"])?;
    for path in [
        git(&["rev-parse", "--git-path", "HEAD"]),
        symbolic_ref_path(),
        git(&["rev-parse", "--git-path", "packed-refs"]),
    ]
    .into_iter()
    .flatten()
    // A path that does not exist would make cargo rerun this on every build.
    .filter(|p| std::path::Path::new(p).exists())
    {
        println!("cargo:rerun-if-changed={path}");
    }
    Some(commit)
}

fn symbolic_ref_path() -> Option<String> {
    let name = git(&["symbolic-ref", "-q", "HEAD"])?;
    git(&["rev-parse", "--git-path", &name])
}

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let s = String::from_utf8(out.stdout).ok()?;
    (out.status.success() && !s.trim().is_empty()).then(|| s.trim().to_string())
}
