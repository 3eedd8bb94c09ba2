//! `prodiff status`: what runs in each environment, compared with the mainline and judged.

use std::io::Write;

use anyhow::Result;

use super::fleet::status_report;
use super::pipeline::{counts_only, emit};
use crate::cli::{Global, StatusArgs};
use crate::report::View;

pub(super) fn status(g: &Global, args: &StatusArgs, out: &mut dyn Write) -> Result<u8> {
    let mut report = status_report(g, &args.environments, "status", counts_only(g))?;
    super::ledger::add_ages(g, &mut report)?;
    emit(&report, View::Status, g, out)
}
