//! "Why is it not in production?": for a commit or a ticket, the chain of links from the
//! change to each environment — in the repository, on the mainline, in a release, an image
//! for it, then per environment along the promotion path: runs it, its predecessor runs it,
//! seasoning is over, nothing blocks — and where it first breaks, what to do next.
//!
//! The commands gather the facts (git, registry, what runs); everything here is pure: facts
//! in, links and the next step out. An unknown is `?` with its reason, never a guess.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::history::contains::State;
use crate::model::{CommitId, CommitRecord, Finding};

/// How one link of the chain stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mark {
    Yes,
    No,
    /// Cannot be known here (shallow clone, registry not asked, no start times).
    Unknown,
}

impl Mark {
    pub fn symbol(self) -> &'static str {
        match self {
            Mark::Yes => "✓",
            Mark::No => "✗",
            Mark::Unknown => "?",
        }
    }
}

/// One link: what was checked, how it stands, and the evidence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Link {
    pub step: &'static str,
    pub mark: Mark,
    pub evidence: String,
}

fn link(step: &'static str, mark: Mark, evidence: impl Into<String>) -> Link {
    Link { step, mark, evidence: evidence.into() }
}

/// Where one queried commit stands against the mainline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OnMainline {
    /// Reachable from the mainline; `via` is the first-parent mainline commit that brought it
    /// in (the commit itself when it was committed there directly).
    Merged { via: CommitId, via_subject: String, at: DateTime<Utc> },
    /// Not itself, but a commit with the same patch is on the mainline.
    Picked { via: CommitId, at: DateTime<Utc> },
    /// Only on these branches.
    Branches(Vec<String>),
    /// On no branch (a dangling or fetched-only commit).
    Nowhere,
    /// A shallow clone cannot tell.
    Unknown,
}

/// Where one queried commit stands against the version tags.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InRelease {
    /// The first version tag that contains it, itself or as this cherry-pick.
    Tag { tag: String, picked: Option<CommitId> },
    /// No version tag contains it; the newest tag there is, if any.
    Untagged { newest: Option<String> },
    /// The repository has no version tags: releases are not how it ships.
    NoVersionTags,
}

/// Everything known of one queried commit.
#[derive(Clone, Debug)]
pub struct CommitFacts {
    pub record: CommitRecord,
    pub mainline: OnMainline,
    /// A mainline commit reverting it (`This reverts commit <sha>`), and when.
    pub reverted_by: Option<(CommitId, DateTime<Utc>)>,
    pub release: InRelease,
}

/// Whether an image for the change exists, for one service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImageFact {
    /// It runs somewhere, so its image exists.
    Runs { environment: String, image: String },
    /// The release's image is in the registry.
    InRegistry { image: String },
    /// The registry has none of these tags.
    Missing { tried: Vec<String> },
    /// Not known: the reason (`--offline`, the registry failed, no tag template fits).
    Unknown(String),
    /// Nothing to look for: nothing runs it and no release holds it.
    NoRelease,
}

/// The chain for one service, as far as its environments share it.
#[derive(Clone, Debug, Serialize)]
pub struct ServiceChain {
    pub service: String,
    /// Whether an image holds the change; `None` when nothing runs it and no release holds
    /// it, so there is no image to look for (the release link says why).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<Link>,
    pub environments: Vec<EnvChain>,
}

/// The chain in one environment, up to the first link that breaks, and what to do.
#[derive(Clone, Debug, Serialize)]
pub struct EnvChain {
    pub environment: String,
    pub state: State,
    pub links: Vec<Link>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// What is known of one service in one environment.
#[derive(Clone, Debug)]
pub struct EnvFacts {
    pub environment: String,
    pub service: String,
    pub state: State,
    /// What runs: `1.2.0 (abc1234)` per distinct image.
    pub running: Vec<String>,
    /// Replicas in all and replicas running the change.
    pub replicas: (usize, usize),
    /// Queried commits this environment lacks (for a partly deployed ticket).
    pub lacking: Vec<CommitId>,
    /// Cherry-picks it runs the change as.
    pub picked: Vec<CommitId>,
    /// The earliest start time among replicas running the change (a lower bound of how
    /// long it has run: an earlier deployment may have run it too).
    pub since: Option<DateTime<Utc>>,
    /// Mainline commits the running one lacks (`None`: unknown or not one commit).
    pub behind: Option<usize>,
    /// The environment before it in the promotion path: its name, state and since when.
    pub predecessor: Option<(String, State, Option<DateTime<Utc>>)>,
    /// The seasoning rule for this environment: minimum days and where it is configured.
    pub seasoning: Option<(i64, String)>,
    /// Denied findings on this environment and service (the gate would fail).
    pub blockers: Vec<Finding>,
    /// Findings an exception lets through here, with its reason.
    pub excepted: Vec<Finding>,
    /// The version tag to deploy it with, when there is one.
    pub release: Option<String>,
}

/// The change-level links (repository, mainline, release) and the first broken one's advice.
pub fn change_links(commits: &[CommitFacts], mainline: &str) -> (Vec<Link>, Option<String>) {
    let n = commits.len();
    let mut links = vec![link(
        "in the repository",
        Mark::Yes,
        match n {
            1 => format!("{} {}", commits[0].record.sha.short(), commits[0].record.subject),
            _ => format!("{n} commits"),
        },
    )];
    let mut next = None;
    let set_next = |next: &mut Option<String>, s: String| {
        if next.is_none() {
            *next = Some(s);
        }
    };

    // On the mainline (and not reverted there).
    let mut off = Vec::new();
    let mut unknown = Vec::new();
    let mut reverted = Vec::new();
    let mut merged = Vec::new();
    for c in commits {
        let short = c.record.sha.short().to_string();
        match &c.mainline {
            OnMainline::Merged { via, at, .. } if via == &c.record.sha => {
                merged.push(format!("{short} committed directly on {mainline} ({})", day(*at)))
            }
            OnMainline::Merged { via, via_subject, at } => {
                merged.push(format!("{short} since {} {via_subject:?} ({})", via.short(), day(*at)))
            }
            OnMainline::Picked { via, at } => {
                merged.push(format!("{short} as cherry-pick {} ({})", via.short(), day(*at)))
            }
            OnMainline::Branches(b) => off.push(format!("{short} only on {}", b.join(", "))),
            OnMainline::Nowhere => off.push(format!("{short} on no branch")),
            OnMainline::Unknown => unknown.push(short.clone()),
        }
        if let Some((r, at)) = &c.reverted_by {
            reverted.push(format!("{short} reverted by {} ({})", r.short(), day(*at)));
        }
    }
    if !off.is_empty() {
        links.push(link("on the mainline", Mark::No, off.join("; ")));
        set_next(&mut next, format!("merge it into {mainline}"));
    } else if !reverted.is_empty() {
        links.push(link("on the mainline", Mark::No, reverted.join("; ")));
        set_next(&mut next, format!("it was reverted on {mainline}: it ships again only when re-applied there"));
    } else if !unknown.is_empty() {
        links.push(link(
            "on the mainline",
            Mark::Unknown,
            format!("{} (a shallow clone cannot tell)", unknown.join(", ")),
        ));
        set_next(&mut next, "git fetch --unshallow --tags, then ask again".to_string());
    } else {
        links.push(link("on the mainline", Mark::Yes, format!("{mainline}: {}", merged.join("; "))));
    }

    // In a release.
    if commits.iter().all(|c| c.release == InRelease::NoVersionTags) {
        return (links, next);
    }
    let mut tagged = Vec::new();
    let mut untagged = Vec::new();
    let mut newest = None;
    for c in commits {
        let short = c.record.sha.short().to_string();
        match &c.release {
            InRelease::Tag { tag, picked: None } => tagged.push(format!("{short} in {tag}")),
            InRelease::Tag { tag, picked: Some(p) } => tagged.push(format!("{short} in {tag} as {}", p.short())),
            InRelease::Untagged { newest: n } => {
                untagged.push(short);
                newest = n.clone();
            }
            InRelease::NoVersionTags => {}
        }
    }
    if untagged.is_empty() {
        links.push(link("in a release", Mark::Yes, tagged.join("; ")));
    } else {
        let newest = newest.map(|t| format!(" (newest: {t})")).unwrap_or_default();
        links.push(link("in a release", Mark::No, format!("no version tag contains {}{newest}", untagged.join(", "))));
        set_next(&mut next, "tag a release that contains it".to_string());
    }
    (links, next)
}

/// The image link for one service.
pub fn image_link(fact: &ImageFact) -> Option<Link> {
    Some(match fact {
        ImageFact::Runs { environment, image } => {
            link("an image exists", Mark::Yes, format!("{image} runs in {environment}"))
        }
        ImageFact::InRegistry { image } => link("an image exists", Mark::Yes, format!("{image} is in the registry")),
        ImageFact::Missing { tried } => {
            link("an image exists", Mark::No, format!("the registry has no {}", tried.join(", ")))
        }
        ImageFact::Unknown(why) => link("an image exists", Mark::Unknown, why.clone()),
        ImageFact::NoRelease => return None,
    })
}

/// The chain in one environment: the change-level links first (they hold for every
/// environment), then what is particular to it; stopping at the first that breaks.
pub fn env_chain(
    facts: &EnvFacts,
    change: &[Link],
    change_next: Option<&str>,
    image: Option<&Link>,
    now: DateTime<Utc>,
) -> EnvChain {
    let mut links = Vec::new();
    let done = |links: Vec<Link>, next: Option<String>| EnvChain {
        environment: facts.environment.clone(),
        state: facts.state,
        links,
        next,
    };
    let runs = runs_link(facts);
    if matches!(facts.state, State::Deployed | State::Equivalent) {
        links.push(runs);
        // Running it is the answer; a revert on the mainline is what comes next.
        let next = change
            .iter()
            .find(|l| l.mark != Mark::Yes && l.step == "on the mainline")
            .map(|l| format!("{}: the next deployment from the mainline removes it", l.evidence));
        return done(links, next);
    }
    // Not (fully) running: the first link that breaks says why.
    for l in change.iter().chain(image) {
        links.push(l.clone());
        if l.mark != Mark::Yes {
            links.push(runs);
            let next = change_next.map(str::to_string).or_else(|| match l.mark {
                Mark::No if l.step == "an image exists" => Some("build and push the release image".to_string()),
                _ => Some(format!("find out: {}", l.evidence)),
            });
            return done(links, next);
        }
    }
    links.push(runs);
    if let Some((pred, state, since)) = &facts.predecessor {
        match state {
            State::Deployed | State::Equivalent => links.push(link(
                "predecessor runs it",
                Mark::Yes,
                match since {
                    Some(t) => {
                        format!("{pred} since at least {}", t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                    }
                    None => format!("{pred}, since an unknown time"),
                },
            )),
            State::Unknown => {
                links.push(link("predecessor runs it", Mark::Unknown, format!("{pred}: unknown")));
                return done(links, Some(format!("resolve what runs in {pred} first")));
            }
            _ => {
                links.push(link(
                    "predecessor runs it",
                    Mark::No,
                    format!("{pred} does not run it ({})", state.describe()),
                ));
                return done(links, Some(format!("deploy it to {pred} first")));
            }
        }
        if let Some((days, origin)) = &facts.seasoning {
            match since {
                None => {
                    links.push(link(
                        "seasoned",
                        Mark::Unknown,
                        format!("{pred} reports no start times; {days} day(s) required ({origin})"),
                    ));
                    return done(links, Some(format!("check how long {pred} has run it")));
                }
                Some(t) => {
                    let eligible = *t + chrono::Duration::days(*days);
                    if eligible > now {
                        links.push(link(
                            "seasoned",
                            Mark::No,
                            format!(
                                "{days} day(s) in {pred} required ({origin}); eligible at {}",
                                eligible.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                            ),
                        ));
                        return done(
                            links,
                            Some(format!(
                                "wait until {}, then deploy",
                                eligible.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                            )),
                        );
                    }
                    links.push(link(
                        "seasoned",
                        Mark::Yes,
                        format!(
                            "{days} day(s) in {pred} required, eligible since {}",
                            eligible.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                        ),
                    ));
                }
            }
        }
    }
    if let Some(b) = facts.blockers.first() {
        let all: Vec<String> = facts.blockers.iter().map(|f| format!("{}: {}", f.code, f.message)).collect();
        links.push(link("nothing blocks", Mark::No, all.join("; ")));
        let next = b.hint.clone().unwrap_or_else(|| format!("resolve {} first", b.code));
        return done(links, Some(next));
    }
    let excepted: Vec<String> = facts
        .excepted
        .iter()
        .map(|f| format!("{} excepted: {}", f.code, f.suppressed.as_deref().unwrap_or("")))
        .collect();
    links.push(link(
        "nothing blocks",
        Mark::Yes,
        if excepted.is_empty() { "no denied finding".to_string() } else { excepted.join("; ") },
    ));
    let target = facts.release.clone().or_else(|| facts.predecessor.as_ref().map(|(p, _, _)| p.clone()));
    let next = match target {
        Some(t) => format!("deploy it: prodiff plan {} --to {t}", facts.environment),
        None => "deploy it".to_string(),
    };
    done(links, Some(next))
}

fn runs_link(facts: &EnvFacts) -> Link {
    let (all, with) = facts.replicas;
    match facts.state {
        State::Deployed | State::Equivalent => {
            let mut s = match facts.since {
                Some(t) => format!("since at least {}", t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
                None => "since an unknown time (no start times)".to_string(),
            };
            if !facts.picked.is_empty() {
                let p: Vec<&str> = facts.picked.iter().map(|c| c.short()).collect();
                s.push_str(&format!(", as cherry-pick {}", p.join(", ")));
            }
            link("runs it", Mark::Yes, s)
        }
        State::Partial => {
            let mut parts = Vec::new();
            if !facts.lacking.is_empty() {
                let l: Vec<&str> = facts.lacking.iter().map(|c| c.short()).collect();
                parts.push(format!("lacks {}", l.join(", ")));
            }
            if with > 0 && with < all {
                parts.push(format!("{with} of {all} replicas run it"));
            }
            link("runs it", Mark::No, format!("partly: {}; runs {}", parts.join("; "), facts.running.join(", ")))
        }
        State::NotDeployed => {
            let behind = facts.behind.map(|n| format!(", {n} commit(s) behind the mainline")).unwrap_or_default();
            link("runs it", Mark::No, format!("runs {}{behind}", facts.running.join(", ")))
        }
        State::Unknown => {
            link("runs it", Mark::Unknown, format!("runs {}: which commit is unknown", facts.running.join(", ")))
        }
    }
}

fn day(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d").to_string()
}

/// The first-parent mainline commit that brought `wanted` in: the oldest commit of the
/// chain (newest first) that contains it. Containment only ever goes from present to absent
/// down a first-parent chain, so a binary search finds the boundary.
pub fn brought_in<E>(
    chain: &[CommitId],
    mut contains: impl FnMut(&CommitId) -> Result<bool, E>,
) -> Result<Option<usize>, E> {
    if chain.is_empty() || !contains(&chain[0])? {
        return Ok(None);
    }
    let (mut yes, mut no) = (0, chain.len());
    while no - yes > 1 {
        let mid = (yes + no) / 2;
        if contains(&chain[mid])? {
            yes = mid;
        } else {
            no = mid;
        }
    }
    Ok(Some(yes))
}

/// True when `message` is git's revert message for `sha`.
pub fn reverts(message: &str, sha: &CommitId) -> bool {
    message
        .lines()
        .any(|l| l.trim().strip_prefix("This reverts commit ").is_some_and(|r| r.trim_end_matches('.').trim() == sha.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(c: char) -> CommitId {
        CommitId(c.to_string().repeat(40))
    }

    #[test]
    fn the_commit_that_brought_it_in_is_the_oldest_that_contains_it() {
        let chain: Vec<CommitId> = "abcdef".chars().map(id).collect();
        // a..c contain it, d..f do not.
        let r: Result<_, ()> = brought_in(&chain, |c| Ok("abc".contains(&c.0[..1])));
        assert_eq!(r, Ok(Some(2)));
        let r: Result<_, ()> = brought_in(&chain, |_| Ok(false));
        assert_eq!(r, Ok(None));
        let r: Result<_, ()> = brought_in(&chain, |_| Ok(true));
        assert_eq!(r, Ok(Some(5)));
    }

    #[test]
    fn revert_messages_name_the_full_sha() {
        let sha = id('a');
        assert!(reverts(&format!("Revert \"x\"\n\nThis reverts commit {}.\n", sha.0), &sha));
        assert!(!reverts(&format!("This reverts commit {}.", id('b').0), &sha));
        assert!(!reverts("mentions This reverts commit in prose", &sha));
    }
}
