//! The fleet: three generated repositories (calendar, members — a monorepo of two services
//! with path filters — and wiki), their services running in one inventory and on the real
//! Docker daemon, audited in one run. Each repository's rows must equal what prodiff says
//! when run on that repository alone; an image no config names is matched to its clone by
//! its source label; a missing clone is a finding while the others are still audited.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::docker::{Lab, DAEMON, REV};
use crate::util::*;

const SOURCE: &str = "org.opencontainers.image.source";

/// The three clones, side by side under one directory (as symlinks named after them), and
/// the commits the tests deploy.
struct Fleet {
    calendar: TestRepo,
    members: TestRepo,
    wiki: TestRepo,
    dir: tempfile::TempDir,
}

impl Fleet {
    fn new() -> Fleet {
        let calendar = TestRepo::new();
        calendar.commit("main", "calendar one", &[("cal.txt", "1")]);
        calendar.tag("v1.0.0", "main", true);
        calendar.commit("main", "calendar two OPS-7", &[("cal.txt", "2")]);
        calendar.commit("main", "calendar three", &[("cal.txt", "3")]);
        calendar.git(&["remote", "add", "origin", "git@github.com:acme/calendar.git"]);

        // A monorepo: api/ and web/ are two services, each counting only its own commits.
        let members = TestRepo::new();
        members.commit("main", "members start", &[("api/a.txt", "1"), ("web/w.txt", "1")]);
        members.commit("main", "api change OPS-7", &[("api/a.txt", "2")]);
        members.commit("main", "web change", &[("web/w.txt", "2")]);
        members.commit("main", "web change two", &[("web/w.txt", "3")]);
        members.git(&["remote", "add", "origin", "https://github.com/acme/members"]);

        let wiki = TestRepo::new();
        wiki.commit("main", "wiki one", &[("w.txt", "1")]);
        wiki.commit("main", "wiki two", &[("w.txt", "2")]);
        wiki.git(&["branch", "-q", "-m", "main", "master"]);
        wiki.git(&["remote", "add", "origin", "ssh://git@github.com/acme/wiki"]);

        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("clones")).unwrap();
        for (name, r) in [("calendar", &calendar), ("members", &members), ("wiki", &wiki)] {
            std::os::unix::fs::symlink(r.path(), dir.path().join("clones").join(name)).unwrap();
        }
        Fleet { calendar, members, wiki, dir }
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn write(&self, name: &str, body: &str) -> PathBuf {
        let p = self.root().join(name);
        std::fs::write(&p, body).unwrap();
        p
    }

    /// What each service runs: calendar at "calendar one", api at its change, web at start.
    fn inventory(&self, prefix: &str) -> PathBuf {
        let cal = self.calendar.rev("calendar one");
        let api = self.members.rev("api change OPS-7");
        let web = self.members.rev("members start");
        let wiki = self.wiki.rev("wiki one");
        let images = [
            format!("{prefix}/calendar:1.0.0"),
            format!("{prefix}/members-api:7"),
            format!("{prefix}/members-web:1"),
            format!("{prefix}/wiki:1"),
        ];
        let labels = [[(REV, cal.as_str())], [(REV, api.as_str())], [(REV, web.as_str())], [(REV, wiki.as_str())]];
        let rows: Vec<InventoryRow> = vec![
            ("production", "calendar", &images[0], &labels[0]),
            ("production", "members-api", &images[1], &labels[1]),
            ("production", "members-web", &images[2], &labels[2]),
            ("production", "wiki", &images[3], &labels[3]),
            ("production", "postgres", "postgres:16", &[]),
        ];
        inventory(self.root(), "inventory.json", &rows)
    }
}

/// Each repository's services, as its own prodiff.toml would list them.
fn services(repo: &str, prefix: &str) -> String {
    match repo {
        "calendar" => format!("[services.calendar]\nimage = \"{prefix}/calendar\"\n"),
        "members" => format!(
            "[services.members-api]\nimage = \"{prefix}/members-api\"\npaths = [\"api/\"]\n\
             [services.members-web]\nimage = \"{prefix}/members-web\"\npaths = [\"web/\"]\n"
        ),
        _ => format!("[services.wiki]\nimage = \"{prefix}/wiki\"\n"),
    }
}

/// The same services, each naming its clone.
fn fleet_config(prefix: &str, wiki_repo: &str) -> String {
    let mut s = String::new();
    for (repo, dir) in [("calendar", "clones/calendar"), ("members", "clones/members"), ("wiki", wiki_repo)] {
        for block in services(repo, prefix).split("[services.").filter(|b| !b.is_empty()) {
            s.push_str(&format!("[services.{block}repo = \"{dir}\"\n"));
        }
    }
    s
}

fn rows(report: &Value) -> Vec<Value> {
    report["results"].as_array().unwrap().clone()
}

/// The fleet's rows of one repository, without the `repository` field.
fn rows_of(report: &Value, repo: &str) -> Vec<Value> {
    rows(report)
        .into_iter()
        .filter(|r| r["repository"] == repo)
        .map(|mut r| {
            r.as_object_mut().unwrap().remove("repository");
            r
        })
        .collect()
}

/// prodiff on one repository alone, with only its services.
fn alone(f: &Fleet, repo: &str, r: &TestRepo, prefix: &str, extra: &[&str]) -> Value {
    let config = f.write(&format!("{repo}.toml"), &services(repo, prefix));
    let mut args = vec!["status", "--format", "json", "--offline", "--config", config.to_str().unwrap()];
    args.extend_from_slice(extra);
    let run = prodiff(r.path(), &args, None);
    run.expect_code(0);
    run.json()
}

#[test]
fn one_run_over_three_repositories_equals_one_run_per_repository() {
    let f = Fleet::new();
    let inv = f.inventory("acme");
    let inv = inv.to_str().unwrap();
    let config = f.write("fleet.toml", &fleet_config("acme", "clones/wiki"));
    // Outside every repository, no --repo: the services name their clones.
    let run = prodiff(
        f.root(),
        &["status", "--format", "json", "--offline", "--config", config.to_str().unwrap(), "--inventory", inv],
        None,
    );
    run.expect_code(0);
    let fleet = run.json();
    let names: Vec<&str> =
        fleet["repositories"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["calendar", "members", "wiki"]);
    assert_eq!(fleet["repositories"][2]["mainline"]["name"], "master", "each repository's own mainline");
    for (name, repo) in [("calendar", &f.calendar), ("members", &f.members), ("wiki", &f.wiki)] {
        let single = alone(&f, name, repo, "acme", &["--inventory", inv]);
        assert!(single.get("repositories").is_none(), "one repository: no repositories list");
        assert!(rows(&single).iter().all(|r| r.get("repository").is_none()));
        assert_eq!(rows_of(&fleet, name), rows(&single), "{name}: the fleet's rows equal a run on it alone");
    }
    // The numbers are git's: calendar is 2 behind, the monorepo's services count their paths.
    let behind = |service: &str| row(&fleet, "production", service)["behind"].as_array().unwrap().len();
    assert_eq!(
        behind("calendar"),
        f.calendar.rev_list(&["--count", "main", &format!("^{}", f.calendar.rev("calendar one"))])[0]
            .parse::<usize>()
            .unwrap()
    );
    assert_eq!(behind("members-api"), 0, "web/ commits do not count for the api");
    let web = f.members.rev_list(&["--count", "main", &format!("^{}", f.members.rev("members start")), "--", "web/"]);
    assert_eq!(behind("members-web"), web[0].parse::<usize>().unwrap());
    assert_eq!(behind("wiki"), 1);
    // postgres is nobody's.
    let unclaimed = messages(&fleet, "unclaimed-images");
    assert_eq!(unclaimed, ["1 workload(s) run images no configured service claims: postgres"]);

    // The table names each row's repository.
    let table = prodiff(
        f.root(),
        &["status", "--offline", "--color", "never", "--config", config.to_str().unwrap(), "--inventory", inv],
        None,
    );
    table.expect_code(0);
    let header = table.stdout.lines().find(|l| l.starts_with("ENVIRONMENT")).unwrap();
    assert!(header.starts_with("ENVIRONMENT  SERVICE      REPO      IMAGE"), "{}", table.context);
    assert!(
        table.stdout.lines().any(|l| l.starts_with("production   members-web  members   acme/members-web:1")),
        "{}",
        table.context
    );
    for format in ["markdown", "github", "junit"] {
        let run = prodiff(
            f.root(),
            &["check", "--offline", "--format", format, "--config", config.to_str().unwrap(), "--inventory", inv],
            None,
        );
        run.expect_code(0);
        let want = match format {
            "markdown" => "| production | members-web | members | `acme/members-web:1` |",
            "junit" => r#"<testcase classname="production" name="members/members-web acme/members-web:1""#,
            _ => "production   members-web  members   acme/members-web:1",
        };
        assert!(run.stdout.contains(want), "{format}: {}", run.context);
    }
}

#[test]
fn repos_pulls_in_each_repositorys_own_services_and_commands_cross_repositories() {
    let f = Fleet::new();
    let inv = f.inventory("acme");
    let inv = inv.to_str().unwrap();
    for (name, r) in [("calendar", &f.calendar), ("members", &f.members), ("wiki", &f.wiki)] {
        std::fs::write(r.path().join("prodiff.toml"), services(name, "acme")).unwrap();
    }
    let config = f.write("fleet.toml", "repos = [\"clones/calendar\", \"clones/members\", \"clones/wiki\"]\n");
    let config = config.to_str().unwrap();
    let run =
        prodiff(f.root(), &["status", "--format", "json", "--offline", "--config", config, "--inventory", inv], None);
    run.expect_code(0);
    let report = run.json();
    assert_eq!(row(&report, "production", "members-web")["repository"], "members");
    assert_eq!(row(&report, "production", "wiki")["repository"], "wiki");

    // diff --service picks the repository that runs it.
    let diff = prodiff(
        f.root(),
        &[
            "diff",
            "production",
            "--service",
            "members-web",
            "--format",
            "json",
            "--offline",
            "--config",
            config,
            "--inventory",
            inv,
        ],
        None,
    );
    diff.expect_code(0);
    let d = diff.json();
    assert_eq!(d["results"].as_array().unwrap().len(), 1);
    assert_eq!(d["repository"], f.members.path().display().to_string().as_str());
    assert_eq!(shas(&d["results"][0]["behind"]), [f.members.rev("web change two"), f.members.rev("web change")]);
    // A plan needs one repository: --service says which.
    let plan = prodiff(
        f.root(),
        &["plan", "production", "--to", "main", "--offline", "--config", config, "--inventory", inv],
        None,
    );
    plan.expect_code(2);
    assert!(plan.stderr.contains("pass --service"), "{}", plan.context);
    let plan = prodiff(
        f.root(),
        &[
            "plan",
            "production",
            "--to",
            "main",
            "--service",
            "calendar",
            "--format",
            "json",
            "--offline",
            "--config",
            config,
            "--inventory",
            inv,
        ],
        None,
    );
    plan.expect_code(0);
    assert!(plan.stdout.contains(&f.calendar.rev("calendar three")), "{}", plan.context);

    // why walks one repository's chain: --service picks it in a fleet.
    let why = prodiff(
        f.root(),
        &[
            "why",
            "OPS-7",
            "--service",
            "calendar",
            "--format",
            "json",
            "--offline",
            "--config",
            config,
            "--inventory",
            inv,
        ],
        None,
    );
    why.expect_code(1);
    let w = why.json();
    assert_eq!(shas(&w["commits"]), vec![f.calendar.rev("calendar two OPS-7")], "{}", why.context);
    assert_eq!(w["services"][0]["service"], "calendar");
    assert_eq!(w["services"][0]["environments"][0]["state"], "not-deployed");
    let why = prodiff(f.root(), &["why", "OPS-7", "--offline", "--config", config, "--inventory", inv], None);
    why.expect_code(2);
    assert!(why.stderr.contains("pass --service"), "{}", why.context);

    // A ticket in two repositories: one answer from each.
    let contains = prodiff(
        f.root(),
        &["contains", "OPS-7", "--format", "json", "--offline", "--config", config, "--inventory", inv],
        None,
    );
    let c = contains.json();
    let repos: Vec<&str> = c["queries"].as_array().unwrap().iter().map(|q| q["repository"].as_str().unwrap()).collect();
    assert_eq!(repos, ["calendar", "members"], "{}", contains.context);
    assert_eq!(c["queries"][0]["commits"][0]["sha"], f.calendar.rev("calendar two OPS-7").as_str());
    assert_eq!(c["queries"][1]["answers"][0]["service"], "members-api");
    assert_eq!(c["queries"][1]["answers"][0]["state"], "deployed");
    // calendar runs "calendar one": OPS-7 is not deployed there, so partly (exit 4).
    contains.expect_code(4);
    // --service: only the repository that runs it answers.
    let one = prodiff(
        f.root(),
        &[
            "contains",
            "OPS-7",
            "--service",
            "members-api",
            "--format",
            "json",
            "--offline",
            "--config",
            config,
            "--inventory",
            inv,
        ],
        None,
    );
    one.expect_code(0);
    let queries = one.json()["queries"].clone();
    assert_eq!(queries.as_array().unwrap().len(), 1, "{}", one.context);
    assert_eq!(queries[0]["repository"], "members");
    let missing = prodiff(f.root(), &["contains", "NOPE-1", "--offline", "--config", config, "--inventory", inv], None);
    missing.expect_code(2);
    assert!(missing.stderr.contains("\"NOPE-1\" is found in no repository of the fleet"), "{}", missing.context);

    // Two repositories defining one service: an error naming both files.
    std::fs::write(f.wiki.path().join("prodiff.toml"), services("calendar", "acme")).unwrap();
    let clash = prodiff(f.root(), &["status", "--offline", "--config", config, "--inventory", inv], None);
    clash.expect_code(2);
    assert!(
        clash.stderr.contains("service \"calendar\" is defined twice: in ")
            && clash.stderr.contains("clones/calendar/prodiff.toml and in ")
            && clash.stderr.contains("clones/wiki/prodiff.toml"),
        "{}",
        clash.context
    );
}

#[test]
fn a_missing_clone_is_a_finding_and_the_others_are_still_audited() {
    let f = Fleet::new();
    let inv = f.inventory("acme");
    let inv = inv.to_str().unwrap();
    std::fs::create_dir(f.root().join("not-a-clone")).unwrap();
    for (wiki_repo, why) in [("clones/gone", "no such directory"), ("not-a-clone", "")] {
        let config = f.write("fleet.toml", &fleet_config("acme", wiki_repo));
        let run = prodiff(
            f.root(),
            &["status", "--format", "json", "--offline", "--config", config.to_str().unwrap(), "--inventory", inv],
            None,
        );
        run.expect_code(3);
        let report = run.json();
        assert_eq!(report["complete"], false);
        let services: Vec<String> = rows(&report).iter().map(|r| r["service"].as_str().unwrap().to_string()).collect();
        assert_eq!(services, ["calendar", "members-api", "members-web"], "{}", run.context);
        let found = messages(&report, "repository-unavailable");
        assert_eq!(found.len(), 1, "{}", run.context);
        assert!(found[0].contains(wiki_repo) && found[0].contains(why), "{found:?}");
        assert!(found[0].ends_with("service wiki is not audited"), "{found:?}");
        let wiki = &report["repositories"][2];
        assert_eq!(
            (wiki["name"].as_str(), wiki["mainline"].is_null()),
            (Some(wiki_repo.rsplit('/').next().unwrap()), true)
        );
        let f0 = report["findings"].as_array().unwrap().iter().find(|x| x["code"] == "repository-unavailable").unwrap();
        assert_eq!((f0["environment"].as_str(), f0["service"].as_str()), (Some("production"), Some("wiki")));
    }
}

#[test]
fn the_source_label_matches_an_unconfigured_image_to_its_clone() {
    let f = Fleet::new();
    let wiki = f.wiki.rev("wiki one");
    let cal = f.calendar.rev("calendar three");
    // No config at all: the clones under a directory, the images' labels name their repositories.
    let inv = inventory(
        f.root(),
        "labels.json",
        &[
            (
                "production",
                "wiki",
                "ghcr.io/acme/wiki:1",
                &[(SOURCE, "https://github.com/acme/wiki.git"), (REV, &wiki)],
            ),
            ("production", "calendar", "ghcr.io/acme/calendar:3", &[(SOURCE, "git@github.com:acme/calendar")]),
            ("production", "billing", "ghcr.io/acme/billing:1", &[(SOURCE, "https://github.com/acme/billing")]),
        ],
    );
    let scratch = tempfile::tempdir().unwrap();
    let run = prodiff(
        scratch.path(),
        &[
            "status",
            "--format",
            "json",
            "--offline",
            "--repos-dir",
            f.root().join("clones").to_str().unwrap(),
            "--inventory",
            inv.to_str().unwrap(),
        ],
        None,
    );
    let report = run.json();
    assert_eq!(row(&report, "production", "wiki")["repository"], "wiki");
    assert_eq!(row(&report, "production", "wiki")["commit"], wiki.as_str());
    // calendar's image says where it came from but not which commit: its clone, unresolved.
    assert_eq!(row(&report, "production", "calendar")["repository"], "calendar");
    assert_eq!(codes(row(&report, "production", "calendar")), ["git-tag-missing", "unresolved"]);
    assert!(row(&report, "production", "calendar")["commit"].is_null(), "not {cal}: no evidence names it");
    assert_eq!(
        messages(&report, "unclaimed-images"),
        ["1 workload(s) run images no configured service claims: ghcr.io/acme/billing"]
    );
    run.expect_code(1);
}

#[test]
fn the_fleet_on_the_real_docker_daemon_equals_one_run_per_repository() {
    let Some(lab) = Lab::new() else { return };
    let _daemon = DAEMON.lock().unwrap_or_else(|e| e.into_inner());
    let f = Fleet::new();
    let cal = f.calendar.rev("calendar one");
    let api = f.members.rev("api change OPS-7");
    let web = f.members.rev("members start");
    let wiki = f.wiki.rev("wiki one");
    for (repo, tag, rev) in
        [("calendar", "1.0.0", &cal), ("members-api", "7", &api), ("members-web", "1", &web), ("wiki", "1", &wiki)]
    {
        let image = lab.image(repo, tag, &[(REV, rev)], repo);
        lab.run(repo, &image, &[]);
    }
    let prefix = lab.name.clone();
    let sources = "[environments.production]\ndocker = [\"default\"]\n";
    let config = f.write("fleet.toml", &format!("{}{sources}", fleet_config(&prefix, "clones/wiki")));
    let run =
        prodiff(f.root(), &["status", "--format", "json", "--offline", "--config", config.to_str().unwrap()], None);
    run.expect_code(0);
    let fleet = run.json();
    assert_eq!(rows(&fleet).len(), 4, "{}", run.context);
    for (name, repo) in [("calendar", &f.calendar), ("members", &f.members), ("wiki", &f.wiki)] {
        let own = f.write(&format!("{name}-docker.toml"), &format!("{}{sources}", services(name, &prefix)));
        let single =
            prodiff(repo.path(), &["status", "--format", "json", "--offline", "--config", own.to_str().unwrap()], None);
        single.expect_code(0);
        assert_eq!(rows_of(&fleet, name), rows(&single.json()), "{name}");
    }
    assert_eq!(row(&fleet, "production", "members-api")["commit"], api.as_str());
}

#[test]
fn a_shallow_clone_in_the_fleet_is_scoped_to_its_services() {
    let f = Fleet::new();
    let inv = f.inventory("acme");
    // members as CI checks it out, shallow: "members start" (web's commit) is cut off.
    let shallow = f.root().join("members-shallow");
    let url = format!("file://{}", f.members.path().display());
    git_in(f.root(), &["clone", "-q", "--depth", "3", &url, shallow.to_str().unwrap()], 0);
    let config =
        f.write("fleet.toml", &fleet_config("acme", "clones/wiki").replace("clones/members", "members-shallow"));
    let run = prodiff(
        f.root(),
        &[
            "status",
            "--format",
            "json",
            "--offline",
            "--config",
            config.to_str().unwrap(),
            "--inventory",
            inv.to_str().unwrap(),
        ],
        None,
    );
    // web's commit is beyond the boundary: unresolved, denied.
    run.expect_code(1);
    let report = run.json();
    assert_eq!(codes(row(&report, "production", "members-web")), ["commit-not-found", "git-tag-missing", "unresolved"]);
    let scoped: Vec<(String, String)> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["code"] == "shallow-clone")
        .map(|f| (f["environment"].as_str().unwrap().to_string(), f["service"].as_str().unwrap().to_string()))
        .collect();
    let pair = |s: &str| ("production".to_string(), s.to_string());
    assert_eq!(scoped, [pair("members-api"), pair("members-web")], "{}", run.context);
    assert_eq!(report["repositories"][1]["shallow"], true);
    // The api's commit is in the clone, but a shallow history gives no counts.
    let api = row(&report, "production", "members-api");
    assert_eq!(api["commit"], f.members.rev("api change OPS-7").as_str());
    assert!(api["behind"].is_null() && api["ahead"].is_null());
    // The other repositories keep their counts.
    assert_eq!(row(&report, "production", "calendar")["behind"].as_array().unwrap().len(), 2);
    assert_eq!(row(&report, "production", "wiki")["behind"].as_array().unwrap().len(), 1);
}
