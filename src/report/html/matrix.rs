//! The environment × service matrix: environments in promotion order as columns, services
//! as rows. A cell holds each image the service runs there: version, short commit, commits
//! behind and ahead of the mainline as numbers and small bars, the deployment's age,
//! replicas, its findings by level, and a drill-down with the commits both ways.

use std::fmt::Write as _;

use super::{badge, esc, level_class, plural};
use crate::judge::report::{Report, Row};
use crate::model::Level;

/// The matrix of `rows` (already limited to what the page shows). `live`: names link to
/// the dashboard's environment and service pages.
pub(super) fn section(page: &mut String, report: &Report, rows: &[&Row], live: bool) {
    page.push_str("<section id=\"matrix\"><h2>What runs where</h2>");
    if rows.is_empty() {
        page.push_str("<p>No workloads found.</p></section>\n");
        return;
    }
    let envs = columns(rows, &report.presentation.promotion);
    let services = super::distinct(rows.iter().map(|r| r.service.as_str()));
    let scale = rows.iter().flat_map(|r| [r.missing_count(), r.drift_count()]).flatten().max().unwrap_or(0);
    page.push_str("<table class=\"matrix\"><thead><tr><th scope=\"col\">Service</th>");
    for env in &envs {
        let _ = write!(page, "<th scope=\"col\" class=\"env\">{}</th>", name_link(live, "env", env));
    }
    page.push_str("</tr></thead><tbody>");
    for service in &services {
        let _ = write!(page, "<tr><th scope=\"row\" class=\"service\">{}</th>", name_link(live, "service", service));
        for env in &envs {
            let here: Vec<&Row> =
                rows.iter().copied().filter(|r| r.environment == *env && r.service == *service).collect();
            cell(page, report, &here, scale);
        }
        page.push_str("</tr>");
    }
    page.push_str(
        "</tbody></table><p class=\"meta\">↓ behind: mainline commits not running (cherry-picks excluded); \
         ↑ ahead: running commits the mainline lacks (hotfix drift). Bars share one scale.</p></section>\n",
    );
}

/// What GitOps repositories declare, compared with the mainline like what runs.
pub(super) fn declared(page: &mut String, rows: &[&Row]) {
    if rows.is_empty() {
        return;
    }
    page.push_str(
        "<section id=\"declared\"><h2>Declared (GitOps)</h2><table class=\"findings\"><thead><tr>\
         <th>Environment</th><th>Service</th><th>Image</th><th>Commit</th><th>Behind</th><th>Ahead</th><th>Source</th>\
         </tr></thead><tbody>",
    );
    let n = |c: Option<usize>| c.map_or("?".to_string(), |c| c.to_string());
    for r in rows {
        let origin = r.instances.first().map(|i| i.origin.trim_start_matches("declared ")).unwrap_or_default();
        let _ = write!(
            page,
            "<tr><td>{}</td><td>{}</td><td><code>{}</code></td><td><code>{}</code></td><td>↓ {}</td><td>↑ {}</td><td>{}</td></tr>",
            esc(&r.environment),
            esc(&r.service),
            esc(&r.image),
            esc(r.commit.as_ref().map_or("unresolved", |c| c.short())),
            n(r.missing_count()),
            n(r.drift_count()),
            esc(origin)
        );
    }
    page.push_str("</tbody></table></section>\n");
}

/// Environments of the promotion path first, in its order, then the others as they come.
fn columns<'a>(rows: &[&'a Row], promotion: &[String]) -> Vec<&'a str> {
    let seen = super::distinct(rows.iter().map(|r| r.environment.as_str()));
    let mut envs: Vec<&str> = promotion.iter().filter_map(|p| seen.iter().copied().find(|e| e == p)).collect();
    envs.extend(seen.iter().copied().filter(|e| !promotion.iter().any(|p| p == e)));
    envs
}

fn name_link(live: bool, kind: &str, name: &str) -> String {
    if live {
        format!("<a href=\"/{kind}/{}\">{}</a>", esc(&percent_path(name)), esc(name))
    } else {
        esc(name).into_owned()
    }
}

/// A name as one URL path segment.
pub fn percent_path(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') => (b as char).to_string(),
            b => format!("%{b:02X}"),
        })
        .collect()
}

fn cell(page: &mut String, report: &Report, here: &[&Row], scale: usize) {
    if here.is_empty() {
        page.push_str("<td class=\"empty\">not deployed</td>");
        return;
    }
    let worst = here.iter().flat_map(|r| &r.findings).map(|f| f.level).max().unwrap_or(Level::Allow);
    let _ = write!(
        page,
        "<td class=\"cell {}\" data-env=\"{}\" data-service=\"{}\">",
        level_class(worst),
        esc(&here[0].environment),
        esc(&here[0].service)
    );
    for r in here {
        image(page, report, r, scale);
    }
    page.push_str("</td>");
}

/// One image of a cell.
fn image(page: &mut String, report: &Report, r: &Row, scale: usize) {
    let links = &report.presentation.links;
    page.push_str("<div class=\"image\">");
    let _ =
        write!(page, "<div><span class=\"version\" title=\"{0}\">{1}</span>", esc(&r.image), esc(&version(&r.image)));
    match &r.commit {
        Some(c) => {
            let short = esc(c.short());
            match links.commit(&c.0) {
                Some(url) => {
                    let _ = write!(page, "<code class=\"sha\"><a href=\"{}\">{short}</a></code>", esc(&url));
                }
                None => {
                    let _ = write!(page, "<code class=\"sha\">{short}</code>");
                }
            }
        }
        None => page.push_str("<code class=\"sha\">unresolved</code>"),
    }
    page.push_str("</div>");
    let _ = write!(
        page,
        "<div class=\"counts\">{}{}</div>",
        count("behind", "↓", r.missing_count(), scale),
        count("ahead", "↑", r.drift_count(), scale)
    );
    let mut meta = vec![format!("{} replica{}", r.instances.len(), plural(r.instances.len()))];
    // The ledger knows when this state began (even without replica start times); else the
    // earliest replica's start says when it was deployed.
    match (&r.deployed, r.deployed_at(), report.presentation.generated_at) {
        (Some(d), _, _) => meta.push(format!("deployed {} (ledger)", d.age)),
        (None, Some(at), Some(now)) => meta.push(format!("deployed {} ago", super::age(at, now))),
        _ => {}
    }
    let via = crate::report::table::via(r);
    if !via.is_empty() && via != "-" {
        meta.push(format!("via {via}"));
    }
    let _ = write!(page, "<div class=\"meta\">{}</div>", esc(&meta.join(" · ")));
    let mut codes: Vec<(Level, &str)> =
        r.findings.iter().filter(|f| f.level > Level::Allow).map(|f| (f.level, f.code.as_str())).collect();
    codes.sort_by_key(|c| std::cmp::Reverse(c.0));
    codes.dedup();
    if codes.is_empty() {
        page.push_str("<ul class=\"cell-findings\"><li><span class=\"lvl ok\">✔ ok</span></li></ul>");
    } else {
        page.push_str("<ul class=\"cell-findings\">");
        for (level, code) in codes {
            let _ = write!(page, "<li>{} <code>{}</code></li>", badge(level), esc(code));
        }
        page.push_str("</ul>");
    }
    super::commits::details(page, r, links, false);
    page.push_str("</div>");
}

/// `↓ 3` with a bar on the matrix's scale, or `↓ ?` when unknown.
fn count(class: &str, arrow: &str, n: Option<usize>, scale: usize) -> String {
    let word = if class == "behind" { "behind" } else { "ahead" };
    let Some(n) = n else {
        return format!("<span class=\"count {class}\" title=\"unknown\">{arrow} ? {word}</span>");
    };
    const WIDTH: usize = 60;
    let fill = if n == 0 || scale == 0 { 0 } else { (n * WIDTH / scale).max(3) };
    format!(
        "<span class=\"count {class}\"><span class=\"n\">{arrow} {n}</span> {word} \
         <svg width=\"{WIDTH}\" height=\"8\" role=\"img\" aria-label=\"{n} of {scale}\">\
         <rect class=\"track\" width=\"{WIDTH}\" height=\"8\" rx=\"2\"/><rect class=\"fill\" width=\"{fill}\" height=\"8\" rx=\"2\"/></svg></span>"
    )
}

/// What a person calls the version: the image tag, else a short digest, else the reference.
pub(super) fn version(image: &str) -> String {
    let name = image.rsplit('/').next().unwrap_or(image);
    if let Some((_, digest)) = name.split_once('@') {
        return digest.trim_start_matches("sha256:").chars().take(12).collect();
    }
    match name.rsplit_once(':') {
        Some((_, tag)) => tag.to_string(),
        None => name.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_is_the_tag_or_a_short_digest() {
        assert_eq!(version("registry.example.com:5000/shop/api:1.4.1"), "1.4.1");
        assert_eq!(version("api@sha256:5e1f0c3a9d2b7e4f6a8c0b1d"), "5e1f0c3a9d2b");
        assert_eq!(version("registry.example.com:5000/shop/api"), "api");
    }

    #[test]
    fn bars_are_numbers_first() {
        let s = count("behind", "↓", Some(2), 4);
        assert!(s.contains("↓ 2</span> behind"), "{s}");
        assert!(s.contains("width=\"30\""), "{s}");
        assert!(count("ahead", "↑", None, 4).contains("↑ ? ahead"));
    }
}
