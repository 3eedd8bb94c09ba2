//! `prodiff init`: from what was detected (the git tag scheme, Docker containers and
//! contexts, Kubernetes contexts, image repositories) to a commented `prodiff.toml`.
//!
//! Pure: detection lives in `app::init`. What prodiff is sure of (the mainline, the tag
//! scheme, images built from this repository on the local daemon) becomes live entries;
//! what only the user can decide (which context is production) is written commented out,
//! each with a line saying what it is. The text must load with `Config::parse`; a test
//! holds it to that, commented entries uncommented included.

use std::fmt::Write as _;

use regex::Regex;

/// Everything `init` found, and what it could not look at.
#[derive(Debug, Default)]
pub struct Detected {
    /// The mainline branch, as `Repo::mainline` settles on it.
    pub mainline: Option<String>,
    /// git tag templates, most used first, with how many tags each matches and an example.
    pub tag_schemes: Vec<TagScheme>,
    /// Images on the local Docker daemon.
    pub images: Vec<Image>,
    /// The local daemon's address, when it answered.
    pub docker: Option<String>,
    /// Docker contexts other than `default`: (name, endpoint).
    pub docker_contexts: Vec<(String, String)>,
    /// kubectl contexts.
    pub kube_contexts: Vec<String>,
    /// What could not be detected, and why (shown in the file's header).
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagScheme {
    pub template: String,
    pub count: usize,
    pub example: String,
}

/// One image repository seen running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// The service name to give it (the repository's last component).
    pub service: String,
    /// The repository, without tag or digest (`ghcr.io/acme/api`).
    pub repository: String,
    /// Containers running it.
    pub containers: Vec<String>,
    /// Built from this repository (its revision label names a commit here, or its source
    /// label is the `origin` remote).
    pub ours: bool,
}

/// The templates that explain the repository's tags: the text around a version number
/// (`v1.4.0` → `v{tag}`, `api-v2.0.0` → `api-v{tag}`), most used first, at most three.
pub fn tag_schemes(tags: &[String]) -> Vec<TagScheme> {
    let version = Regex::new(r"^(.*?)(\d+\.\d+(?:\.\d+)?(?:-[0-9A-Za-z.-]+)?)$").expect("a valid regex");
    let mut schemes: Vec<TagScheme> = Vec::new();
    for tag in tags {
        let Some(c) = version.captures(tag) else { continue };
        let template = format!("{}{{tag}}", &c[1]);
        match schemes.iter_mut().find(|s| s.template == template) {
            Some(s) => s.count += 1,
            None => schemes.push(TagScheme { template, count: 1, example: tag.clone() }),
        }
    }
    schemes.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.template.cmp(&b.template)));
    schemes.truncate(3);
    schemes
}

/// The commented `prodiff.toml`.
pub fn render(d: &Detected, now: &str) -> String {
    let mut s = String::new();
    header(&mut s, d, now);
    mainline(&mut s, d);
    services(&mut s, d);
    environments(&mut s, d);
    footer(&mut s);
    s
}

fn header(s: &mut String, d: &Detected, now: &str) {
    let _ = writeln!(s, "# prodiff.toml, written by `prodiff init` on {now} from what it found here.");
    let _ = writeln!(s, "# Lines starting with `#` and no space are suggestions: remove the `#` to use them.");
    let _ = writeln!(s, "# Every key is described in the README (\"Configuration: prodiff.toml\").");
    for n in &d.notes {
        let _ = writeln!(s, "# Not detected: {n}");
    }
    s.push('\n');
}

fn mainline(s: &mut String, d: &Detected) {
    match &d.mainline {
        Some(m) => {
            let _ = writeln!(s, "# The branch releases are cut from; environments are compared with it.");
            let _ = writeln!(s, "mainline = {}\n", quote(m));
        }
        None => {
            let _ = writeln!(s, "# No main, master or origin/HEAD here: name the branch releases are cut from.");
            let _ = writeln!(s, "#mainline = \"main\"\n");
        }
    }
    let _ = writeln!(s, "# Environments in the order a release goes through them (unpromoted-change, seasoning).");
    let _ = writeln!(s, "#promotion = [\"staging\", \"production\"]\n");
}

fn git_tags_line(d: &Detected) -> (String, String) {
    if d.tag_schemes.is_empty() {
        return (
            "#git_tags = [\"v{tag}\"]".into(),
            "# No release tags found: how an image tag maps to a git tag (1.4.0 -> v1.4.0).".into(),
        );
    }
    let list: Vec<String> = d.tag_schemes.iter().map(|t| quote(&t.template)).collect();
    let seen: Vec<String> = d.tag_schemes.iter().map(|t| format!("{} tag(s) like {}", t.count, t.example)).collect();
    (
        format!("git_tags = [{}]", list.join(", ")),
        format!("# How an image tag maps to a git tag; found {}.", seen.join(", ")),
    )
}

fn services(s: &mut String, d: &Detected) {
    let (tags, why) = git_tags_line(d);
    let ours: Vec<&Image> = d.images.iter().filter(|i| i.ours).collect();
    let others: Vec<&Image> = d.images.iter().filter(|i| !i.ours).collect();
    let _ = writeln!(s, "# Services: the images built from this repository.");
    if ours.is_empty() {
        let _ = writeln!(s, "# None running on the local Docker daemon was built from this repository; an example:");
        let _ = writeln!(s, "#[services.api]\n#image = \"registry.example.com/shop/api\"");
        let suggested = if tags.starts_with('#') { tags.clone() } else { format!("#{tags}") };
        let _ = writeln!(s, "{why}\n{suggested}\n");
    }
    for i in &ours {
        let _ = writeln!(s, "[services.{}]", key(&i.service));
        let _ = writeln!(s, "# Seen running in {}, built from this repository.", i.containers.join(", "));
        let _ = writeln!(s, "image = {}", quote(&i.repository));
        let _ = writeln!(s, "{why}\n{tags}");
        let _ = writeln!(s, "# In a monorepo, only commits under these paths count for this service.");
        let _ = writeln!(s, "#paths = [\"services/{}\"]\n", i.service);
    }
    if !others.is_empty() {
        let _ = writeln!(s, "# Also running there, not built from this repository (audited only if claimed here):");
        for i in others {
            let _ = writeln!(s, "#   {} ({})", i.repository, i.containers.join(", "));
        }
        s.push('\n');
    }
}

fn environments(s: &mut String, d: &Detected) {
    let _ = writeln!(s, "# Environments: where prodiff looks for what runs.");
    if let Some(host) = &d.docker {
        let ours = d.images.iter().any(|i| i.ours);
        let mark = if ours { "" } else { "#" };
        let _ = writeln!(s, "# The local Docker daemon ({host}).");
        let _ = writeln!(s, "{mark}[environments.local]\n{mark}docker = [\"default\"]\n");
    }
    for (name, endpoint) in &d.docker_contexts {
        let _ = writeln!(s, "# Docker context {name} ({endpoint}): if it is an environment, name it here.");
        let _ = writeln!(s, "#[environments.{}]\n#docker = [{{ context = {} }}]\n", key(name), quote(name));
    }
    for ctx in &d.kube_contexts {
        let _ = writeln!(s, "# Kubernetes context {ctx} (kubectl config get-contexts): pods of its namespace.");
        let _ = writeln!(s, "#[environments.{}]\n#kubernetes = [{{ context = {} }}]\n", key(ctx), quote(ctx));
    }
    let _ = writeln!(s, "# Or describe what runs in an inventory file (see the README's \"Inventory format\").");
    let _ = writeln!(s, "#[environments.production]\n#inventory = [\"deploy/production.json\"]\n");
}

fn footer(s: &mut String) {
    let _ = writeln!(s, "# The CI gate's policy: change a finding's level, accept a known one until a date.");
    let _ = writeln!(s, "#[policy]\n#warn = [\"hotfix-drift\"]");
}

/// A TOML basic string.
fn quote(v: &str) -> String {
    toml::Value::String(v.to_string()).to_string()
}

/// A table key: bare when it can be, quoted otherwise (`kind-prod.eu` -> `"kind-prod.eu"`).
fn key(k: &str) -> String {
    if !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        k.to_string()
    } else {
        quote(k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_schemes_are_the_text_around_versions() {
        let tags: Vec<String> =
            ["v1.0.0", "v1.1.0", "api-v2.0.0", "latest", "v1.2.0-rc.1"].iter().map(|t| t.to_string()).collect();
        let s = tag_schemes(&tags);
        assert_eq!(s[0], TagScheme { template: "v{tag}".into(), count: 3, example: "v1.0.0".into() });
        assert_eq!(s[1].template, "api-v{tag}");
        assert_eq!(s.len(), 2);
    }

    #[test]
    fn keys_are_quoted_when_they_must_be() {
        assert_eq!(key("prod"), "prod");
        assert_eq!(key("kind-prod.eu"), "\"kind-prod.eu\"");
    }
}
