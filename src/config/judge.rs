//! The judge's section of prodiff.toml (`[policy]`): levels, lag and seasoning rules and
//! exceptions, as plain data. Config fills them in; `judge::policy` applies them.

use std::collections::BTreeMap;

use chrono::NaiveDate;

use crate::model::{Code, Level};

#[derive(Clone, Debug, Default)]
pub struct Policy {
    /// Levels that differ from each code's default.
    pub levels: BTreeMap<Code, Level>,
    pub lag: Vec<LagRule>,
    pub exceptions: Vec<Exception>,
    pub seasoning: Vec<SeasoningRule>,
}

/// A release may reach `environment` only after running in its predecessor for `min_days`.
#[derive(Clone, Debug, PartialEq)]
pub struct SeasoningRule {
    pub environment: String,
    pub min_days: i64,
    pub origin: String,
}

/// How far an environment may lag the mainline, or its predecessor in the promotion path.
#[derive(Clone, Debug, PartialEq)]
pub struct LagRule {
    /// `None`: every environment.
    pub environment: Option<String>,
    /// Against the predecessor in `promotion` instead of the mainline.
    pub predecessor: bool,
    pub max_commits: Option<usize>,
    pub max_days: Option<i64>,
    /// `prodiff.toml:12`, for messages.
    pub origin: String,
}

/// An accepted finding: matched by code and optionally environment, service and key.
#[derive(Clone, Debug, PartialEq)]
pub struct Exception {
    pub code: Code,
    pub environment: Option<String>,
    pub service: Option<String>,
    pub key: Option<String>,
    pub reason: String,
    pub expires: Option<NaiveDate>,
    pub origin: String,
}
