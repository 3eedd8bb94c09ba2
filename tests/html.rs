//! `--format html` in a real browser: the demo's page as chromium builds it holds the
//! expected cells (the numbers the JSON report gives), links and findings, logs nothing to
//! the console, fetches nothing, and is screenshotted into target/test-artifacts/. Text
//! planted by an attacker (a commit subject, a label, a service and environment name)
//! stays text.

use std::path::Path;

use serde_json::Value;

use crate::demo::{expect_file, run_demo};
use crate::util::*;
use crate::util_browser::{self, cell, file_url};

const NOW: &str = "2026-11-22T12:00:00Z";

/// Runs the demo with `args` and writes its stdout to `DIR/NAME` for the browser.
fn demo_page(args: &[&str], code: i32, dir: &Path, name: &str) -> (String, std::path::PathBuf) {
    let run = run_demo(args, &[("PRODIFF_NOW", NOW)]);
    run.expect_code(code);
    // run_demo writes `<demo>` for the checkout's path: as text, for the browser.
    let html = run.stdout.replace("<demo>", "&lt;demo&gt;");
    let path = dir.join(name);
    std::fs::write(&path, &html).unwrap();
    (html, path)
}

/// What makes a page self-contained: nothing it could fetch, no script.
fn assert_self_contained(html: &str) {
    for bad in ["<script", "<link", "<img", "<iframe", "<object", "<embed", "<video", "<audio", "@import"] {
        assert!(!html.contains(bad), "the page contains {bad:?}: it must be self-contained");
    }
    // `url(#id)` names a part of the page itself (the SVG arrowhead); nothing else may.
    assert!(html.match_indices("url(").all(|(i, _)| html[i + 4..].starts_with('#')), "the page fetches a url(…)");
}

fn assert_quiet(page: &util_browser::Page, what: &str) {
    assert!(page.console.is_empty(), "{what}: the browser console has messages:\n{}", page.console.join("\n"));
}

#[test]
fn demo_status_page_shows_the_matrix_in_a_real_browser() {
    let dir = util_browser::artefacts("html-demo-status");
    let (html, path) = demo_page(&["status", "--format", "html"], 1, &dir, "status.html");
    expect_file("status.expected.html", &html);
    assert_self_contained(&html);
    let page = util_browser::load(&file_url(&path));
    assert_quiet(&page, "status.html");
    let dom = &page.dom;

    // Every cell holds the numbers the JSON report gives for the same demo.
    let json = run_demo(&["status", "--format", "json"], &[("PRODIFF_NOW", NOW)]).json();
    for row in json["results"].as_array().unwrap() {
        let (env, service) = (row["environment"].as_str().unwrap(), row["service"].as_str().unwrap());
        let c = cell(dom, env, service);
        let commit = row["commit"].as_str().unwrap();
        let behind = row["behind"].as_array().unwrap().iter().filter(|c| c["equivalent"].is_null()).count();
        let ahead = row["ahead"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["equivalent"].is_null() && c["merge"] == Value::Bool(false))
            .count();
        let replicas = row["instances"].as_array().unwrap().len();
        let tag = row["image"].as_str().unwrap().rsplit(':').next().unwrap();
        for want in [
            format!("<span class=\"version\" title=\"{}\">{tag}</span>", row["image"].as_str().unwrap()),
            format!("/commit/{commit}\">{}</a>", &commit[..10]),
            format!("<span class=\"n\">↓ {behind}</span> behind"),
            format!("<span class=\"n\">↑ {ahead}</span> ahead"),
            format!("{replicas} replica{}", if replicas == 1 { "" } else { "s" }),
        ] {
            assert!(c.contains(&want), "{env}/{service}: no {want:?} in the cell:\n{c}");
        }
        let shown = row["findings"].as_array().unwrap().iter().filter(|f| f["level"] != "allow");
        for code in shown.map(|f| f["code"].as_str().unwrap()) {
            assert!(c.contains(&format!("<code>{code}</code>")), "{env}/{service}: finding {code} not shown:\n{c}");
        }
    }
    // The README's reading of the demo, cell by cell.
    let api = cell(dom, "production", "api");
    assert!(api.contains("1.4.1") && api.contains("10fea9a142") && api.contains("2 replicas"), "{api}");
    assert!(api.contains("✖ deny</span> <code>hotfix-drift</code>"), "{api}");
    assert!(api.contains("⚠ warn</span> <code>unpromoted-change</code>"), "{api}");
    assert!(api.contains("deployed 4 days ago"), "{api}");
    assert!(cell(dom, "staging", "web").contains("✔ ok"));
    assert!(cell(dom, "production", "worker").contains("<code>evidence-conflict</code>"));

    // Drill-down links: commits and pull requests on GitHub (the demo's origin), tickets
    // through the demo's ticket_url.
    let web = cell(dom, "production", "web");
    assert!(web.contains("<details><summary>Commits vs main: ↓ 2 ↑ 0</summary>"), "{web}");
    assert!(
        web.contains(
            "SHOP-112 search box (#88)</span> <a class=\"pr\" href=\"https://github.com/example/shop/pull/88\">#88</a>"
        ),
        "{web}"
    );
    assert!(
        web.contains("<a class=\"ticket\" href=\"https://tickets.example.com/browse/SHOP-112\">SHOP-112</a>"),
        "{web}"
    );
    assert!(!web.contains("/issues/88"), "#88 is linked as the pull request, not again as an issue: {web}");
    assert!(api.contains("href=\"https://tickets.example.com/browse/SHOP-120\">SHOP-120</a>"), "{api}");

    // The value stream: staging → production waits for commits; production's hotfix is a
    // side branch.
    assert!(dom.contains("<li>staging → production: 4 commits waiting (SHOP-113, SHOP-114, SHOP-112, #88, SHOP-111); hotfix drift: api runs 1 commit the mainline lacks (SHOP-120)</li>"), "{dom}");
    assert!(dom.contains("↳ hotfix drift (not in the mainline)"));
    // Findings with hints, and the header.
    assert!(dom.contains("<td><code>hotfix-drift</code></td><td>production/api</td>"), "{dom}");
    assert!(dom.contains("merge or cherry-pick them into main, or the next release will drop them"));
    assert!(dom.contains("✔ Complete: everything configured was observed."));
    assert!(dom.contains(
        "Audited 2 environments (staging, production) and 3 services at <time datetime=\"2026-11-22T12:00:00Z\">"
    ));

    util_browser::screenshot(&file_url(&path), &dir.join("status.png"), 1100);
}

#[test]
fn check_diff_and_plan_pages_load_in_the_browser() {
    let dir = util_browser::artefacts("html-demo-pages");
    let (_, check) = demo_page(&["check", "--format", "html"], 1, &dir, "check.html");
    let page = util_browser::load(&file_url(&check));
    assert_quiet(&page, "check.html");
    assert!(page.dom.contains("<strong>✖ Check failed</strong>: 2 denied, 1 warning."), "{}", page.dom);

    let (html, diff) = demo_page(&["diff", "production", "--service", "api", "--format", "html"], 1, &dir, "diff.html");
    assert_self_contained(&html);
    let page = util_browser::load(&file_url(&diff));
    assert_quiet(&page, "diff.html");
    let dom = &page.dom;
    // The lists of `diff`, with the cherry-pick marked and the hotfix as the one drifting commit.
    assert!(dom.contains("<strong>Not running yet</strong>: 1 commit in main, not in production (not counted: 1 already running as a cherry-pick, =)"), "{dom}");
    assert!(
        dom.contains(
            "<strong>Running but not in main</strong>: 1 commit (not counted: 1 cherry-pick of a main commit, =)"
        ),
        "{dom}"
    );
    assert!(dom.contains("SHOP-120 hotfix: crash on empty cart"));
    assert!(dom.contains("<li class=\"same\"><span class=\"mark\""), "{dom}");

    let (html, plan) = demo_page(&["plan", "production", "--to", "1.5.0", "--format", "html"], 1, &dir, "plan.html");
    assert_self_contained(&html);
    let page = util_browser::load(&file_url(&plan));
    assert_quiet(&page, "plan.html");
    let dom = &page.dom;
    assert!(dom.contains("<title>Release plan: production → 1.5.0</title>"), "{dom}");
    assert!(dom.contains("<code>services/api/migrations/0007_orders_index.sql</code></td><td>1</td><td>0</td><td><span class=\"lvl warn\">⚠ risky</span>"), "{dom}");
    assert!(dom.contains("<code>drops-commits</code>"), "{dom}");
    util_browser::screenshot(&file_url(&plan), &dir.join("plan.png"), 1100);
}

#[test]
fn planted_markup_stays_text_in_the_browser() {
    let repo = TestRepo::new();
    let running = repo.commit("main", "first", &[("a.txt", "a")]);
    repo.commit("main", "<script>alert('subject')</script> SHOP-7", &[("b.txt", "b")]);
    let env = "<b>prod</b>";
    let service = "<script>alert('service')</script>";
    let label = "<img src=x onerror=alert('label')>";
    let inv = inventory(
        repo.scratch(),
        "inv.json",
        &[
            (
                env,
                service,
                "registry.example.com/shop/api:1.0",
                &[("org.opencontainers.image.revision", running.as_str())],
            ),
            (env, "labelled", "registry.example.com/shop/web:1.0", &[("org.opencontainers.image.revision", label)]),
        ],
    );
    let run = prodiff(
        repo.scratch(),
        &[
            "status",
            "--format",
            "html",
            "--offline",
            "--repo",
            repo.path().to_str().unwrap(),
            "--inventory",
            inv.to_str().unwrap(),
        ],
        None,
    );
    assert!(run.code == 0 || run.code == 1 || run.code == 3, "{}", run.context);
    let dir = util_browser::artefacts("html-planted");
    let path = dir.join("planted.html");
    std::fs::write(&path, &run.stdout).unwrap();
    assert_self_contained(&run.stdout);
    let page = util_browser::load(&file_url(&path));
    assert_quiet(&page, "planted.html");
    let dom = &page.dom;
    // No element came from the planted text: the only elements are the page's own.
    for element in ["<script", "<img", "<b>"] {
        assert!(!dom.contains(element), "{element} became an element:\n{dom}");
    }
    // And each planted value is there, as text.
    for text in [
        "&lt;script&gt;alert('subject')&lt;/script&gt; SHOP-7",
        "&lt;script&gt;alert('service')&lt;/script&gt;",
        "&lt;img src=x onerror=alert('label')&gt;",
        "&lt;b&gt;prod&lt;/b&gt;",
    ] {
        assert!(dom.contains(text), "{text} is not in the page as text:\n{dom}");
    }
}

#[test]
fn the_browser_check_sees_console_errors() {
    // The console check above can fail: a page with a script error is caught.
    let dir = util_browser::artefacts("html-console");
    let path = dir.join("broken.html");
    std::fs::write(&path, "<!DOCTYPE html><html><body><p>x</p><script>nosuch();</script></body></html>").unwrap();
    let page = util_browser::load(&file_url(&path));
    assert!(page.console.iter().any(|l| l.contains("Uncaught ReferenceError")), "{:?}", page.console);
}

#[test]
fn a_ticket_url_without_a_placeholder_is_a_config_error_on_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("prodiff.toml");
    std::fs::write(&config, "mainline = \"main\"\n\n[report]\nticket_url = \"https://jira.example.com/browse/\"\n")
        .unwrap();
    let repo = TestRepo::new();
    repo.commit("main", "first", &[("a", "a")]);
    let run = prodiff(
        dir.path(),
        &["status", "--repo", repo.path().to_str().unwrap(), "--config", config.to_str().unwrap(), "--format", "html"],
        None,
    );
    run.expect_code(2);
    assert!(
        run.stderr.contains(&format!(
            "{}:4:14: report.ticket_url: \"https://jira.example.com/browse/\" has no {{key}} placeholder",
            config.display()
        )),
        "{}",
        run.context
    );
}

#[test]
fn html_is_refused_where_there_is_no_matrix() {
    for args in [&["contains", "SHOP-110", "--format", "html"][..], &["rollback", "production", "--format", "html"][..]]
    {
        let run = run_demo(args, &[]);
        run.expect_code(2);
        assert!(
            run.stderr.contains(
                "--format html draws the environment × service matrix: use it with status, check, diff or plan"
            ),
            "{}",
            run.context
        );
    }
}

#[test]
fn an_incomplete_audit_keeps_its_exit_code_and_says_so_on_the_page() {
    // A configured environment that reports nothing: `empty-environment`, incomplete (exit 3).
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("qa.json");
    std::fs::write(&empty, r#"{"workloads": []}"#).unwrap();
    let config = dir.path().join("prodiff.toml");
    let demo = std::fs::read_to_string(crate::demo::demo_dir().join("prodiff.toml")).unwrap();
    let demo = demo
        .replace("\"staging.json\"", &format!("{:?}", crate::demo::demo_dir().join("staging.json")))
        .replace("\"production.json\"", &format!("{:?}", crate::demo::demo_dir().join("production.json")));
    std::fs::write(&config, format!("{demo}\n[environments.qa]\ninventory = [{:?}]\n", empty)).unwrap();
    // The demo's denied findings allowed, so that only the missing environment counts.
    let allow = ["--allow", "hotfix-drift", "--allow", "evidence-conflict"];
    let args = [&["status", "--format", "html", "--config", config.to_str().unwrap()][..], &allow[..]].concat();
    let run = run_demo(&args, &[("PRODIFF_NOW", NOW)]);
    run.expect_code(3);
    assert!(run.stdout.contains("⚠ Incomplete: something could not be observed"), "{}", run.stdout);
    assert!(run.stdout.contains("<code>empty-environment</code>"), "{}", run.stdout);
    let run = run_demo(&[&args[..], &["--allow-incomplete"]].concat(), &[("PRODIFF_NOW", NOW)]);
    run.expect_code(0);
}
