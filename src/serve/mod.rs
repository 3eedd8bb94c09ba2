//! `prodiff serve`: the HTML matrix, live. A background thread runs the audit every
//! `--interval` seconds and keeps the last result that finished, then reads the ledger for
//! the timeline and metrics pages; pages only ever read those results, so a slow source
//! never blocks a page (it shows the result's age instead).
//!
//! Safe by default: it binds 127.0.0.1 unless `--allow-remote` says otherwise, answers GET
//! and HEAD only, bounds what a client may send (`http`), can require a bearer token
//! (`--token-env VAR`), and every page passes the redaction layer. The token is registered
//! as a secret, so no log line or page can show it. This module is command-level
//! orchestration: hyper sits in `http`, pages are drawn by `report::html`.

mod http;
mod pages;

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};

use crate::judge::report::Report;
use crate::ledger::metrics::Metrics;
use crate::ledger::Span;

/// What the deployment ledger holds for the dashboard's timeline and metrics pages, read
/// after each audit (the pages never wait on the ledger either).
pub struct LedgerView {
    /// Spans in the window, any order.
    pub spans: Vec<Span>,
    /// The window: from (the later of 90 days back and the first heartbeat) to now.
    pub window: (i64, i64),
    /// Per environment, in promotion order: its four keys.
    pub metrics: Vec<(String, Metrics)>,
    /// Environments in promotion order, for the timeline's lanes.
    pub promotion: Vec<String>,
}

/// What the pages read: the last audit that finished, and how the latest attempt went.
#[derive(Default)]
pub struct Latest {
    /// The last audit that finished, and when.
    pub report: Option<(Arc<Report>, Instant, chrono::DateTime<chrono::Utc>)>,
    /// The latest attempt failed: when, and why (redacted).
    pub failure: Option<(chrono::DateTime<chrono::Utc>, String)>,
    /// When the audit now running started, if one is.
    pub running_since: Option<Instant>,
    /// The ledger as the last read found it (None: no ledger here).
    pub ledger: Option<Arc<LedgerView>>,
    /// The latest ledger read failed: why (redacted).
    pub ledger_failure: Option<String>,
}

/// Reads the ledger: None when there is none to read.
pub type LedgerReader<'a> = &'a (dyn Fn() -> Result<Option<LedgerView>> + Sync);

/// One audit (the status of the chosen environments, judged by the policy).
pub type Auditor<'a> = &'a (dyn Fn() -> Result<Report> + Sync);

/// What the command line asks for, unchecked (`serve`'s flags).
pub struct Request<'a> {
    /// `IP` or `IP:PORT`.
    pub bind: &'a str,
    /// The port when `bind` names none.
    pub port: u16,
    pub allow_remote: bool,
    /// The environment variable holding the bearer token.
    pub token_env: Option<&'a str>,
    pub interval: Duration,
}

/// The settings the server runs with, checked.
pub struct Settings {
    pub addr: SocketAddr,
    pub token: Option<String>,
    pub interval: Duration,
}

impl Settings {
    /// Checks the flags: a non-loopback address needs `--allow-remote`, a token variable
    /// must be set and not empty.
    pub fn check(args: &Request, env: impl Fn(&str) -> Option<String>) -> Result<Settings> {
        let addr = match args.bind.parse::<SocketAddr>() {
            Ok(a) => a,
            Err(_) => {
                let ip: IpAddr = args.bind.trim_matches(|c| c == '[' || c == ']').parse().with_context(|| {
                    format!("--bind {:?}: not an IP address or IP:PORT (for example 127.0.0.1:7878)", args.bind)
                })?;
                SocketAddr::new(ip, args.port)
            }
        };
        if !addr.ip().is_loopback() && !args.allow_remote {
            bail!(
                "--bind {}: not a loopback address; other hosts could read the dashboard. Pass --allow-remote \
                 to mean it (and --token-env VAR to require a token)",
                addr.ip()
            );
        }
        let token = match args.token_env {
            None => None,
            Some(var) => match env(var) {
                Some(t) if !t.trim().is_empty() => {
                    crate::redact::register(t.trim());
                    Some(t.trim().to_string())
                }
                _ => bail!("--token-env {var}: the environment variable {var} is not set, or empty"),
            },
        };
        Ok(Settings { addr, token, interval: args.interval })
    }
}

/// Runs the dashboard until the process is stopped. `audit` runs one audit and `ledger`
/// reads the ledger after it, both on a thread of their own.
pub fn run(args: &Request, audit: Auditor, ledger: LedgerReader) -> Result<u8> {
    let settings = Settings::check(args, |v| std::env::var(v).ok())?;
    let rt = tokio::runtime::Handle::try_current().context("no async runtime: call app::run")?;
    let listener = rt
        .block_on(tokio::net::TcpListener::bind(settings.addr))
        .with_context(|| format!("cannot listen on {}", settings.addr))?;
    let addr = listener.local_addr().context("the listening address")?;
    eprintln!(
        "prodiff: serving http://{addr}/ (audit every {} s{})",
        settings.interval.as_secs(),
        if settings.token.is_some() { ", bearer token required" } else { "" }
    );
    let latest = Arc::new(RwLock::new(Latest::default()));
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let (latest_audit, rt_audit, stop) = (latest.clone(), rt.clone(), &stop);
        let interval = settings.interval;
        scope.spawn(move || {
            let _runtime = rt_audit.enter();
            audit_loop((audit, ledger), &latest_audit, interval, stop)
        });
        let server = http::Server { token: settings.token.clone(), pages: pages::Pages { latest, interval } };
        let served = rt.block_on(server.serve(listener));
        stop.store(true, Ordering::Relaxed);
        served
    })?;
    Ok(crate::exit::CLEAN)
}

/// Audits every `interval` from the start of the previous audit, until `stop`.
fn audit_loop(
    (audit, ledger): (Auditor, LedgerReader),
    latest: &RwLock<Latest>,
    interval: Duration,
    stop: &AtomicBool,
) {
    while !stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        if let Ok(mut l) = latest.write() {
            l.running_since = Some(started);
        }
        let result = audit();
        let now = chrono::Utc::now();
        if let Ok(mut l) = latest.write() {
            l.running_since = None;
            match result {
                Ok(report) => {
                    l.report = Some((Arc::new(report), Instant::now(), now));
                    l.failure = None;
                }
                Err(e) => {
                    let message = crate::redact::text(&format!("{e:#}"));
                    tracing::warn!("serve: the audit failed: {message}");
                    l.failure = Some((now, message));
                }
            }
        }
        let read = ledger();
        if let Ok(mut l) = latest.write() {
            match read {
                Ok(view) => {
                    l.ledger = view.map(Arc::new);
                    l.ledger_failure = None;
                }
                Err(e) => {
                    let message = crate::redact::text(&format!("{e:#}"));
                    tracing::warn!("serve: reading the ledger failed: {message}");
                    l.ledger_failure = Some(message);
                }
            }
        }
        while started.elapsed() < interval && !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(100).min(interval.saturating_sub(started.elapsed())));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args<'a>(bind: &'a str, allow_remote: bool, token_env: Option<&'a str>) -> Request<'a> {
        Request { bind, port: 7878, allow_remote, token_env, interval: Duration::from_secs(60) }
    }

    #[test]
    fn an_address_without_a_port_takes_the_port() {
        let s = Settings::check(&args("127.0.0.1", false, None), |_| None).unwrap();
        assert_eq!(s.addr, "127.0.0.1:7878".parse().unwrap());
        let s = Settings::check(&args("[::1]:9000", false, None), |_| None).unwrap();
        assert_eq!(s.addr, "[::1]:9000".parse().unwrap());
        let s = Settings::check(&args("::1", false, None), |_| None).unwrap();
        assert_eq!(s.addr, "[::1]:7878".parse().unwrap());
    }

    #[test]
    fn another_address_needs_allow_remote() {
        let err = Settings::check(&args("0.0.0.0:8080", false, None), |_| None).err().unwrap();
        assert!(format!("{err:#}").contains("--bind 0.0.0.0: not a loopback address"), "{err:#}");
        let s = Settings::check(&args("0.0.0.0:8080", true, None), |_| None).unwrap();
        assert_eq!(s.addr, "0.0.0.0:8080".parse().unwrap());
        assert!(Settings::check(&args("example.com", true, None), |_| None).is_err());
    }

    #[test]
    fn a_token_variable_must_be_set() {
        let err = Settings::check(&args("127.0.0.1", false, Some("DASH_TOKEN")), |_| None).err().unwrap();
        assert!(format!("{err:#}").contains("DASH_TOKEN is not set, or empty"), "{err:#}");
        let s =
            Settings::check(&args("127.0.0.1", false, Some("DASH_TOKEN")), |_| Some("s3cr3t-token".into())).unwrap();
        assert_eq!(s.token.as_deref(), Some("s3cr3t-token"));
    }
}
