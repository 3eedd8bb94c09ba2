//! The JSON report: the `Report` struct serialised as is, pretty-printed, field order fixed
//! by the struct so two runs diff cleanly.

use std::io::{self, Write};

use super::Report;

pub fn render(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    to_writer(report, out)
}

/// Any report type, the same way.
pub fn to_writer(value: &impl serde::Serialize, out: &mut dyn Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value).map_err(io::Error::other)?;
    writeln!(out)
}
