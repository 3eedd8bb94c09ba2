//! `prodiff check`: the status, with the baseline's accepted findings applied, as a
//! pass/fail verdict for CI.

use std::io::Write;

use anyhow::Result;

use super::fleet::status_report;
use super::pipeline::{counts_only, emit};
use crate::cli::{CheckArgs, Global};
use crate::judge::baseline::Baseline;
use crate::judge::report::Check;
use crate::model::Level;
use crate::report::View;

pub(super) fn check(g: &Global, args: &CheckArgs, out: &mut dyn Write) -> Result<u8> {
    let mut report = status_report(g, &args.environments, "check", counts_only(g))?;
    let baseline = args.baseline.as_deref().map(Baseline::load).transpose()?;
    if let Some(b) = &baseline {
        b.apply(&mut report);
    }
    report.check = Some(Check {
        passed: report.count(Level::Deny) == 0,
        denied: report.count(Level::Deny),
        warned: report.count(Level::Warn),
        baseline: baseline.as_ref().map(|b| b.path().display().to_string()),
        changes: baseline.map(|b| b.changes(&report)).unwrap_or_default(),
    });
    emit(&report, View::Status, g, out)
}
