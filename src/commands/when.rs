//! `prodiff when`: when each environment first ran a commit or ticket, and whether it still does.

use std::collections::HashMap;
use std::io::Write;

use anyhow::{bail, Result};

use super::ledger::{existing, open, text_formats, Opened};
use crate::cli::{Global, WhenArgs};
use crate::git::Lookup;
use crate::ledger::{query, Store};
use crate::model::CommitId;
use crate::report::ledger as render;

/// `prodiff when`.
pub(super) fn when(g: &Global, args: &WhenArgs, out: &mut dyn Write) -> Result<u8> {
    text_formats(g, "when")?;
    let o = open(g)?;
    let mut store = existing(&o.location)?;
    let wanted = wanted_commits(&o, store.as_mut(), &args.item)?;
    let mut committed = i64::MIN;
    for c in &wanted {
        committed = committed.max(o.repo.commit_info(c)?.committed.timestamp());
    }
    let concerns = |service: &str| -> Result<bool> {
        let paths = o.config.paths(service);
        if paths.is_empty() {
            return Ok(true);
        }
        for c in &wanted {
            if o.repo.touches(c, paths)? {
                return Ok(true);
            }
        }
        Ok(false)
    };
    let answers = query::when(store.as_mut(), &o.repo, &wanted, committed, concerns)?;
    let shas: Vec<String> = wanted.iter().map(|c| c.0.clone()).collect();
    let reached = reached_mainline(&o, &wanted)?;
    render::when(&args.item, &shas, &answers, reached.as_ref(), g.format, out)?;
    Ok(crate::exit::CLEAN)
}

/// When the mainline got the change: the first-parent commit that brought in the last of
/// its commits to arrive, and its committer time; none while the mainline lacks any of them.
fn reached_mainline(o: &Opened, wanted: &[CommitId]) -> Result<Option<render::Reached>> {
    let (name, tip) = o.repo.mainline(o.config.mainline.as_deref())?;
    let mut latest: Option<render::Reached> = None;
    for c in wanted {
        if !o.repo.contains(&tip, c)? {
            return Ok(None);
        }
        // Clock skew aside, no first-parent commit older than a day before it holds it.
        let since = o.repo.commit_info(c)?.committed - chrono::Duration::days(1);
        let chain = o.repo.first_parents(&tip, since)?;
        let i = crate::judge::why::brought_in(&chain, |m| o.repo.contains(m, c))?.unwrap_or(0);
        let via = chain.get(i).cloned().unwrap_or_else(|| c.clone());
        let at = o.repo.commit_info(&via)?.committed.timestamp();
        if latest.as_ref().is_none_or(|l| at > l.at) {
            latest = Some(render::Reached { mainline: name.clone(), via: via.0, at });
        }
    }
    Ok(latest)
}

/// A SHA stands for itself; a ticket key for every commit whose message mentions it, in the
/// history of the mainline and of everything the ledger saw run.
fn wanted_commits(o: &Opened, store: &mut dyn Store, item: &str) -> Result<Vec<CommitId>> {
    match o.repo.lookup_commit(item) {
        Lookup::Found(c) => return Ok(vec![c]),
        Lookup::Ambiguous => bail!("{item:?} matches several objects; give more digits"),
        Lookup::NotFound | Lookup::NotACommit => {}
    }
    if !o.config.tickets.is_key(item) {
        bail!("{item:?} is not a commit here, and not a ticket key under the configured patterns");
    }
    let (_, mainline) = o.repo.mainline(o.config.mainline.as_deref())?;
    let mut tips = vec![mainline];
    for c in store.running_commits()? {
        if let Lookup::Found(c) = o.repo.lookup_commit(&c) {
            tips.push(c);
        }
    }
    tips.sort();
    tips.dedup();
    let mut found = Vec::new();
    for id in o.repo.walk(&tips, &[])? {
        let info = o.repo.commit_info(&id)?;
        if o.config.tickets.find(&info.message).iter().any(|t| t == item) {
            found.push(id);
        }
    }
    if found.is_empty() {
        bail!("no commit in the mainline or in anything the ledger saw run mentions {item}");
    }
    // A cherry-pick of a ticket's commit mentions the ticket too: the originals are the change.
    let picks: Vec<CommitId> = found.clone();
    let mut pids = crate::history::contains::PatchIds::default();
    let mut originals: Vec<CommitId> = Vec::new();
    let mut seen_patches: HashMap<String, ()> = HashMap::new();
    for c in picks.iter().rev() {
        match pids.get(&o.repo, c)? {
            Some(p) if seen_patches.contains_key(&p) => {}
            Some(p) => {
                seen_patches.insert(p, ());
                originals.push(c.clone());
            }
            None => originals.push(c.clone()),
        }
    }
    Ok(originals)
}
