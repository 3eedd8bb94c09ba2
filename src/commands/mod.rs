//! Stage 7, commands: takes the parsed command line and gives an exit code. One file per
//! command, each a short story told with the shared steps of `pipeline`: load, observe,
//! resolve, compare, judge, render. `run` is the entry point `main` calls; `dispatch` picks
//! the command.

mod check;
mod contains;
mod diff;
mod fleet;
mod init;
mod ledger;
mod log;
mod metrics;
mod pipeline;
mod plan;
mod publish;
mod record;
mod rollback;
mod serve;
mod shell;
mod snapshot;
mod status;
mod watch;
mod when;
mod why;

use std::io::Write;

use anyhow::{bail, Result};

use crate::cli::{Cli, Command, Global};
use crate::report::{self, Format};

/// Runs the command and returns its exit code (see `exit`).
/// `rt` is the one runtime (built in `main`): sources that talk to daemons and registries
/// run their async phase on it.
/// Everything printed passes the redaction layer (`redact`).
pub fn run(cli: &Cli, rt: &tokio::runtime::Runtime, out: &mut dyn Write) -> Result<u8> {
    let _runtime = rt.enter();
    let mut out = crate::redact::Writer::new(out);
    // What was written before an error still reaches the reader, redacted.
    let result = dispatch(cli, &mut out);
    let finished = out.finish();
    let code = result?;
    finished?;
    Ok(code)
}

fn dispatch(cli: &Cli, out: &mut dyn Write) -> Result<u8> {
    if cli.global.format == Format::Junit {
        let name = match &cli.command {
            Command::Contains(_) => Some("contains"),
            Command::Plan(_) => Some("plan"),
            Command::Rollback(_) => Some("rollback"),
            Command::Why(_) => Some("why"),
            _ => None,
        };
        if let Some(name) = name {
            bail!("--format junit reports findings per service and environment: use it with status, diff or check, not {name}");
        }
    }
    if cli.global.format == Format::Html
        && matches!(cli.command, Command::Contains(_) | Command::Why(_) | Command::Rollback(_))
    {
        bail!("--format html draws the environment × service matrix: use it with status, check, diff or plan");
    }
    match &cli.command {
        Command::Status(args) => status::status(&cli.global, args, out),
        Command::Diff(args) => diff::diff(&cli.global, args, out),
        Command::Check(args) => check::check(&cli.global, args, out),
        Command::Snapshot(args) => snapshot::snapshot(&cli.global, args, out),
        Command::Contains(args) => contains::contains(&cli.global, args, out),
        Command::Plan(args) => plan::plan(&cli.global, args, out),
        Command::Rollback(args) => rollback::rollback(&cli.global, args, out),
        Command::Why(args) => why::why(&cli.global, args, out),
        Command::Init(args) => init::init(&cli.global, args, out),
        Command::Completions(args) => shell::completions(args, out),
        Command::Man => shell::man(out),
        Command::Serve(args) => serve::serve(&cli.global, args),
        Command::Record(args) => record::record(&cli.global, args, out),
        Command::Watch(args) => watch::watch(&cli.global, args, out),
        Command::Log(args) => log::log(&cli.global, args, out),
        Command::When(args) => when::when(&cli.global, args, out),
        Command::Metrics(args) => metrics::metrics(&cli.global, args, out),
        Command::Publish(args) => publish::publish(&cli.global, args, out),
    }
}

/// With `--format github`, a run that failed (exit 2) is also an annotation on standard
/// output, on the config line at fault when there is one. The error itself goes to stderr.
pub fn annotate_failure(g: &Global, error: &anyhow::Error, out: &mut dyn Write) -> std::io::Result<()> {
    if g.format != Format::Github {
        return Ok(());
    }
    let at = error.chain().find_map(|c| match c.downcast_ref::<crate::config::ConfigError>() {
        Some(crate::config::ConfigError::Invalid { path, line, column, .. }) => Some((path.as_path(), *line, *column)),
        _ => None,
    });
    report::github::failure(&crate::redact::text(&format!("{error:#}")), at, out)
}
