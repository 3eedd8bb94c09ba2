//! Pure helpers of the release workflows: which paths are risky, which git tags are
//! releases of a service (and which image tag each stands for), and release ordering.

use std::cmp::Ordering;

use regex::Regex;

/// Matches paths against patterns: `migrations/` is a directory anywhere in the path,
/// a pattern with `*` but no `/` is a file-name glob (`*.sql`), anything else a path prefix.
pub fn is_risky(path: &str, patterns: &[String]) -> bool {
    patterns.iter().any(|p| matches(path, p))
}

fn matches(path: &str, pattern: &str) -> bool {
    if let Some(dir) = pattern.strip_suffix('/') {
        return path.split('/').rev().skip(1).any(|c| c == dir) || path.starts_with(pattern);
    }
    if pattern.contains('*') && !pattern.contains('/') {
        let name = path.rsplit('/').next().unwrap_or(path);
        return glob(pattern).is_match(name);
    }
    path == pattern || path.starts_with(&format!("{pattern}/"))
}

fn glob(pattern: &str) -> Regex {
    let re = pattern.split('*').map(regex::escape).collect::<Vec<_>>().join(".*");
    Regex::new(&format!("^{re}$")).expect("escaped glob is a valid regex")
}

/// True when `path` is one of `prefixes` or lies under one (git pathspec semantics for
/// plain paths); true for every path when there are no prefixes.
pub fn under(path: &str, prefixes: &[String]) -> bool {
    prefixes.is_empty()
        || prefixes.iter().any(|p| {
            let p = p.trim_end_matches('/');
            path == p || path.starts_with(&format!("{p}/"))
        })
}

/// The image tag a git tag stands for under the service's templates (`v1.4.0` with
/// `v{tag}` -> `1.4.0`); `None` when no template matches.
pub fn image_tag(git_tag: &str, templates: &[String]) -> Option<String> {
    templates.iter().find_map(|t| {
        let (prefix, suffix) = t.split_once("{tag}")?;
        let inner = git_tag.strip_prefix(prefix)?.strip_suffix(suffix)?;
        (!inner.is_empty()).then(|| inner.to_string())
    })
}

/// A release version for ordering: numeric parts, and a pre-release marker that sorts
/// before the release (`1.0.0-rc.1` < `1.0.0`). `None` for tags that are not versions.
#[derive(Clone, Debug)]
pub struct Version {
    numbers: Vec<u64>,
    pre: Option<String>,
}

impl Version {
    pub fn parse(tag: &str) -> Option<Version> {
        let t = tag.strip_prefix('v').unwrap_or(tag);
        let t = t.split('+').next()?;
        let (core, pre) = match t.split_once('-') {
            Some((c, p)) => (c, Some(p.to_string())),
            None => (t, None),
        };
        let numbers: Option<Vec<u64>> = core.split('.').map(|n| n.parse().ok()).collect();
        Some(Version { numbers: numbers?, pre })
    }

    /// A release candidate (`1.0.0-rc.1`, `-beta.2`, `-alpha`, `-pre`, `-dev`), not a
    /// release; a hotfix build (`2.40.0-hotfix.1`) is one.
    pub fn is_candidate(&self) -> bool {
        let pre = self.pre.as_deref().unwrap_or_default().to_ascii_lowercase();
        ["rc", "alpha", "beta", "pre", "preview", "dev"].iter().any(|p| pre.starts_with(p))
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        let len = self.numbers.len().max(other.numbers.len());
        let at = |v: &Version, i: usize| v.numbers.get(i).copied().unwrap_or(0);
        for i in 0..len {
            match at(self, i).cmp(&at(other, i)) {
                Ordering::Equal => continue,
                o => return o,
            }
        }
        match (&self.pre, &other.pre) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Greater,
            (Some(_), None) => Ordering::Less,
            (Some(a), Some(b)) => compare_pre(a, b),
        }
    }
}

/// `1.4` and `1.4.0` are the same release.
impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Version {}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// `rc.2` < `rc.10`: numeric identifiers compare as numbers, like semver.
fn compare_pre(a: &str, b: &str) -> Ordering {
    for (x, y) in a.split('.').zip(b.split('.')) {
        let o = match (x.parse::<u64>(), y.parse::<u64>()) {
            (Ok(m), Ok(n)) => m.cmp(&n),
            _ => x.cmp(y),
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    a.split('.').count().cmp(&b.split('.').count())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn risky_patterns() {
        let pats = p(&["migrations/", "*.sql", "schema.*", "db/seed"]);
        assert!(is_risky("services/api/migrations/0007_index.go", &pats));
        assert!(is_risky("migrations/1.txt", &pats));
        assert!(is_risky("x/y/dump.sql", &pats));
        assert!(is_risky("api/schema.graphql", &pats));
        assert!(is_risky("db/seed/users.csv", &pats));
        assert!(!is_risky("services/api/migrations.md", &pats));
        assert!(!is_risky("db/seeds.txt", &pats));
    }

    #[test]
    fn git_tags_map_back_to_image_tags() {
        assert_eq!(image_tag("v1.4.0", &p(&["v{tag}", "{tag}"])).as_deref(), Some("1.4.0"));
        assert_eq!(image_tag("api-v2.0.0", &p(&["api-v{tag}"])).as_deref(), Some("2.0.0"));
        assert_eq!(image_tag("web-v2.0.0", &p(&["api-v{tag}"])), None);
    }

    #[test]
    fn versions_order_like_releases() {
        let v = |s| Version::parse(s).unwrap();
        assert!(v("1.10.0") > v("1.9.3"));
        assert!(v("v1.0.0") > v("1.0.0-rc.2"));
        assert!(v("1.0.0-rc.10") > v("1.0.0-rc.2"));
        assert_eq!(v("1.4"), v("1.4.0"));
        assert_eq!(Version::parse("latest"), None);
        assert!(v("2.41.0-rc.1").is_candidate() && v("1.0.0-beta").is_candidate());
        assert!(!v("2.40.0-hotfix.1").is_candidate() && !v("2.40.0").is_candidate());
    }
}
