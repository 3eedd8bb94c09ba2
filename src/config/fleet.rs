//! The fleet: one config describing services built from several repositories. A service
//! names its clone (`repo = "../calendar"`), `repos = [...]` pulls in each repository's own
//! `prodiff.toml` services, and `--repos-dir` adds every clone in a directory. This module
//! only splits the config into one `Unit` per repository; it opens no repository (that is
//! git's job) and observes nothing.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use super::{Config, ConfigError, FILE_NAME};

/// One repository of the fleet, with its share of the config.
#[derive(Debug, Clone)]
pub struct Unit {
    /// The clone; `None`: the `--repo` repository.
    pub repo: Option<PathBuf>,
    /// This repository's view of the config: its services only, its mainline and tickets.
    pub config: Config,
}

/// Whether this config audits more than the `--repo` repository.
pub fn is_fleet(config: &Config, repos_dir: &[PathBuf]) -> bool {
    !repos_dir.is_empty() || !config.repos.is_empty() || config.services.iter().any(|s| s.repo.is_some())
}

/// `repos = [...]`: each repository's own `prodiff.toml` services join this config, built
/// from that repository (their mainline and tickets default to that file's). A missing
/// repository or file adds nothing here: the audit reports a missing clone as a finding.
/// Only services are taken: the sources stay the fleet file's, so each is observed once.
pub(super) fn pull_in(config: &mut Config) -> Result<(), ConfigError> {
    let own = config.path.clone().unwrap_or_else(|| PathBuf::from(FILE_NAME));
    let mut origin: BTreeMap<String, PathBuf> = config.services.iter().map(|s| (s.name.clone(), own.clone())).collect();
    for repo in config.repos.clone() {
        let file = repo.join(FILE_NAME);
        if !file.is_file() {
            continue;
        }
        let text =
            std::fs::read(&file).map_err(|e| ConfigError::Read { path: file.clone(), message: e.to_string() })?;
        let text = super::observe::utf8(text).map_err(|(line, column, message)| ConfigError::Invalid {
            path: file.clone(),
            line,
            column,
            message,
        })?;
        let theirs = Config::parse(&text, &file)?;
        for mut s in theirs.services {
            if let Some(first) = origin.get(&s.name) {
                return Err(ConfigError::Clash { service: s.name, first: first.clone(), second: file });
            }
            origin.insert(s.name.clone(), file.clone());
            s.repo = Some(s.repo.unwrap_or_else(|| repo.clone()));
            s.mainline = s.mainline.or_else(|| theirs.mainline.clone());
            s.tickets = s.tickets.or_else(|| Some(theirs.tickets.clone()));
            config.services.push(s);
        }
    }
    config.services.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(())
}

/// The immediate subdirectories of `dir` that are git clones (hold `.git`), sorted.
pub fn scan(dir: &Path) -> Result<Vec<PathBuf>, ConfigError> {
    let read = |e: std::io::Error| ConfigError::Read { path: dir.to_path_buf(), message: e.to_string() };
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read)? {
        let path = entry.map_err(read)?.path();
        if path.is_dir() && path.join(".git").exists() {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

/// One unit per repository: the `--repo` one first (when some service uses it, the flag was
/// given, or this is no fleet at all), then each named clone in order of first mention, then
/// the scanned ones. Paths are compared after `..` and `.` are folded.
pub fn units(config: &Config, scanned: &[PathBuf], explicit_repo: bool) -> Vec<Unit> {
    let fleet = is_fleet(config, scanned);
    let mut repos: Vec<PathBuf> = Vec::new();
    let named = config.services.iter().filter_map(|s| s.repo.as_ref());
    for r in config.repos.iter().chain(named).chain(scanned) {
        let r = fold(r);
        if !repos.contains(&r) {
            repos.push(r);
        }
    }
    let mut out = Vec::new();
    if !fleet || explicit_repo || config.services.iter().any(|s| s.repo.is_none()) {
        let mut own = config.clone();
        own.services.retain(|s| s.repo.is_none());
        own.mainline = own.mainline.or_else(|| own.services.iter().find_map(|s| s.mainline.clone()));
        out.push(Unit { repo: None, config: own });
    }
    for repo in repos {
        let mut c = config.clone();
        c.services.retain(|s| s.repo.as_deref().map(fold).as_ref() == Some(&repo));
        c.mainline = c.services.iter().find_map(|s| s.mainline.clone());
        if let Some(t) = c.services.iter().find_map(|s| s.tickets.clone()) {
            c.tickets = t;
        }
        out.push(Unit { repo: Some(repo), config: c });
    }
    out
}

/// `/a/b/../c/.` → `/a/c`, without touching the file system (the path may not exist).
fn fold(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir if matches!(out.components().next_back(), Some(Component::Normal(_))) => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Config {
        Config::parse(text, Path::new("/fleet/prodiff.toml")).unwrap()
    }

    #[test]
    fn one_repository_is_one_unit_with_the_whole_config() {
        let c = parse("[services.api]\nimage = \"acme/api\"\n");
        assert!(!is_fleet(&c, &[]));
        let u = units(&c, &[], false);
        assert_eq!(u.len(), 1);
        assert!(u[0].repo.is_none());
        assert_eq!(u[0].config.services.len(), 1);
    }

    #[test]
    fn services_are_split_by_their_repository() {
        let c = parse(
            "mainline = \"trunk\"\n[services.cal]\nrepo = \"../calendar\"\nmainline = \"dev\"\n\
             [services.web]\nrepo = \"./x/../site\"\n[services.www]\nrepo = \"site\"\n",
        );
        let u = units(&c, &[], false);
        let names: Vec<_> = u.iter().map(|u| u.repo.clone().unwrap()).collect();
        assert_eq!(names, [PathBuf::from("/calendar"), PathBuf::from("/fleet/site")]);
        assert_eq!(u[0].config.mainline.as_deref(), Some("dev"));
        assert_eq!(u[1].config.mainline, None, "a named clone's mainline is detected there");
        let site: Vec<_> = u[1].config.services.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(site, ["web", "www"]);
        assert_eq!(units(&c, &[], true).len(), 3, "--repo given: its unit too");
    }

    #[test]
    fn pulled_in_services_clash_by_name() {
        let dir = tempfile::tempdir().unwrap();
        for (repo, text) in [("a", "mainline = \"dev\"\n[services.api]\n"), ("b", "[services.api]\n")] {
            std::fs::create_dir(dir.path().join(repo)).unwrap();
            std::fs::write(dir.path().join(repo).join(FILE_NAME), text).unwrap();
        }
        let fleet = dir.path().join("fleet.toml");
        std::fs::write(&fleet, "repos = [\"a\"]\n").unwrap();
        let c = Config::load(&fleet).unwrap();
        assert_eq!(c.services[0].repo.as_deref(), Some(dir.path().join("a").as_path()));
        assert_eq!(c.services[0].mainline.as_deref(), Some("dev"));
        std::fs::write(&fleet, "repos = [\"a\", \"b\"]\n").unwrap();
        let e = Config::load(&fleet).unwrap_err().to_string();
        let (a, b) = (dir.path().join("a/prodiff.toml"), dir.path().join("b/prodiff.toml"));
        assert_eq!(e, format!("service \"api\" is defined twice: in {} and in {}", a.display(), b.display()));
    }
}
