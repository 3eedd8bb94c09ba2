//! `prodiff diff`: the commit lists of one environment against the mainline, another
//! environment or any revision.

use std::io::Write;

use anyhow::Result;

use super::pipeline::{emit, env_targets, Audit};
use crate::cli::{DiffArgs, Global};
use crate::report::View;

pub(super) fn diff(g: &Global, args: &DiffArgs, out: &mut dyn Write) -> Result<u8> {
    let mut audit = Audit::load(g)?;
    audit.only(std::slice::from_ref(&args.environment))?;
    audit.only_service(args.service.as_deref(), &args.environment)?;
    let rows = match args.against.as_deref() {
        None => audit.compare_with_mainline()?,
        Some(other) if audit.all.iter().any(|d| d.environment == other) => {
            let targets = env_targets(&audit.all, other);
            audit.compare_all(|d| targets.get(&d.service).cloned())?
        }
        Some(rev) => {
            let commit = audit.repo.resolve_rev(rev)?;
            audit.compare_all(|_| Some((rev.to_string(), commit.clone())))?
        }
    };
    let report = audit.finish("diff", rows)?;
    emit(&report, View::Diff, g, out)
}
