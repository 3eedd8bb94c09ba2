//! The dashboard's ledger pages: the deployment timeline (`/timeline`) and the DORA
//! metrics (`/metrics`), as inline SVG charts with the same facts as tables beside them.
//! Kinds of change are told by symbol and word (● deploy, ↺ rollback, ◆ changed,
//! ○ first seen), never by colour alone. Renders what the ledger gives; reads nothing.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, Write};

use super::{esc, plural, Options};
use crate::ledger::metrics::{Figure, Metrics};
use crate::ledger::{Kind, Span};

/// Lanes drawn at most on the timeline (the table lists everything).
const MAX_LANES: usize = 40;
/// Rows the timeline's table lists.
const MAX_ROWS: usize = 200;

/// `/timeline`: every environment/service a lane, every change a mark on it.
pub fn timeline_page(
    spans: &[Span],
    promotion: &[String],
    now: i64,
    options: &Options,
    out: &mut dyn Write,
) -> io::Result<()> {
    let mut page = String::new();
    super::open(&mut page, "prodiff: deployment timeline", options);
    if spans.is_empty() {
        page.push_str("<p id=\"empty\">The ledger has no deployments yet: <code>prodiff record</code> or <code>prodiff watch</code> write them.</p>");
    } else {
        let _ = write!(
            page,
            "<section id=\"summary\"><p>{} change{} in the ledger, from {} to {}.</p></section>",
            spans.len(),
            plural(spans.len()),
            esc(&crate::ledger::minute(spans.iter().map(Span::at).min().unwrap_or(now))),
            esc(&crate::ledger::minute(now))
        );
        timeline_svg(&mut page, spans, promotion, now);
        timeline_table(&mut page, spans);
    }
    super::close(&mut page);
    out.write_all(page.as_bytes())
}

fn symbol(kind: Kind) -> (&'static str, &'static str) {
    match kind {
        Kind::Deploy => ("●", "deploy"),
        Kind::Rollback => ("↺", "rollback"),
        Kind::Changed => ("◆", "changed"),
        Kind::FirstSeen => ("○", "first seen"),
    }
}

/// Lanes in promotion order, then by name.
fn lanes<'a>(spans: &'a [Span], promotion: &[String]) -> Vec<((&'a str, &'a str), Vec<&'a Span>)> {
    let mut by: BTreeMap<(usize, &str, &str), Vec<&Span>> = BTreeMap::new();
    for s in spans {
        let rank = promotion.iter().position(|p| p == &s.environment).unwrap_or(usize::MAX);
        by.entry((rank, s.environment.as_str(), s.service.as_str())).or_default().push(s);
    }
    by.into_iter()
        .map(|((_, e, s), mut list)| {
            list.sort_by_key(|s| s.at());
            ((e, s), list)
        })
        .collect()
}

fn timeline_svg(page: &mut String, spans: &[Span], promotion: &[String], now: i64) {
    let lanes = lanes(spans, promotion);
    let shown = &lanes[..lanes.len().min(MAX_LANES)];
    let start = spans.iter().map(Span::at).min().unwrap_or(now);
    let (left, width, lane_h) = (190, 1000, 30);
    let height = 40 + lane_h * shown.len() as i64 + 30;
    let span = (now - start).max(3600);
    let x = |t: i64| left + (t - start).clamp(0, span) * width / span;
    let _ = write!(
        page,
        "<section id=\"timeline\" class=\"stream\"><h2>Timeline</h2><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{height}\" \
         viewBox=\"0 0 {w} {height}\" role=\"img\" aria-labelledby=\"timeline-title\"><title id=\"timeline-title\">Deployments per environment and service over time</title>",
        w = left + width + 30
    );
    for (i, ((env, service), list)) in shown.iter().enumerate() {
        let y = 40 + lane_h * i as i64;
        let _ = write!(
            page,
            "<text class=\"label\" x=\"8\" y=\"{}\">{}/{}</text><line x1=\"{left}\" x2=\"{}\" y1=\"{y}\" y2=\"{y}\" stroke=\"#d0d4d9\"/>",
            y + 4,
            esc(env),
            esc(service),
            left + width
        );
        for (j, s) in list.iter().enumerate() {
            // The state held from its change to the next one (or now).
            let end = list.get(j + 1).map(|n| n.at()).unwrap_or(now);
            let _ = write!(
                page,
                "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"10\" fill=\"#e3e9f2\"/>",
                x(s.at()),
                y - 5,
                (x(end) - x(s.at())).max(1)
            );
        }
        for s in list {
            let (mark, word) = symbol(s.change.kind);
            let label: Vec<String> = s.parts.iter().map(|p| p.label()).collect();
            let _ = write!(
                page,
                "<text class=\"mark {word}\" x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"15\">{mark}<title>{}/{} {word} {} at {}: {} shipped, {} removed</title></text>",
                x(s.at()),
                y + 5,
                esc(env),
                esc(service),
                esc(&label.join(", ")),
                esc(&crate::ledger::minute(s.at())),
                s.change.shipped.len(),
                s.change.removed.len()
            );
        }
    }
    let _ = write!(
        page,
        "<text class=\"sub\" x=\"{left}\" y=\"{0}\">{1}</text><text class=\"sub\" x=\"{2}\" y=\"{0}\" text-anchor=\"end\">{3} (now)</text></svg>",
        height - 8,
        esc(&crate::ledger::minute(start)),
        left + width,
        esc(&crate::ledger::minute(now))
    );
    page.push_str("<p class=\"meta\">● deploy · ↺ rollback · ◆ changed (same commits, other images) · ○ first seen; the band is how long each state ran.</p>");
    if lanes.len() > shown.len() {
        let _ = write!(page, "<p class=\"meta\">{} more lanes are in the table only.</p>", lanes.len() - shown.len());
    }
    page.push_str("</section>\n");
}

fn timeline_table(page: &mut String, spans: &[Span]) {
    let mut newest: Vec<&Span> = spans.iter().collect();
    newest.sort_by_key(|s| std::cmp::Reverse(s.at()));
    page.push_str(
        "<section id=\"changes\"><h2>Changes, newest first</h2><table class=\"findings\"><thead><tr><th>When</th>\
         <th>Where</th><th>What</th><th>From</th><th>To</th><th>Shipped</th><th>Removed</th><th>Tickets</th></tr></thead><tbody>",
    );
    for s in newest.iter().take(MAX_ROWS) {
        let (mark, word) = symbol(s.change.kind);
        let when = match (s.started_at, s.prev_seen) {
            (Some(t), _) => crate::ledger::minute(t),
            (None, Some(after)) => {
                format!("between {} and {}", crate::ledger::minute(after), crate::ledger::minute(s.first_seen))
            }
            (None, None) => format!("by {}", crate::ledger::minute(s.first_seen)),
        };
        let labels = |parts: &[crate::ledger::Part]| parts.iter().map(|p| p.label()).collect::<Vec<_>>().join(", ");
        let from = s.change.from.as_deref().map(labels).unwrap_or_else(|| "–".into());
        let _ = write!(
            page,
            "<tr class=\"{word}\"><td>{}</td><td>{}/{}</td><td>{mark} {word}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&when),
            esc(&s.environment),
            esc(&s.service),
            esc(&from),
            esc(&labels(&s.parts)),
            s.change.shipped.len(),
            s.change.removed.len(),
            esc(&s.change.tickets.join(", "))
        );
    }
    page.push_str("</tbody></table>");
    if newest.len() > MAX_ROWS {
        let _ = write!(
            page,
            "<p class=\"meta\">{} older changes: <code>prodiff log</code> lists them all.</p>",
            newest.len() - MAX_ROWS
        );
    }
    page.push_str("</section>\n");
}

/// `/metrics`: the four keys per environment, with their samples and bands, and
/// deployments per day. `metrics` is (environment, its figures), in promotion order.
pub fn metrics_page(
    metrics: &[(String, Metrics)],
    spans: &[Span],
    window: (i64, i64),
    options: &Options,
    out: &mut dyn Write,
) -> io::Result<()> {
    let mut page = String::new();
    super::open(&mut page, "prodiff: delivery metrics", options);
    let (from, to) = window;
    let _ = write!(
        page,
        "<section id=\"summary\"><p>From {} to {}, as the ledger saw it run.</p></section>",
        esc(&crate::ledger::minute(from)),
        esc(&crate::ledger::minute(to))
    );
    if metrics.is_empty() {
        page.push_str("<p id=\"empty\">No deployment in this window.</p>");
    }
    for (env, m) in metrics {
        figures(&mut page, env, m);
    }
    per_day(&mut page, spans, from, to);
    super::close(&mut page);
    out.write_all(page.as_bytes())
}

fn figures(page: &mut String, env: &str, m: &Metrics) {
    let _ = write!(
        page,
        "<section class=\"figures\" data-env=\"{0}\"><h2>{0}: the four keys</h2><p>{1} deployment{2}.</p>\
         <table class=\"findings\"><thead><tr><th>Figure</th><th>Value</th><th>90th percentile</th><th>Band</th><th>Stands on</th></tr></thead><tbody>",
        esc(env),
        m.deployments,
        plural(m.deployments)
    );
    for f in &m.figures {
        let _ = write!(
            page,
            "<tr><td>{}</td><td><strong>{}</strong></td><td>{}</td><td>{}</td><td>{} {}</td></tr>",
            esc(f.name),
            esc(&value(f, f.value)),
            esc(&f.p90.map(|_| value(f, f.p90)).unwrap_or_else(|| "–".into())),
            esc(f.band.unwrap_or("no sample")),
            f.sample,
            esc(f.sample_of)
        );
    }
    page.push_str("</tbody></table></section>\n");
}

fn value(f: &Figure, v: Option<f64>) -> String {
    match (v, f.unit) {
        (None, _) => "no sample".into(),
        (Some(v), "seconds") => crate::ledger::human(v as i64),
        (Some(v), "percent") => format!("{v:.1}%"),
        (Some(v), unit) => format!("{v:.2} {unit}"),
    }
}

/// Deployments and rollbacks per day, as bars with their numbers.
fn per_day(page: &mut String, spans: &[Span], from: i64, to: i64) {
    const DAY: i64 = 86_400;
    // Calendar days (UTC), the last 90 at most.
    let last = to.div_euclid(DAY);
    let days = (last - from.div_euclid(DAY) + 1).clamp(1, 90) as usize;
    let first_day = last - days as i64 + 1;
    let mut counts = vec![(0usize, 0usize); days];
    for s in spans.iter().filter(|s| s.at() >= from && s.at() <= to) {
        let Ok(i) = usize::try_from(s.at().div_euclid(DAY) - first_day) else { continue };
        let Some(c) = counts.get_mut(i) else { continue };
        match s.change.kind {
            Kind::Deploy => c.0 += 1,
            Kind::Rollback => c.1 += 1,
            _ => {}
        }
    }
    let top = counts.iter().map(|(d, r)| d + r).max().unwrap_or(0).max(1);
    // At least 600 pixels of bars, at most 40 a day.
    let (gap, h, top_pad) = (4usize, 120usize, 20usize);
    let bar = (600 / days).clamp(8, 40) - gap;
    let width = 50 + days * (bar + gap);
    let _ = write!(
        page,
        "<section id=\"per-day\" class=\"stream\"><h2>Deployments per day</h2><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{}\" \
         role=\"img\" aria-labelledby=\"per-day-title\"><title id=\"per-day-title\">Deployments and rollbacks per day, last {days} day{}</title>",
        top_pad + h + 30,
        plural(days)
    );
    for (i, (d, r)) in counts.iter().enumerate() {
        let x = 40 + i * (bar + gap);
        let dh = d * h / top;
        let rh = r * h / top;
        let day = crate::ledger::minute((first_day + i as i64) * DAY);
        let _ = write!(
            page,
            "<g><title>{}: {d} deployment{}, {r} rollback{}</title><rect x=\"{x}\" y=\"{}\" width=\"{bar}\" height=\"{dh}\" fill=\"#4a6fa5\"/>\
             <rect x=\"{x}\" y=\"{}\" width=\"{bar}\" height=\"{rh}\" fill=\"#8e3b9e\" stroke=\"#fff\" stroke-dasharray=\"2 2\"/>",
            esc(day.get(..10).unwrap_or(&day)),
            plural(*d),
            plural(*r),
            top_pad + h - dh,
            top_pad + h - dh - rh
        );
        if d + r > 0 {
            let _ = write!(
                page,
                "<text class=\"sub\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
                x + bar / 2,
                top_pad + h - dh - rh - 4,
                d + r
            );
        }
        page.push_str("</g>");
    }
    let _ = writeln!(
        page,
        "<line x1=\"36\" x2=\"{width}\" y1=\"{0}\" y2=\"{0}\" stroke=\"#55606c\"/><text class=\"sub\" x=\"40\" y=\"{1}\">{2}</text>\
         <text class=\"sub\" x=\"{width}\" y=\"{1}\" text-anchor=\"end\">{3}</text></svg>\
         <p class=\"meta\">Solid bars: deployments; dashed on top: rollbacks. The number over a bar is both together.</p></section>",
        top_pad + h,
        top_pad + h + 20,
        esc(crate::ledger::minute(first_day * DAY).get(..10).unwrap_or("")),
        esc(crate::ledger::minute(to).get(..10).unwrap_or(""))
    );
}
