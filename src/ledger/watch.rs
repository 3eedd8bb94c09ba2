//! `prodiff watch`: `record` in a loop. Cycles run one after the other on the calling
//! thread (never two at once; a cycle longer than the interval delays the next, it does not
//! overlap it). A failing cycle is logged and the loop goes on. SIGINT and SIGTERM stop the
//! loop between cycles: a signal that arrives during a cycle lets it finish, then stops.

use std::time::Duration;

use anyhow::{Context as _, Result};
use tokio::signal::unix::{signal, SignalKind};

/// How a watch ended.
#[derive(Debug, PartialEq, Eq)]
pub struct Stopped {
    pub cycles: u64,
    pub failed: u64,
    /// `SIGINT` or `SIGTERM`.
    pub by: &'static str,
}

/// Runs `cycle` every `every` until a signal arrives. `cycle` reports a one-line summary,
/// or an error (logged on stderr, then the next cycle comes).
pub fn run(rt: &tokio::runtime::Handle, every: Duration, mut cycle: impl FnMut() -> Result<String>) -> Result<Stopped> {
    let _entered = rt.enter();
    let mut term = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    let (mut cycles, mut failed) = (0, 0);
    loop {
        cycles += 1;
        match cycle() {
            Ok(summary) => eprintln!("prodiff: watch cycle {cycles}: {summary}"),
            Err(e) => {
                failed += 1;
                eprintln!("prodiff: watch cycle {cycles} failed: {}", crate::redact::text(&format!("{e:#}")));
            }
        }
        let by = rt.block_on(async {
            tokio::select! {
                _ = tokio::time::sleep(every) => None,
                _ = term.recv() => Some("SIGTERM"),
                _ = int.recv() => Some("SIGINT"),
            }
        });
        if let Some(by) = by {
            eprintln!("prodiff: watch stopped by {by} after {cycles} cycle(s), {failed} failed");
            return Ok(Stopped { cycles, failed, by });
        }
    }
}
