//! The ledger fed by the real Docker source: containers started, replaced, rolled back and
//! hotfixed on the local daemon between `record` runs on the real clock, with the daemon
//! unreachable for one run. Each change's time comes from its container's start (exact,
//! since it falls between two runs), and the commits shipped and removed are git's.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::docker::{docker, repo, Lab, DAEMON, REV};
use crate::util::{prodiff_env, Run};

/// `docker inspect`'s start time of a container, to the second, as the ledger prints it.
fn started(container: &str) -> String {
    let at = docker(&["inspect", "-f", "{{.State.StartedAt}}", container]);
    let at = chrono::DateTime::parse_from_rfc3339(&at).unwrap();
    at.with_timezone(&chrono::Utc).format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn run(repo: &Path, ledger: &str, args: &[&str]) -> Run {
    prodiff_env(repo, args, None, &[("PRODIFF_LEDGER", ledger)])
}

/// A second passes, so runs and container starts fall in distinct seconds.
fn tick() {
    std::thread::sleep(Duration::from_millis(1100));
}

#[test]
fn record_through_the_docker_source_times_each_change_by_its_container_start() {
    let _daemon = DAEMON.lock().unwrap_or_else(|e| e.into_inner());
    let Some(lab) = Lab::new() else { return };
    let r = repo();
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("ledger.db").to_str().unwrap().to_string();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let body = |host: &str| {
        format!("[services.api]\nimage = \"{}/api\"\n[environments.local]\ndocker = [\"{host}\"]\n", lab.name)
    };
    let cfg = lab.config(r.scratch(), &body("default"));
    let blind = r.scratch().join("blind.toml");
    std::fs::write(&blind, body(&format!("tcp://127.0.0.1:{closed}"))).unwrap();
    let record = |config: &Path| run(r.path(), &ledger, &["record", "--offline", "--config", config.to_str().unwrap()]);

    let images: Vec<String> = [("1.0.0", "v1.0.0"), ("1.1.0", "v1.1.0"), ("1.0.1", "v1.0.1")]
        .iter()
        .map(|(tag, rev)| lab.image("api", tag, &[(REV, &r.rev(rev))], tag))
        .collect();
    let mut starts = Vec::new();
    // 1.0.0 first seen; 1.1.0 deployed; back to 1.0.0 (a rollback); an unreachable daemon;
    // the 1.0.1 hotfix deployed.
    for (step, image) in [0, 1, 0, 2].into_iter().enumerate() {
        if step > 0 {
            docker(&["rm", "-f", &format!("{}-api{}", lab.name, step - 1)]);
        }
        let name = lab.run(&format!("api{step}"), &images[image], &[]);
        starts.push(started(&name));
        tick();
        if step == 3 {
            let unseen = record(&blind);
            unseen.expect_code(3);
            tick();
        }
        record(&cfg).expect_code(0);
        tick();
    }

    let log = run(r.path(), &ledger, &["log", "--format", "json", "--config", cfg.to_str().unwrap()]);
    log.expect_code(0);
    let events = log.json()["deployments"].as_array().unwrap().clone();
    let kinds: Vec<&str> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        ["deploy", "rollback", "deploy", "first-seen"],
        "newest first, no event for the blind run: {events:#?}"
    );
    let shas = |e: &Value, key: &str| -> Vec<String> {
        e[key].as_array().unwrap().iter().map(|c| c["sha"].as_str().unwrap().to_string()).collect()
    };
    let (hotfix, rollback, deploy) = (&events[0], &events[1], &events[2]);
    assert_eq!(shas(deploy, "shipped"), r.rev_list(&["v1.1.0", "^v1.0.0"]));
    assert_eq!(shas(rollback, "removed"), r.rev_list(&["v1.1.0", "^v1.0.0"]));
    assert!(shas(rollback, "shipped").is_empty());
    assert_eq!(rollback["rollback"], true);
    assert_eq!(shas(hotfix, "shipped"), r.rev_list(&["v1.0.1", "^v1.0.0"]));
    // Each change is timed by its container's start, which falls between two runs.
    for (event, start) in [(deploy, &starts[1]), (rollback, &starts[2]), (hotfix, &starts[3])] {
        assert_eq!(event["exact"].as_str(), Some(start.as_str()), "{event:#}");
        assert!(event["after"].as_str().unwrap() < start.as_str() && start.as_str() <= event["by"].as_str().unwrap());
    }
    assert_eq!(hotfix["to"][0]["commit"], r.rev("v1.0.1").as_str());
    assert_eq!(hotfix["from"][0]["commit"], r.rev("v1.0.0").as_str());
    // The hotfix's predecessor was last seen before the blind run: the lower bound is that run.
    assert_eq!(hotfix["after"], rollback["last_seen"]);

    // `when` the 1.1.0 commit: ran from the deploy's container start, no longer runs.
    let two = r.rev("v1.1.0");
    let when = run(r.path(), &ledger, &["when", &two, "--format", "json", "--config", cfg.to_str().unwrap()]);
    when.expect_code(0);
    let answers = when.json()["answers"].as_array().unwrap().clone();
    assert_eq!(answers.len(), 1, "{answers:#?}");
    assert_eq!(answers[0]["environment"], "local");
    assert_eq!(answers[0]["first"]["exact"].as_str(), Some(starts[1].as_str()));
    assert_eq!(answers[0]["still_runs"], "no");
}
