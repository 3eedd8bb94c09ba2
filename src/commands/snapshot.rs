//! `prodiff snapshot`: the full status as JSON, to stdout or a file (for `check --baseline`).

use std::io::Write;

use anyhow::{Context as _, Result};

use super::fleet::status_report;
use super::pipeline::now;
use crate::cli::{Global, SnapshotArgs};
use crate::history::Detail;
use crate::report;

pub(super) fn snapshot(g: &Global, args: &SnapshotArgs, out: &mut dyn Write) -> Result<u8> {
    let mut report = status_report(g, &args.environments, "snapshot", Detail::Full)?;
    report.observed_at = Some(now()?);
    match &args.output {
        None => report::json::render(&report, out)?,
        Some(path) => {
            let mut file =
                std::fs::File::create(path).with_context(|| format!("cannot write snapshot {}", path.display()))?;
            let mut file = crate::redact::Writer::new(&mut file);
            report::json::render(&report, &mut file)
                .and_then(|()| file.finish())
                .with_context(|| format!("cannot write snapshot {}", path.display()))?;
            eprintln!(
                "prodiff: wrote {} ({} rows, {} findings)",
                path.display(),
                report.results.len(),
                report.all_findings().count()
            );
        }
    }
    Ok(crate::exit::CLEAN)
}
