//! The command line, declared with clap's derive. Types only: `app` does the work.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::report::Format;

/// What runs in production, which commit is that, and how does it differ from master?
#[derive(Debug, Parser)]
#[command(name = "prodiff", version, about, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Global {
    /// The git repository the images were built from.
    #[arg(long, global = true, default_value = ".", value_name = "PATH")]
    pub repo: PathBuf,
    /// Config file [default: prodiff.toml in the repository root, if present].
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Inventory JSON listing what runs (`-` for stdin). Repeatable; adds to the config's sources.
    #[arg(long, global = true, value_name = "FILE")]
    pub inventory: Vec<PathBuf>,
    /// The mainline branch or ref [default: config, else origin/HEAD, main, master].
    #[arg(long, global = true, value_name = "REF")]
    pub mainline: Option<String>,
    /// Ask no registry: tag moves, deleted images and registry labels are then not checked
    /// (a `registry-not-checked` finding says which images).
    #[arg(long, global = true)]
    pub offline: bool,
    /// Output format.
    #[arg(long, global = true, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// One row per service and environment: image, commit, evidence, behind/ahead, findings.
    Status(StatusArgs),
    /// The exact commits between what runs in ENV and the mainline (or --against), both ways.
    Diff(DiffArgs),
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Only these environments (repeatable).
    #[arg(long = "env", value_name = "ENV")]
    pub environments: Vec<String>,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The environment to compare.
    pub environment: String,
    /// Only this service.
    #[arg(long, value_name = "SERVICE")]
    pub service: Option<String>,
    /// Compare with another environment (if one has that name) or any git ref, not the mainline.
    #[arg(long, value_name = "REF|ENV")]
    pub against: Option<String>,
}
