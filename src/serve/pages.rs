//! The dashboard's pages, from the last finished audit: the matrix (`/`), one environment
//! (`/env/NAME`) and one service (`/service/NAME`); from the ledger as last read, the
//! deployment timeline (`/timeline`) and the delivery metrics (`/metrics`). Each page says how old its result is,
//! and reloads itself every interval. Before the first audit has finished, every page says
//! so (503, with `Retry-After`). Pages pass the redaction layer like every other output.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use super::Latest;
use crate::judge::report::Report;
use crate::report::html::{self, Options};
use crate::report::View;

/// What the router answers: a status and an HTML body.
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
    /// Seconds, for `Retry-After` (the first audit is still running).
    pub retry_after: Option<u64>,
}

pub struct Pages {
    pub latest: Arc<RwLock<Latest>>,
    pub interval: Duration,
}

impl Pages {
    /// The page at `path` (already without its query).
    pub fn get(&self, path: &str) -> Answer {
        let Ok(latest) = self.latest.read() else {
            return self.message(500, "prodiff serve", "The dashboard's state is unavailable.", None);
        };
        let Some((report, finished, at)) = &latest.report else {
            let running = latest.running_since.map(|s| s.elapsed().as_secs()).unwrap_or(0);
            let mut text = format!("The first audit is running ({running} s so far); this page reloads itself.");
            if let Some((when, why)) = &latest.failure {
                text = format!(
                    "The first audit failed at {}: {why}. It is retried every interval.",
                    when.format("%H:%M:%S UTC")
                );
            }
            return self.message(503, "prodiff serve", &text, Some(2));
        };
        let mut options = Options {
            refresh: Some(self.interval.as_secs()),
            nav: nav(report, latest.ledger.is_some()),
            notice: Some(notice(finished.elapsed(), *at, latest.failure.as_ref(), latest.running_since.is_some())),
            ..Options::default()
        };
        let segments: Vec<&str> = path.trim_start_matches('/').splitn(2, '/').collect();
        match segments.as_slice() {
            [""] => {}
            ["timeline"] | ["metrics"] => return self.ledger_page(&latest, path, &options),
            ["env", name] => match decode(name) {
                Some(env) if report.results.iter().any(|r| r.environment == env) => options.environment = Some(env),
                _ => return self.not_found(path),
            },
            ["service", name] => match decode(name) {
                Some(s) if report.results.iter().any(|r| r.service == s) => options.service = Some(s),
                _ => return self.not_found(path),
            },
            _ => return self.not_found(path),
        }
        render(report, &options)
    }

    /// `/timeline` and `/metrics`, from the ledger as last read.
    fn ledger_page(&self, latest: &Latest, path: &str, options: &Options) -> Answer {
        let Some(view) = &latest.ledger else {
            let why = match &latest.ledger_failure {
                Some(e) => format!("The deployment ledger could not be read: {e}."),
                None => "No deployment ledger here yet: `prodiff record` or `prodiff watch` writes one \
                         (see --ledger and [ledger] in prodiff.toml)."
                    .to_string(),
            };
            return self.message(404, "No ledger", &why, None);
        };
        let mut options = options.clone();
        if let Some(e) = &latest.ledger_failure {
            options.notice = Some(format!("The latest ledger read failed ({e}); this is the previous one."));
        } else {
            options.notice = None;
        }
        let mut page = Vec::new();
        let drawn = if path.trim_end_matches('/') == "/timeline" {
            html::ledger::timeline_page(&view.spans, &view.promotion, view.window.1, &options, &mut page)
        } else {
            html::ledger::metrics_page(&view.metrics, &view.spans, view.window, &options, &mut page)
        };
        match drawn {
            Ok(()) => Answer { status: 200, body: redacted(&page), retry_after: None },
            Err(e) => {
                Answer { status: 500, body: redacted(format!("cannot render: {e}").as_bytes()), retry_after: None }
            }
        }
    }

    fn not_found(&self, path: &str) -> Answer {
        self.message(404, "Not found", &format!("Nothing at {path}. The matrix is at /."), None)
    }

    /// A short page of text.
    fn message(&self, status: u16, title: &str, text: &str, refresh: Option<u64>) -> Answer {
        let mut page = String::from("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
        if let Some(secs) = refresh {
            page.push_str(&format!("<meta http-equiv=\"refresh\" content=\"{secs}\">"));
        }
        page.push_str(&format!(
            "<title>{0}</title></head><body><h1>{0}</h1><p>{1}</p><p><a href=\"/\">The matrix</a></p></body></html>\n",
            html::esc(title),
            html::esc(text)
        ));
        Answer { status, body: redacted(page.as_bytes()), retry_after: refresh }
    }
}

fn render(report: &Report, options: &Options) -> Answer {
    let mut page = Vec::new();
    match html::render_page(report, View::Status, options, &mut page) {
        Ok(()) => Answer { status: 200, body: redacted(&page), retry_after: None },
        Err(e) => Answer { status: 500, body: redacted(format!("cannot render: {e}").as_bytes()), retry_after: None },
    }
}

/// Every byte a client gets passes the redaction layer.
fn redacted(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut w = crate::redact::Writer::new(&mut out);
    let written = std::io::Write::write_all(&mut w, bytes).and_then(|()| w.finish());
    match written {
        Ok(()) => out,
        Err(_) => b"cannot render the page".to_vec(),
    }
}

/// `Audit of 12:00:00 UTC, 14 s ago (every 60 s).`, plus what went wrong since.
fn notice(
    age: Duration,
    at: chrono::DateTime<chrono::Utc>,
    failure: Option<&(chrono::DateTime<chrono::Utc>, String)>,
    running: bool,
) -> String {
    let mut s = format!("Result of the audit that finished at {}, {} s ago.", at.format("%H:%M:%S UTC"), age.as_secs());
    if running {
        s.push_str(" A new audit is running.");
    }
    if let Some((when, why)) = failure {
        s.push_str(&format!(
            " The audit at {} failed ({why}); this is the previous result.",
            when.format("%H:%M:%S UTC")
        ));
    }
    s
}

/// The matrix, the ledger's pages when there is a ledger, then each environment and service.
fn nav(report: &Report, ledger: bool) -> Vec<(String, String)> {
    let mut nav = vec![("/".to_string(), "Matrix".to_string())];
    if ledger {
        nav.push(("/timeline".to_string(), "Timeline".to_string()));
        nav.push(("/metrics".to_string(), "Metrics".to_string()));
    }
    let mut seen: Vec<String> = Vec::new();
    for r in &report.results {
        let key = format!("env:{}", r.environment);
        if !seen.contains(&key) {
            nav.push((format!("/env/{}", html::path_segment(&r.environment)), r.environment.clone()));
            seen.push(key);
        }
    }
    for r in &report.results {
        let key = format!("service:{}", r.service);
        if !seen.contains(&key) {
            nav.push((format!("/service/{}", html::path_segment(&r.service)), r.service.clone()));
            seen.push(key);
        }
    }
    nav
}

/// A percent-encoded path segment, or None when it is not UTF-8 or has a bad escape.
fn decode(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::decode;

    #[test]
    fn path_segments_are_percent_decoded() {
        assert_eq!(decode("production").as_deref(), Some("production"));
        assert_eq!(decode("%3Cb%3E").as_deref(), Some("<b>"));
        assert_eq!(decode("%zz"), None);
        assert_eq!(decode("%"), None);
        assert_eq!(decode("%FF"), None);
    }
}
