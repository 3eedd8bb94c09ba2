//! Version stores: what a team records as "the version in production", per service, as a
//! file or a command's output. Either JSON (`{"api": "9f3c2e1…"}`, or Dockerflow-style
//! `{"api": {"commit": "…"}}`) or lines of `service sha` / `service=sha`. These name
//! commits directly; they are compared with what the other sources say.

use std::path::PathBuf;
use std::process::Command;

use super::SourceError;
use crate::model::{Code, Finding};

pub use crate::config::observe::VersionSource;

/// One service's commit as a version store reports it.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Reported {
    #[serde(skip)]
    pub environment: String,
    #[serde(skip)]
    pub service: String,
    /// As reported (a SHA, full or short).
    pub value: String,
    pub origin: String,
}

/// Reads a version store. A command that fails is `source-unreachable`; a file that
/// cannot be read or parsed is an error.
pub fn read(source: &VersionSource, environment: &str) -> Result<(Vec<Reported>, Vec<Finding>), SourceError> {
    let (text, origin) = match source {
        VersionSource::File(path) => (super::read_text(path)?, format!("version file {}", path.display())),
        VersionSource::Command { command, dir } => match run(command, dir) {
            Ok(text) => (text, format!("version command `{command}`")),
            Err(message) => {
                let mut f = Finding::new(Code::SourceUnreachable, format!("version command `{command}`: {message}"))
                    .key(command.clone());
                f.environment = Some(environment.to_string());
                return Ok((Vec::new(), vec![f]));
            }
        },
    };
    let pairs = parse(&text).map_err(|message| SourceError::Inconsistent { path: PathBuf::from(&origin), message })?;
    let reported = pairs
        .into_iter()
        .map(|(service, value)| Reported {
            environment: environment.to_string(),
            service,
            value,
            origin: origin.clone(),
        })
        .collect();
    Ok((reported, Vec::new()))
}

fn run(command: &str, dir: &std::path::Path) -> Result<String, String> {
    let out = Command::new("sh").arg("-c").arg(command).current_dir(dir).output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!("exited with {}: {}", out.status, String::from_utf8_lossy(&out.stderr).trim()));
    }
    String::from_utf8(out.stdout).map_err(|_| "printed something that is not UTF-8".to_string())
}

/// (service, sha) pairs from JSON or from lines.
pub fn parse(text: &str) -> Result<Vec<(String, String)>, String> {
    if text.trim_start().starts_with('{') {
        let v: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let map = v.as_object().ok_or("expected a JSON object of service -> commit")?;
        return map
            .iter()
            .map(|(service, v)| {
                let sha = v.as_str().or_else(|| v.get("commit").and_then(|c| c.as_str()));
                sha.map(|s| (service.clone(), s.trim().to_string()))
                    .ok_or_else(|| format!("{service}: expected a commit string or {{\"commit\": …}}"))
            })
            .collect();
    }
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|(i, l)| {
            let mut parts = l.splitn(2, |c: char| c == '=' || c.is_whitespace());
            match (parts.next(), parts.next().map(str::trim)) {
                (Some(s), Some(sha)) if !s.is_empty() && !sha.is_empty() => Ok((s.trim().to_string(), sha.to_string())),
                _ => Err(format!("line {}: expected `service sha` or `service=sha`, found {l:?}", i + 1)),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_dockerflow_and_lines() {
        assert_eq!(
            parse(r#"{"api": "abc1234", "web": {"commit": "def5678", "version": "1.0"}}"#).unwrap(),
            [("api".to_string(), "abc1234".to_string()), ("web".to_string(), "def5678".to_string())]
        );
        assert_eq!(
            parse("# deployed\napi abc1234\nweb=def5678\n").unwrap(),
            [("api".to_string(), "abc1234".to_string()), ("web".to_string(), "def5678".to_string())]
        );
        assert!(parse("api\n").unwrap_err().starts_with("line 1:"));
    }
}
