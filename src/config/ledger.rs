//! `[ledger]`: where the deployment ledger lives and how `metrics` judges a failure, as
//! plain data (the `ledger` stage acts on it), and the duration syntax (`7d`, `10m`) the
//! ledger's settings and flags share.

use std::path::PathBuf;

use regex::Regex;

/// `[ledger]`: where the deployment ledger lives and how `metrics` judges a failure.
#[derive(Debug, Clone)]
pub struct LedgerConfig {
    /// A SQLite file (relative to the config file).
    pub path: Option<PathBuf>,
    /// A PostgreSQL URL (its password is registered as a secret when read).
    pub url: Option<String>,
    /// A deployment followed within this many seconds by a fix counts as failed.
    pub fix_window: i64,
    /// What makes a follow-up deployment a fix: a shipped commit's subject matches this.
    pub fix_pattern: Regex,
}

/// The default `[ledger] fix_pattern`: fix, hotfix and revert (and their forms) as words.
pub const DEFAULT_FIX_PATTERN: &str = r"(?i)\b(fix|fixes|fixed|hotfix|revert|reverts)\b";

impl Default for LedgerConfig {
    fn default() -> LedgerConfig {
        LedgerConfig {
            path: None,
            url: None,
            fix_window: 86_400,
            fix_pattern: Regex::new(DEFAULT_FIX_PATTERN).expect("the default fix pattern compiles"),
        }
    }
}

/// `7d`, `90d`, `10m`, `24h`, `30s`, `2w` as seconds.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let bad = || format!("{s:?} is not a duration like 30s, 10m, 24h, 7d or 2w (units: s, m, h, d, w)");
    let n: i64 = match n.parse() {
        Ok(n) if n > 0 => n,
        _ => return Err(bad()),
    };
    let mult = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(bad()),
    };
    n.checked_mul(mult).ok_or_else(|| format!("{s:?} is too long a duration"))
}
