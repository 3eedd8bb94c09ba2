//! `prodiff.toml`: parsed into raw structs that reject unknown keys, then validated into a
//! typed `Config`. Every error names the file, the line and the key at fault.
//!
//! Without a file, `Config::default()` is the zero-config behaviour: services are named after
//! the image repository, image tags map to `v{tag}` or `{tag}`, the mainline is detected.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use regex::Regex;
use serde::Deserialize;
use toml::Spanned;

use crate::reference::ImageRef;
use crate::registry::Platform;
use crate::tickets::TicketMatcher;

/// The file looked for in the repository root when `--config` is not given.
pub const FILE_NAME: &str = "prodiff.toml";

/// How image tags map to git tags when a service does not say.
pub const DEFAULT_GIT_TAGS: &[&str] = &["v{tag}", "{tag}"];

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("{path}:{line}:{column}: {message}")]
    Invalid {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
}

#[derive(Debug, Clone)]
pub struct Config {
    /// The file this came from, if any.
    pub path: Option<PathBuf>,
    /// Relative paths in the config (inventories) are relative to this directory.
    pub base_dir: PathBuf,
    pub mainline: Option<String>,
    /// Environments in order of promotion (`staging` before `production`).
    pub promotion: Vec<String>,
    pub tickets: TicketMatcher,
    pub services: Vec<ServiceConfig>,
    pub environments: Vec<EnvironmentConfig>,
    pub registry: RegistryConfig,
}

/// `[registry]`: how registries are asked (see `registry`).
#[derive(Debug, Clone, PartialEq)]
pub struct RegistryConfig {
    /// Registry hosts (`host:port`) reached over plain HTTP; loopback ones need no entry.
    pub insecure: Vec<String>,
    /// Connect and request timeout.
    pub timeout: std::time::Duration,
    /// The platform picked from multi-platform indexes.
    pub platform: Platform,
}

impl Default for RegistryConfig {
    fn default() -> RegistryConfig {
        RegistryConfig {
            insecure: Vec::new(),
            timeout: std::time::Duration::from_secs(10),
            platform: Platform::default(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ServiceConfig {
    pub name: String,
    /// The image repository (`registry/repo`, no tag) that identifies this service.
    pub image: Option<ImageRef>,
    /// Path filter for monorepos: only commits touching these paths count.
    pub paths: Vec<String>,
    /// Git tag templates for an image tag, tried in order: `v{tag}`.
    pub git_tags: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct EnvironmentConfig {
    pub name: String,
    pub inventories: Vec<PathBuf>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            path: None,
            base_dir: PathBuf::from("."),
            mainline: None,
            promotion: Vec::new(),
            tickets: TicketMatcher::defaults(),
            services: Vec::new(),
            environments: Vec::new(),
            registry: RegistryConfig::default(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    mainline: Option<String>,
    #[serde(default)]
    promotion: Vec<Spanned<String>>,
    tickets: Option<RawTickets>,
    #[serde(default)]
    services: BTreeMap<String, RawService>,
    #[serde(default)]
    environments: BTreeMap<String, RawEnvironment>,
    registry: Option<RawRegistry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRegistry {
    #[serde(default)]
    insecure: Vec<Spanned<String>>,
    timeout_ms: Option<Spanned<u64>>,
    platform: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTickets {
    patterns: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    image: Option<Spanned<String>>,
    #[serde(default)]
    paths: Vec<String>,
    git_tags: Option<Vec<Spanned<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEnvironment {
    #[serde(default)]
    inventory: Vec<String>,
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        Config::parse(&text, path)
    }

    /// The config for a repository: `explicit` if given, else `prodiff.toml` in the
    /// repository root if present, else the defaults.
    pub fn discover(explicit: Option<&Path>, repo_root: &Path) -> Result<Config, ConfigError> {
        match explicit {
            Some(p) => Config::load(p),
            None => {
                let p = repo_root.join(FILE_NAME);
                if p.is_file() {
                    Config::load(&p)
                } else {
                    Ok(Config {
                        base_dir: repo_root.to_path_buf(),
                        ..Config::default()
                    })
                }
            }
        }
    }

    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let at = |span: std::ops::Range<usize>, message: String| {
            let (line, column) = line_col(text, span.start);
            ConfigError::Invalid {
                path: path.to_path_buf(),
                line,
                column,
                message,
            }
        };
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let span = e.span().unwrap_or(0..0);
            at(span, e.message().trim().to_string())
        })?;
        let base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let base_dir = if base_dir.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            base_dir
        };

        let tickets = match raw.tickets {
            None => TicketMatcher::defaults(),
            Some(t) => {
                let mut res = Vec::new();
                for p in t.patterns {
                    let re = Regex::new(p.get_ref()).map_err(|e| {
                        at(
                            p.span(),
                            format!("tickets.patterns: invalid regular expression: {e}"),
                        )
                    })?;
                    res.push(re);
                }
                TicketMatcher::new(res)
            }
        };

        let mut services = Vec::new();
        for (name, s) in raw.services {
            let image = match s.image {
                None => None,
                Some(img) => Some(
                    parse_repository(img.get_ref())
                        .map_err(|m| at(img.span(), format!("services.{name}.image: {m}")))?,
                ),
            };
            let git_tags = match s.git_tags {
                None => DEFAULT_GIT_TAGS.iter().map(|t| t.to_string()).collect(),
                Some(ts) => {
                    let mut out = Vec::new();
                    for t in ts {
                        if !t.get_ref().contains("{tag}") {
                            return Err(at(
                                t.span(),
                                format!(
                                    "services.{name}.git_tags: {:?} has no {{tag}} placeholder (for example \"v{{tag}}\")",
                                    t.get_ref()
                                ),
                            ));
                        }
                        out.push(t.into_inner());
                    }
                    out
                }
            };
            services.push(ServiceConfig {
                name,
                image,
                paths: s.paths,
                git_tags,
            });
        }

        let environments: Vec<EnvironmentConfig> = raw
            .environments
            .into_iter()
            .map(|(name, e)| EnvironmentConfig {
                name,
                inventories: e.inventory.iter().map(|p| base_dir.join(p)).collect(),
            })
            .collect();

        let mut promotion = Vec::new();
        for p in raw.promotion {
            let name = p.get_ref();
            if promotion.contains(name) {
                return Err(at(p.span(), format!("promotion: {name:?} is listed twice")));
            }
            if !environments.is_empty() && !environments.iter().any(|e| &e.name == name) {
                return Err(at(
                    p.span(),
                    format!(
                        "promotion: {name:?} is not an environment declared under [environments]"
                    ),
                ));
            }
            promotion.push(p.into_inner());
        }

        let registry = match raw.registry {
            None => RegistryConfig::default(),
            Some(r) => registry_config(r, &at)?,
        };

        Ok(Config {
            registry,
            path: Some(path.to_path_buf()),
            base_dir,
            mainline: raw.mainline,
            promotion,
            tickets,
            services,
            environments,
        })
    }

    pub fn service(&self, name: &str) -> Option<&ServiceConfig> {
        self.services.iter().find(|s| s.name == name)
    }

    /// The configured service whose image repository is `image`'s.
    pub fn service_for_image(&self, image: &ImageRef) -> Option<&ServiceConfig> {
        self.services.iter().find(|s| {
            s.image
                .as_ref()
                .is_some_and(|i| i.registry == image.registry && i.repository == image.repository)
        })
    }

    /// Git tag templates for a service (the defaults for services the config does not name).
    pub fn git_tags(&self, service: &str) -> Vec<String> {
        match self.service(service) {
            Some(s) => s.git_tags.clone(),
            None => DEFAULT_GIT_TAGS.iter().map(|t| t.to_string()).collect(),
        }
    }

    pub fn paths(&self, service: &str) -> &[String] {
        self.service(service)
            .map(|s| s.paths.as_slice())
            .unwrap_or(&[])
    }
}

fn parse_repository(s: &str) -> Result<ImageRef, String> {
    let r = ImageRef::parse(s).map_err(|e| e.to_string())?;
    if r.tag.is_some() || r.digest.is_some() {
        return Err(format!(
            "{s:?} must be a repository without a tag or digest"
        ));
    }
    Ok(r)
}

fn registry_config(
    r: RawRegistry,
    at: &impl Fn(std::ops::Range<usize>, String) -> ConfigError,
) -> Result<RegistryConfig, ConfigError> {
    let mut out = RegistryConfig::default();
    for host in r.insecure {
        let ok = ImageRef::parse(&format!("{}/x", host.get_ref()))
            .is_ok_and(|i| &i.registry == host.get_ref() && host.get_ref().contains(['.', ':']));
        if !ok {
            return Err(at(
                host.span(),
                format!(
                    "registry.insecure: {:?} is not a registry host (host:port, no scheme or path)",
                    host.get_ref()
                ),
            ));
        }
        out.insecure.push(host.into_inner());
    }
    if let Some(t) = r.timeout_ms {
        if *t.get_ref() == 0 || *t.get_ref() > 600_000 {
            return Err(at(
                t.span(),
                "registry.timeout_ms: must be 1 to 600000".into(),
            ));
        }
        out.timeout = std::time::Duration::from_millis(*t.get_ref());
    }
    if let Some(p) = r.platform {
        out.platform = Platform::parse(p.get_ref()).ok_or_else(|| {
            at(
                p.span(),
                format!("registry.platform: {:?} is not os/architecture[/variant] (for example \"linux/arm64\")", p.get_ref()),
            )
        })?;
    }
    Ok(out)
}

/// 1-based line and column of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rfind('\n')
        .map(|i| before.len() - i)
        .unwrap_or(before.len() + 1);
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        Config::parse(text, Path::new("prodiff.toml"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn unknown_keys_name_the_line_and_key() {
        let e = err("mainline = \"main\"\n\n[services.api]\nimage = \"acme/api\"\nimgae = \"x\"\n");
        assert!(
            e.starts_with("prodiff.toml:5:1: unknown field `imgae`"),
            "{e}"
        );
    }

    #[test]
    fn bad_regexes_name_the_line() {
        let e = err("[tickets]\npatterns = [\n  \"ok-[0-9]+\",\n  \"(unclosed\",\n]\n");
        assert!(
            e.starts_with("prodiff.toml:4:3: tickets.patterns: invalid regular expression"),
            "{e}"
        );
    }

    #[test]
    fn templates_need_a_placeholder_and_images_no_tag() {
        let e = err("[services.api]\ngit_tags = [\"release\"]\n");
        assert!(
            e.contains("prodiff.toml:2:13: services.api.git_tags"),
            "{e}"
        );
        let e = err("[services.api]\nimage = \"acme/api:1.0\"\n");
        assert!(e.contains("prodiff.toml:2:9: services.api.image"), "{e}");
    }

    #[test]
    fn promotion_must_name_declared_environments() {
        let e = err("promotion = [\"staging\", \"prod\"]\n[environments.staging]\n");
        assert!(
            e.starts_with("prodiff.toml:1:25: promotion: \"prod\" is not an environment"),
            "{e}"
        );
    }

    #[test]
    fn registry_settings_are_validated() {
        let e = err("[registry]\ninsecure = [\"http://r.example:5000\"]\n");
        assert!(e.starts_with("prodiff.toml:2:13: registry.insecure"), "{e}");
        let e = err("[registry]\nplatform = \"amd64\"\n");
        assert!(e.starts_with("prodiff.toml:2:12: registry.platform"), "{e}");
        let e = err("[registry]\ntimeout = 3\n");
        assert!(e.contains("unknown field `timeout`"), "{e}");
        let c = Config::parse(
            "[registry]\ninsecure = [\"r.example:5000\"]\ntimeout_ms = 500\nplatform = \"linux/arm64/v8\"\n",
            Path::new("prodiff.toml"),
        )
        .unwrap();
        assert_eq!(c.registry.insecure, ["r.example:5000"]);
        assert_eq!(c.registry.timeout.as_millis(), 500);
        assert_eq!(c.registry.platform.to_string(), "linux/arm64/v8");
    }

    #[test]
    fn a_full_config_is_typed() {
        let c = Config::parse(
            "mainline = \"trunk\"\npromotion = [\"staging\", \"production\"]\n\
             [services.api]\nimage = \"registry.example.com/shop/api\"\npaths = [\"services/api\"]\n\
             git_tags = [\"api-v{tag}\"]\n[environments.staging]\ninventory = [\"s.json\"]\n\
             [environments.production]\n",
            Path::new("/etc/p/prodiff.toml"),
        )
        .unwrap();
        assert_eq!(c.mainline.as_deref(), Some("trunk"));
        assert_eq!(c.git_tags("api"), ["api-v{tag}"]);
        assert_eq!(c.git_tags("web"), ["v{tag}", "{tag}"]);
        assert_eq!(
            c.environments[1].inventories,
            [PathBuf::from("/etc/p/s.json")]
        );
        let img = ImageRef::parse("registry.example.com/shop/api:9").unwrap();
        assert_eq!(c.service_for_image(&img).unwrap().name, "api");
    }
}
