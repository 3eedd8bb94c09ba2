//! Which daemon a Docker host entry means, decided like the docker CLI decides it: an
//! explicit context (`{ context = "NAME" }` in prodiff.toml, like `docker --context`), else
//! `DOCKER_HOST`, else `DOCKER_CONTEXT`, else `currentContext` in `config.json` (under
//! `DOCKER_CONFIG`, else `~/.docker`), else the local socket.
//!
//! A context's endpoint is read from `contexts/meta/<sha256 of its name>/meta.json` and its
//! TLS material from `contexts/tls/<same>/docker/{ca,cert,key}.pem`, the layout `docker
//! context create` writes. Only files are read here; connecting is `docker.rs`'s job.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest as _, Sha256};

/// The daemon the docker CLI talks to when nothing says otherwise.
pub const LOCAL_SOCKET: &str = "unix:///var/run/docker.sock";

pub use crate::config::observe::HostSpec;

/// A daemon to audit, and how it was chosen (for the report header and messages).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// `unix:///var/run/docker.sock`, `tcp://10.0.0.5:2376`, `ssh://deploy@host`.
    pub host: String,
    /// The Docker context it came from, when one did.
    pub context: Option<String>,
    /// What chose it: `prodiff.toml`, `DOCKER_HOST`, `DOCKER_CONTEXT`, `config.json`, `default`.
    pub chosen_by: String,
    /// Client TLS material of the context (`None`: plain, or DOCKER_TLS_VERIFY for DOCKER_HOST).
    pub tls: Option<Tls>,
}

/// `ca.pem`, `cert.pem` and `key.pem` of a context.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tls {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error("Docker context {name:?} (from {chosen_by}) does not exist: no {meta} (`docker context ls` lists them)")]
    Missing { name: String, chosen_by: String, meta: PathBuf },
    #[error("Docker context {name:?}: cannot read {path}: {message}")]
    Unreadable { name: String, path: PathBuf, message: String },
    #[error("Docker context {name:?}: {message}")]
    Invalid { name: String, message: String },
}

#[derive(Deserialize)]
struct Meta {
    #[serde(rename = "Endpoints", default)]
    endpoints: std::collections::BTreeMap<String, MetaEndpoint>,
}

#[derive(Deserialize)]
struct MetaEndpoint {
    #[serde(rename = "Host", default)]
    host: String,
    #[serde(rename = "SkipTLSVerify", default)]
    skip_tls_verify: bool,
}

#[derive(Deserialize)]
struct CliConfig {
    #[serde(rename = "currentContext", default)]
    current_context: String,
}

/// The daemon `spec` means, in this process's environment.
pub fn resolve(spec: &HostSpec) -> Result<Endpoint, ContextError> {
    resolve_in(spec, &Env::from_process())
}

/// What resolution reads from the environment: passed in, so tests need not set variables.
pub struct Env {
    pub docker_host: Option<String>,
    pub docker_context: Option<String>,
    /// `DOCKER_CONFIG`, else `~/.docker`.
    pub config_dir: Option<PathBuf>,
}

impl Env {
    fn from_process() -> Env {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        Env {
            docker_host: var("DOCKER_HOST"),
            docker_context: var("DOCKER_CONTEXT"),
            config_dir: var("DOCKER_CONFIG")
                .map(PathBuf::from)
                .or_else(|| var("HOME").map(|h| Path::new(&h).join(".docker"))),
        }
    }
}

pub fn resolve_in(spec: &HostSpec, env: &Env) -> Result<Endpoint, ContextError> {
    let plain = |host: &str, chosen_by: &str| Endpoint {
        host: host.to_string(),
        context: None,
        chosen_by: chosen_by.to_string(),
        tls: None,
    };
    match spec {
        HostSpec::Url(url) => Ok(plain(url, "prodiff.toml")),
        HostSpec::Context(name) => context(name, "prodiff.toml", env),
        HostSpec::Default => {
            if let Some(host) = &env.docker_host {
                super::check_ssh(host).map_err(|message| ContextError::Invalid {
                    name: "default".into(),
                    message: format!("DOCKER_HOST: {message}"),
                })?;
                return Ok(plain(host, "DOCKER_HOST"));
            }
            if let Some(name) = &env.docker_context {
                return context(name, "DOCKER_CONTEXT", env);
            }
            match current_context(env)? {
                Some((name, file)) => context(&name, &file, env),
                None => Ok(plain(LOCAL_SOCKET, "default")),
            }
        }
    }
}

/// `currentContext` of config.json, with the file's path to say where it came from.
fn current_context(env: &Env) -> Result<Option<(String, String)>, ContextError> {
    let Some(dir) = &env.config_dir else { return Ok(None) };
    let path = dir.join("config.json");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(unreadable("(current)", &path, e.to_string())),
    };
    let config: CliConfig =
        serde_json::from_str(&text).map_err(|e| unreadable("(current)", &path, format!("not JSON: {e}")))?;
    let name = config.current_context;
    Ok((!name.is_empty()).then(|| (name, path.display().to_string())))
}

/// A named context; `default` is the docker CLI's built-in one (DOCKER_HOST, else the socket).
fn context(name: &str, chosen_by: &str, env: &Env) -> Result<Endpoint, ContextError> {
    if name == "default" {
        let host = env.docker_host.clone().unwrap_or_else(|| LOCAL_SOCKET.to_string());
        return Ok(Endpoint { host, context: Some(name.into()), chosen_by: chosen_by.into(), tls: None });
    }
    let dir = env.config_dir.clone().unwrap_or_default().join("contexts");
    let id = hex(&Sha256::digest(name.as_bytes()));
    let meta_path = dir.join("meta").join(&id).join("meta.json");
    let text = match std::fs::read_to_string(&meta_path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ContextError::Missing { name: name.into(), chosen_by: chosen_by.into(), meta: meta_path })
        }
        Err(e) => return Err(unreadable(name, &meta_path, e.to_string())),
    };
    let meta: Meta = serde_json::from_str(&text).map_err(|e| unreadable(name, &meta_path, format!("not JSON: {e}")))?;
    let invalid = |message: &str| ContextError::Invalid { name: name.into(), message: message.into() };
    let endpoint = meta.endpoints.get("docker").ok_or_else(|| invalid("it has no docker endpoint"))?;
    if endpoint.host.is_empty() {
        return Err(invalid("its docker endpoint has no Host"));
    }
    if endpoint.skip_tls_verify {
        return Err(invalid("it skips TLS verification (SkipTLSVerify), which prodiff does not do: give the context the daemon's CA (`docker context update --docker ca=…`)"));
    }
    super::check_ssh(&endpoint.host).map_err(|m| invalid(&format!("its endpoint: {m}")))?;
    let tls = tls(name, &dir.join("tls").join(&id).join("docker"))?;
    Ok(Endpoint { host: endpoint.host.clone(), context: Some(name.into()), chosen_by: chosen_by.into(), tls })
}

/// The context's TLS material: all of ca, cert and key, or none.
fn tls(name: &str, dir: &Path) -> Result<Option<Tls>, ContextError> {
    let [ca, cert, key] = ["ca.pem", "cert.pem", "key.pem"].map(|f| dir.join(f));
    let present: Vec<bool> = [&ca, &cert, &key].iter().map(|p| p.is_file()).collect();
    match present.iter().filter(|p| **p).count() {
        0 => Ok(None),
        3 => Ok(Some(Tls { ca, cert, key })),
        _ => Err(ContextError::Invalid {
            name: name.into(),
            message: format!(
                "{} has only part of the TLS material (prodiff needs ca.pem, cert.pem and key.pem)",
                dir.display()
            ),
        }),
    }
}

fn unreadable(name: &str, path: &Path, message: String) -> ContextError {
    ContextError::Unreadable { name: name.into(), path: path.to_path_buf(), message }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(dir: &Path) -> Env {
        Env { docker_host: None, docker_context: None, config_dir: Some(dir.to_path_buf()) }
    }

    fn write_context(dir: &Path, name: &str, meta: &str) -> PathBuf {
        let id = hex(&Sha256::digest(name.as_bytes()));
        let m = dir.join("contexts/meta").join(&id);
        std::fs::create_dir_all(&m).unwrap();
        std::fs::write(m.join("meta.json"), meta).unwrap();
        dir.join("contexts/tls").join(id).join("docker")
    }

    #[test]
    fn the_docker_cli_order_decides() {
        let d = tempfile::tempdir().unwrap();
        write_context(d.path(), "other", r#"{"Name":"other","Endpoints":{"docker":{"Host":"tcp://10.0.0.5:2376"}}}"#);
        write_context(d.path(), "cur", r#"{"Name":"cur","Endpoints":{"docker":{"Host":"unix:///run/cur.sock"}}}"#);
        std::fs::write(d.path().join("config.json"), r#"{"auths":{},"currentContext":"cur"}"#).unwrap();
        let mut e = env(d.path());
        let host = |e: &Env| resolve_in(&HostSpec::Default, e).unwrap();
        assert_eq!(
            (host(&e).host, host(&e).chosen_by),
            ("unix:///run/cur.sock".into(), format!("{}", d.path().join("config.json").display()))
        );
        e.docker_context = Some("other".into());
        assert_eq!((host(&e).host, host(&e).context), ("tcp://10.0.0.5:2376".into(), Some("other".into())));
        e.docker_host = Some("tcp://127.0.0.1:1".into());
        assert_eq!((host(&e).host, host(&e).chosen_by), ("tcp://127.0.0.1:1".into(), "DOCKER_HOST".into()));
        // An explicit context wins over DOCKER_HOST, like `docker --context`.
        let explicit = resolve_in(&HostSpec::Context("other".into()), &e).unwrap();
        assert_eq!(explicit.host, "tcp://10.0.0.5:2376");
        std::fs::remove_file(d.path().join("config.json")).unwrap();
        let bare = resolve_in(&HostSpec::Default, &env(d.path())).unwrap();
        assert_eq!((bare.host.as_str(), bare.context), (LOCAL_SOCKET, None));
    }

    #[test]
    fn missing_contexts_and_partial_tls_material_are_errors() {
        let d = tempfile::tempdir().unwrap();
        let e = resolve_in(&HostSpec::Context("nope".into()), &env(d.path())).unwrap_err().to_string();
        assert!(e.starts_with("Docker context \"nope\" (from prodiff.toml) does not exist: no "), "{e}");
        let tls = write_context(d.path(), "half", r#"{"Endpoints":{"docker":{"Host":"tcp://h:2376"}}}"#);
        std::fs::create_dir_all(&tls).unwrap();
        std::fs::write(tls.join("ca.pem"), "x").unwrap();
        let e = resolve_in(&HostSpec::Context("half".into()), &env(d.path())).unwrap_err().to_string();
        assert!(e.contains("only part of the TLS material"), "{e}");
        write_context(d.path(), "skip", r#"{"Endpoints":{"docker":{"Host":"tcp://h:2376","SkipTLSVerify":true}}}"#);
        let e = resolve_in(&HostSpec::Context("skip".into()), &env(d.path())).unwrap_err().to_string();
        assert!(e.contains("SkipTLSVerify"), "{e}");
        let mut leaky = env(d.path());
        leaky.docker_host = Some("ssh://deploy:hunter2@h".into());
        let e = resolve_in(&HostSpec::Default, &leaky).unwrap_err().to_string();
        assert!(
            e.contains("DOCKER_HOST: a password in an ssh:// URL is not supported") && !e.contains("hunter2"),
            "{e}"
        );
    }
}
