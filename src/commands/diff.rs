//! `prodiff diff`: the commit lists of one environment against the mainline, another
//! environment or any revision. In a fleet, every repository running there is compared
//! (`--service` picks the one that runs it).

use std::io::Write;

use anyhow::Result;

use super::fleet::Fleet;
use super::pipeline::{emit, env_targets};
use crate::cli::{DiffArgs, Global};
use crate::report::View;

pub(super) fn diff(g: &Global, args: &DiffArgs, out: &mut dyn Write) -> Result<u8> {
    let env = std::slice::from_ref(&args.environment);
    let service = args.service.as_deref();
    let mut fleet = Fleet::load(g)?;
    fleet.check_environments(env)?;
    if let Some(s) = service {
        fleet.only_service(s, &args.environment)?;
    }
    let against_env = args.against.as_deref().filter(|other| fleet.runs_environment(other));
    let parts = fleet.each(g, |mut audit| {
        audit.only(env)?;
        audit.only_service(service, &args.environment)?;
        let rows = match (against_env, args.against.as_deref()) {
            (Some(other), _) => {
                let targets = env_targets(&audit.all, other);
                audit.compare_all(|d| targets.get(&d.service).cloned())?
            }
            (None, None) => audit.compare_with_mainline()?,
            (None, Some(rev)) => {
                let commit = audit.repo.resolve_rev(rev)?;
                audit.compare_all(|_| Some((rev.to_string(), commit.clone())))?
            }
        };
        audit.unjudged("diff", rows, Vec::new())
    })?;
    let report = fleet.merge(parts)?;
    emit(&report, View::Diff, g, out)
}
