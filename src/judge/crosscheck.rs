//! Sources that should agree: what runs (containers, pods, inventories), what a GitOps
//! repository declares, and what version stores report. Each running deployment gets the
//! declared image and the reported commits beside its own, and a `sources-disagree` finding
//! when they name different commits, saying which source says what. Pure: commits are
//! resolved before. Works on deployments, not on report rows: `Row::agree` puts each
//! `Agreement` on its row.

use crate::judge::report::{Agreement, Declared};
use crate::model::{Code, CommitId, Evidence, EvidenceKind, Finding};
use crate::observe::versions::Reported;
use crate::resolve::Deployment;

/// One `Agreement` per `running` deployment, in order, and the findings for declared or
/// reported services that nothing runs.
pub fn check(
    running: &[Deployment],
    declared: &[Deployment],
    reported: &[(Reported, Option<CommitId>)],
) -> (Vec<Agreement>, Vec<Finding>) {
    let agreements = running.iter().map(|d| agreement(d, declared, reported)).collect();
    let runs = |env: &str, service: &str| running.iter().any(|r| r.environment == env && r.service == service);
    let mut out = Vec::new();
    for d in declared.iter().filter(|d| !runs(&d.environment, &d.service)) {
        let origin = d.instances.first().map(|i| i.origin.as_str()).unwrap_or("");
        out.push(
            Finding::new(
                Code::SourcesDisagree,
                format!("{origin} declares {}, but no source shows it running", d.image),
            )
            .key(format!("declared:{}", d.image))
            .at(&d.environment, &d.service),
        );
    }
    for (r, _) in reported.iter().filter(|(r, _)| !runs(&r.environment, &r.service)) {
        out.push(
            Finding::new(
                Code::SourcesDisagree,
                format!("{} reports {}, but no source shows the service running", r.origin, r.value),
            )
            .key(format!("reported:{}", r.value))
            .at(&r.environment, &r.service),
        );
    }
    (agreements, out)
}

/// What `declared` and `reported` say about `d`.
fn agreement(d: &Deployment, declared: &[Deployment], reported: &[(Reported, Option<CommitId>)]) -> Agreement {
    let same = |env: &str, service: &str| env == d.environment && service == d.service;
    let declared = declared.iter().find(|x| same(&x.environment, &x.service)).map(|x| Declared {
        image: x.image.to_string(),
        commit: x.commit.clone(),
        origin: x.instances.first().map(|i| i.origin.clone()).unwrap_or_default(),
    });
    let reported: Vec<Evidence> = reported
        .iter()
        .filter(|(r, _)| same(&r.environment, &r.service))
        .map(|(r, commit)| Evidence {
            kind: EvidenceKind::Reported,
            name: r.origin.clone(),
            value: r.value.clone(),
            commit: commit.clone(),
        })
        .collect();
    let finding = disagreement(d, declared.as_ref(), &reported);
    Agreement { declared, reported, finding }
}

/// Which source says which commit, when they do not all say the same.
fn disagreement(d: &Deployment, declared: Option<&Declared>, reported: &[Evidence]) -> Option<Finding> {
    let short =
        |c: &Option<CommitId>| c.as_ref().map(|c| c.short().to_string()).unwrap_or_else(|| "no known commit".into());
    let mut claims = vec![(format!("running {}", d.image), d.commit.clone())];
    if let Some(x) = declared {
        claims.push((format!("{} declares {}", x.origin, x.image), x.commit.clone()));
    }
    for e in reported {
        claims.push((format!("{} reports {}", e.name, e.value), e.commit.clone()));
    }
    let first = &claims[0].1;
    if claims.iter().all(|(_, c)| c == first) {
        return None;
    }
    let said: Vec<String> = claims.iter().map(|(who, c)| format!("{who} ({})", short(c))).collect();
    let mut commits: Vec<String> = claims.iter().map(|(_, c)| short(c)).collect();
    commits.sort();
    commits.dedup();
    Some(
        Finding::new(Code::SourcesDisagree, format!("sources disagree: {}", said.join("; ")))
            .hint("sync the environment (or the GitOps repository), then check again")
            .key(commits.join(","))
            .at(&d.environment, &d.service),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ImageSpec;
    use crate::resolve::Instance;

    fn deployment(env: &str, service: &str, image: &str, commit: &str, origin: &str) -> Deployment {
        Deployment {
            environment: env.into(),
            service: service.into(),
            image: ImageSpec::parse(image).unwrap(),
            digests: Vec::new(),
            labels: Default::default(),
            instances: vec![Instance { name: None, started_at: None, origin: origin.into() }],
            commit: Some(CommitId(commit.repeat(40))),
            evidence: Vec::new(),
            findings: Vec::new(),
        }
    }

    #[test]
    fn a_running_deployment_gets_what_the_other_sources_say_and_their_disagreement() {
        let running = [deployment("prod", "api", "shop/api:1.2.0", "a", "docker")];
        let declared = [
            deployment("prod", "api", "shop/api:1.3.0", "b", "gitops@main:prod"),
            deployment("prod", "web", "shop/web:2.0.0", "c", "gitops@main:prod"),
        ];
        let reported = [(
            Reported {
                environment: "prod".into(),
                service: "api".into(),
                value: "aaaaaaa".into(),
                origin: "versions.json".into(),
            },
            Some(CommitId("a".repeat(40))),
        )];
        let (agreements, others) = check(&running, &declared, &reported);
        assert_eq!(agreements.len(), 1);
        let a = &agreements[0];
        assert_eq!(a.declared.as_ref().map(|d| d.image.as_str()), Some("shop/api:1.3.0"));
        assert_eq!(a.reported.len(), 1);
        let f = a.finding.as_ref().expect("declared b disagrees with running a");
        assert_eq!(f.code, Code::SourcesDisagree);
        assert_eq!(
            f.message,
            "sources disagree: running shop/api:1.2.0 (aaaaaaaaaa); gitops@main:prod declares shop/api:1.3.0 \
             (bbbbbbbbbb); versions.json reports aaaaaaa (aaaaaaaaaa)"
        );
        assert_eq!(others.len(), 1, "web is declared, nothing runs it: {others:?}");
        assert_eq!(others[0].service.as_deref(), Some("web"));
    }
}
