//! Stage 5, judge: takes the rows (deployments compared with history) and gives them their
//! verdict — the policy's levels, cross-checks between sources, the baseline's change.
//! It fills in the `Report` data (`report`), which the renderers only read.

pub mod baseline;
pub mod crosscheck;
pub mod policy;
pub mod report;
pub mod why;
