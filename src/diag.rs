//! Diagnostics on stderr, never on stdout (the report's): the tracing subscriber behind
//! `-v`/`-vv`/`RUST_LOG`, and a progress line for phases slower than about a second
//! (daemons, clusters, registries, long history walks). tracing-subscriber and indicatif
//! live here only.
//!
//! The progress line shows only on a terminal, only after a second (fast runs never
//! flicker), and not with `-v` (the log lines say the same, and more). It is cleared before
//! anything else is written.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Whether progress lines may be drawn (set once by `init`).
static PROGRESS: OnceLock<bool> = OnceLock::new();

/// How long a phase runs before its progress line appears.
const DELAY: Duration = Duration::from_secs(1);

/// Sets up logging for this process: `RUST_LOG` when set, else `-v` (info: each host,
/// registry and cluster asked) or `-vv` (debug: every request, every comparison).
/// Without either, nothing is logged and a progress line shows on a terminal.
pub fn init(verbose: u8, stderr_is_terminal: bool) {
    let from_env = std::env::var("RUST_LOG").ok().filter(|v| !v.trim().is_empty());
    let directives = match (&from_env, verbose) {
        (Some(env), _) => env.clone(),
        (None, 0) => "off".to_string(),
        (None, 1) => "prodiff=info".to_string(),
        (None, 2) => "prodiff=debug".to_string(),
        (None, _) => "prodiff=trace,info".to_string(),
    };
    let logging = directives != "off";
    let filter = tracing_subscriber::EnvFilter::try_new(&directives).unwrap_or_else(|e| {
        eprintln!("prodiff: warning: RUST_LOG={directives:?} is not a valid filter ({e}); logging prodiff=info");
        tracing_subscriber::EnvFilter::new("prodiff=info")
    });
    if logging {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(crate::redact::Stderr::default)
            .with_ansi(stderr_is_terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()))
            .with_timer(tracing_subscriber::fmt::time::uptime())
            .with_target(false)
            .init();
    }
    let _ = PROGRESS.set(stderr_is_terminal && !logging);
}

/// A progress line for one phase: shown after `DELAY` if the phase is still running,
/// cleared when the guard drops.
pub struct Progress {
    bar: ProgressBar,
    done: Arc<AtomicBool>,
    waiter: Option<std::thread::JoinHandle<()>>,
}

/// Starts a phase (`asking 3 registries about 12 images`). Also logged at info level.
pub fn progress(message: impl Into<String>) -> Progress {
    let message = crate::redact::text(&message.into());
    tracing::info!("{message}");
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
    let done = Arc::new(AtomicBool::new(false));
    let mut waiter = None;
    if *PROGRESS.get().unwrap_or(&false) {
        let style = ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
        bar.set_style(style);
        bar.set_message(message);
        let (shown, finished) = (bar.clone(), done.clone());
        waiter = Some(std::thread::spawn(move || {
            std::thread::park_timeout(DELAY);
            if !finished.load(Ordering::SeqCst) {
                shown.set_draw_target(ProgressDrawTarget::stderr());
                shown.enable_steady_tick(Duration::from_millis(120));
            }
        }));
    }
    Progress { bar, done, waiter }
}

impl Progress {
    /// What the phase is waiting on now (`registry 127.0.0.1:5000`).
    pub fn set_message(&self, message: impl Into<String>) {
        self.bar.set_message(crate::redact::text(&message.into()));
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.done.store(true, Ordering::SeqCst);
        if let Some(w) = self.waiter.take() {
            w.thread().unpark();
            let _ = w.join();
        }
        self.bar.finish_and_clear();
    }
}
