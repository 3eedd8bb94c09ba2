//! The ledger's renderers: its answers (`log`, `when`, `metrics`, what `record` did) as a table,
//! JSON or markdown, into any writer. Times are UTC; an inexact time is shown as its
//! bounds ("between A and B"), never as a made-up instant.

use std::io::{self, Write};

use serde_json::{json, Value};

use super::Format;
use crate::ledger::metrics::{Figure, Metrics};
use crate::ledger::query::When;
use crate::ledger::{human, minute, time, Kind, Part, Span};

/// `2026-01-02 10:05`, `between 2026-01-02 10:00 and 11:00`, `first seen 2026-01-02 10:00`.
pub fn when_text(exact: Option<i64>, after: Option<i64>, by: i64) -> String {
    match (exact, after) {
        (Some(t), _) => minute(t),
        (None, Some(a)) => {
            let (a, b) = (minute(a), minute(by));
            match (a.split_once(' '), b.split_once(' ')) {
                (Some((da, _)), Some((db, tb))) if da == db => format!("between {a} and {tb}"),
                _ => format!("between {a} and {b}"),
            }
        }
        (None, None) => format!("by {}", minute(by)),
    }
}

fn parts_text(parts: &[Part]) -> String {
    let mut labels: Vec<String> = parts
        .iter()
        .map(|p| if p.replicas > 1 { format!("{} ×{}", p.label(), p.replicas) } else { p.label() })
        .collect();
    labels.sort();
    labels.dedup();
    labels.join(" + ")
}

fn from_to(s: &Span) -> String {
    match &s.change.from {
        None => format!("? → {}", parts_text(&s.parts)),
        Some(f) => format!("{} → {}", parts_text(f), parts_text(&s.parts)),
    }
}

fn commits_text(s: &Span) -> String {
    let (a, r) = (s.change.shipped.len(), s.change.removed.len());
    match (a, r) {
        (0, 0) => "-".into(),
        (a, 0) => format!("+{a}"),
        (0, r) => format!("-{r}"),
        (a, r) => format!("+{a} -{r}"),
    }
}

/// Aligned columns, two spaces apart, no trailing blanks.
fn table(out: &mut dyn Write, rows: &[Vec<String>]) -> io::Result<()> {
    let widths: Vec<usize> = (0..rows.first().map_or(0, Vec::len))
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    for r in rows {
        let mut line = String::new();
        for (i, cell) in r.iter().enumerate() {
            line.push_str(cell);
            if i + 1 < r.len() {
                line.push_str(&" ".repeat(widths[i] - cell.chars().count() + 2));
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

fn markdown(out: &mut dyn Write, rows: &[Vec<String>]) -> io::Result<()> {
    for (i, r) in rows.iter().enumerate() {
        let cells: Vec<String> = r.iter().map(|c| c.replace('|', "\\|")).collect();
        writeln!(out, "| {} |", cells.join(" | "))?;
        if i == 0 {
            writeln!(out, "|{}", " --- |".repeat(r.len()))?;
        }
    }
    Ok(())
}

fn rows_in(format: Format, out: &mut dyn Write, rows: &[Vec<String>]) -> io::Result<()> {
    match format {
        Format::Markdown => markdown(out, rows),
        _ => table(out, rows),
    }
}

fn json_out(out: &mut dyn Write, v: &Value) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, v)?;
    writeln!(out)
}

fn rfc(t: i64) -> Value {
    Value::from(time(t).to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

fn opt_rfc(t: Option<i64>) -> Value {
    t.map(rfc).unwrap_or(Value::Null)
}

/// `prodiff log`.
pub fn log(spans: &[Span], format: Format, out: &mut dyn Write) -> io::Result<()> {
    if format == Format::Json {
        let events: Vec<Value> = spans
            .iter()
            .map(|s| {
                json!({
                    "environment": s.environment, "service": s.service, "kind": s.change.kind.as_str(),
                    "exact": opt_rfc(s.started_at), "after": opt_rfc(s.prev_seen), "by": rfc(s.first_seen),
                    "last_seen": rfc(s.last_seen),
                    "from": s.change.from, "to": s.parts,
                    "shipped": s.change.shipped, "removed": s.change.removed, "tickets": s.change.tickets,
                    "rollback": s.change.kind == Kind::Rollback,
                })
            })
            .collect();
        return json_out(out, &json!({"schema_version": 1, "command": "log", "deployments": events}));
    }
    if spans.is_empty() {
        return writeln!(out, "no deployments recorded in that window");
    }
    let mut rows = vec![["WHEN", "ENVIRONMENT", "SERVICE", "CHANGE", "FROM → TO", "COMMITS", "TICKETS"]
        .map(String::from)
        .to_vec()];
    for s in spans {
        let kind = match s.change.kind {
            Kind::Rollback => "ROLLBACK".to_string(),
            k => k.as_str().to_string(),
        };
        let tickets = if s.change.tickets.is_empty() { "-".into() } else { s.change.tickets.join(",") };
        rows.push(vec![
            when_text(s.started_at, s.prev_seen, s.first_seen),
            s.environment.clone(),
            s.service.clone(),
            kind,
            from_to(s),
            commits_text(s),
            tickets,
        ]);
    }
    rows_in(format, out, &rows)
}

/// When the asked change reached the mainline: the first-parent mainline commit that
/// brought its latest commit in, and that commit's committer time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reached {
    /// The mainline's name (`main`).
    pub mainline: String,
    /// The first-parent commit (a merge, or the commit itself when committed there).
    pub via: String,
    pub at: i64,
}

/// Lead time from reaching the mainline to a first run: seconds (negative: it ran before
/// the mainline had it, as a hotfix does), none without a mainline time.
fn from_mainline(reached: Option<&Reached>, exact: Option<i64>, by: i64) -> Option<i64> {
    reached.map(|r| exact.unwrap_or(by) - r.at)
}

fn from_mainline_text(d: Option<i64>, exact: bool) -> String {
    match d {
        None => "-".to_string(),
        Some(d) if d < 0 => "before it reached it".to_string(),
        Some(d) if exact => human(d),
        Some(d) => format!("at most {}", human(d)),
    }
}

/// `prodiff when`.
pub fn when(
    query: &str,
    commits: &[String],
    answers: &[When],
    reached: Option<&Reached>,
    format: Format,
    out: &mut dyn Write,
) -> io::Result<()> {
    if format == Format::Json {
        let list: Vec<Value> = answers
            .iter()
            .map(|a| {
                let first = a.first.as_ref().map(|f| {
                    json!({"exact": opt_rfc(f.exact), "after": opt_rfc(f.after), "by": rfc(f.by), "how": f.how,
                           "lead_time_seconds": f.lead_time, "method": f.method,
                           "from_mainline_seconds": from_mainline(reached, f.exact, f.by)})
                });
                json!({"environment": a.environment, "service": a.service, "first": first, "still_runs": a.still_runs})
            })
            .collect();
        return json_out(
            out,
            &json!({"schema_version": 1, "command": "when", "query": query, "commits": commits,
                    "mainline": reached.map(|r| json!({"name": r.mainline, "via": r.via, "at": rfc(r.at),
                        "method": MAINLINE_METHOD})),
                    "answers": list}),
        );
    }
    let short: Vec<&str> = commits.iter().map(|c| &c[..c.len().min(10)]).collect();
    writeln!(out, "{query}: {}", short.join(", "))?;
    writeln!(out)?;
    let mut rows = vec![["ENVIRONMENT", "SERVICE", "FIRST RAN", "HOW", "STILL RUNS", "LEAD TIME", "FROM MAINLINE"]
        .map(String::from)
        .to_vec()];
    let mut methods = Vec::new();
    for a in answers {
        let (at, how, lead, main) = match &a.first {
            None => ("never seen running".to_string(), "-".to_string(), "-".to_string(), "-".to_string()),
            Some(f) => {
                if !methods.contains(&f.method) {
                    methods.push(f.method.clone());
                }
                let lead = match (f.lead_time, f.exact) {
                    (None, _) => "-".to_string(),
                    (Some(t), Some(_)) => human(t),
                    (Some(t), None) => format!("at most {}", human(t)),
                };
                let main = from_mainline_text(from_mainline(reached, f.exact, f.by), f.exact.is_some());
                (when_text(f.exact, f.after, f.by), f.how.clone(), lead, main)
            }
        };
        rows.push(vec![a.environment.clone(), a.service.clone(), at, how, a.still_runs.to_string(), lead, main]);
    }
    rows_in(format, out, &rows)?;
    writeln!(out)?;
    if !methods.is_empty() {
        writeln!(out, "Lead time: {}.", methods.join("; "))?;
    }
    match reached {
        Some(r) => writeln!(
            out,
            "From mainline: {} had it at {} UTC ({}); {MAINLINE_METHOD}, to the same first run.",
            r.mainline,
            minute(r.at),
            &r.via[..r.via.len().min(10)]
        )?,
        None => writeln!(out, "From mainline: the mainline does not have it.")?,
    }
    Ok(())
}

/// How `when` dates a change's arrival on the mainline.
const MAINLINE_METHOD: &str =
    "the committer time of the first-parent mainline commit that brought its latest commit in (a merge, or the commit itself)";

fn figure_value(f: &Figure) -> String {
    let Some(v) = f.value else { return "no data".into() };
    match f.unit {
        "per day" => format!("{v:.2} per day"),
        "percent" => format!("{v:.1}%"),
        _ => match f.p90 {
            Some(p) => format!("median {}, p90 {}", human(v as i64), human(p as i64)),
            None => human(v as i64),
        },
    }
}

/// `prodiff metrics`.
pub fn metrics(m: &Metrics, env: Option<&str>, format: Format, out: &mut dyn Write) -> io::Result<()> {
    if format == Format::Json {
        return json_out(
            out,
            &json!({"schema_version": 1, "command": "metrics", "environment": env, "from": rfc(m.from), "to": rfc(m.to),
                    "deployments": m.deployments, "figures": m.figures}),
        );
    }
    writeln!(
        out,
        "{} from {} to {} ({} deployment(s))",
        env.map(|e| format!("environment {e}")).unwrap_or_else(|| "all environments".into()),
        minute(m.from),
        minute(m.to),
        m.deployments
    )?;
    writeln!(out)?;
    let mut rows = vec![["METRIC", "VALUE", "SAMPLE", "DORA BAND"].map(String::from).to_vec()];
    for f in &m.figures {
        rows.push(vec![
            f.name.to_string(),
            figure_value(f),
            format!("{} {}", f.sample, if f.sample == 1 { f.sample_of.trim_end_matches('s') } else { f.sample_of }),
            f.band.unwrap_or("-").to_string(),
        ]);
    }
    rows_in(format, out, &rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lead_time_from_the_mainline_says_when_it_ran_first() {
        let r = Reached { mainline: "main".into(), via: "a".repeat(40), at: 1_000 };
        assert_eq!(from_mainline(Some(&r), Some(4_600), 9_000), Some(3_600));
        assert_eq!(from_mainline(Some(&r), None, 8_200), Some(7_200));
        assert_eq!(from_mainline(None, Some(4_600), 9_000), None);
        assert_eq!(from_mainline_text(Some(3_600), true), "1h");
        assert_eq!(from_mainline_text(Some(7_200), false), "at most 2h");
        // A hotfix deployed from a release branch before main got it.
        assert_eq!(from_mainline_text(Some(-60), true), "before it reached it");
        assert_eq!(from_mainline_text(None, true), "-");
    }

    #[test]
    fn bounds_on_one_day_name_the_day_once() {
        assert_eq!(when_text(None, Some(1_767_348_000), 1_767_351_600), "between 2026-01-02 10:00 and 11:00");
        assert_eq!(when_text(Some(1_767_348_300), Some(1_767_348_000), 1_767_351_600), "2026-01-02 10:05");
        assert_eq!(when_text(None, None, 1_767_348_000), "by 2026-01-02 10:00");
    }
}
