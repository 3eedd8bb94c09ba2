//! The command line, declared with clap's derive. Types only: `commands` does the work.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::model::Code;
use crate::report::Format;

/// `prodiff 0.1.0 (5d09a04506)`: the version and the commit it was built from.
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("PRODIFF_BUILD_COMMIT"), ")");

/// Examples, the exit-code contract and the environment, after `--help` (and in the man page).
pub const AFTER_HELP: &str = "\
Examples:
  prodiff status --inventory inventory.json       what runs, which commit, how far behind
  prodiff diff production --service api           the exact commits, both ways
  prodiff check --format github --baseline b.json the CI gate
  prodiff contains SHOP-123 --env production      is it deployed?
  prodiff why SHOP-123                            why not, and what has to happen?
  prodiff plan production --to v1.5.0             what would this deploy change?
  prodiff rollback production --exclude SHOP-120  which older release is safe?
  prodiff init                                    write a commented prodiff.toml
  prodiff watch --every 10m                       keep the deployment ledger (record in a loop)
  prodiff log production --since 7d               what changed in production this week
  prodiff when SHOP-120                           when did it reach each environment?
  prodiff metrics --env production                DORA metrics from what was seen running
  prodiff publish --dry-run                       what would be sent to the [publish] targets

Exit codes (every command):
  0  everything observed, nothing denied (contains: deployed everywhere asked)
  1  a finding is denied (contains: deployed nowhere asked)
  2  usage or configuration error (bad flags, invalid config or inventory, not a git
     repository, unknown environment or service, init refusing to overwrite)
  3  nothing denied, but something could not be observed (shallow clone, unreachable
     source or registry); --allow-incomplete makes it 0
  4  contains and why only: deployed in some of the asked places, not all

Environment:
  PRODIFF_NOW             pin \"now\" (RFC 3339) for lag and expiry rules and ledger times
  PRODIFF_LEDGER          the deployment ledger: a SQLite file or a postgres:// URL
  PRODIFF_KUBECTL         the kubectl to run [default: kubectl on PATH]
  PRODIFF_CACHE_DIR       registry cache [default: $XDG_CACHE_HOME/prodiff, ~/.cache/prodiff]
  PRODIFF_DOCKER_TIMEOUT  seconds per Docker API request [default: 10]
  DOCKER_HOST, DOCKER_CONFIG  the Docker daemon and the registry credentials, as for docker
  RUST_LOG                diagnostics filter (e.g. prodiff=debug); -v and -vv are shortcuts
  NO_COLOR                no colour in tables
  GITHUB_STEP_SUMMARY     with --format github: the job summary is appended there";

/// What runs in production, which commit is that, and how does it differ from master?
#[derive(Debug, Parser)]
#[command(name = "prodiff", version = VERSION, about, max_term_width = 100, after_long_help = AFTER_HELP,
    after_help = "Examples, exit codes and environment variables: prodiff --help")]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Global {
    /// The git repository the images were built from [default: .]. A fleet config whose
    /// services all name their `repo` needs none.
    #[arg(long, global = true, value_name = "PATH")]
    pub repo: Option<PathBuf>,
    /// Config file [default: prodiff.toml in the repository root, if present].
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Audit every git clone directly under DIR too: images are matched to a clone by
    /// their `org.opencontainers.image.source` label (or a revision label found there).
    #[arg(long, global = true, value_name = "DIR")]
    pub repos_dir: Option<PathBuf>,
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
    /// Colour in tables: auto (a terminal without NO_COLOR), always or never.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    /// Deny this finding code for this run (repeatable); overrides prodiff.toml.
    #[arg(long, global = true, value_name = "CODE", value_parser = parse_code)]
    pub deny: Vec<Code>,
    /// Only warn about this finding code for this run (repeatable).
    #[arg(long, global = true, value_name = "CODE", value_parser = parse_code)]
    pub warn: Vec<Code>,
    /// Allow this finding code for this run (repeatable).
    #[arg(long, global = true, value_name = "CODE", value_parser = parse_code)]
    pub allow: Vec<Code>,
    /// Exit 0 instead of 3 when nothing is denied but something could not be observed.
    #[arg(long, global = true)]
    pub allow_incomplete: bool,
    /// Say on stderr what is being done and waited on (-v: hosts, registries; -vv: every
    /// request). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// The deployment ledger: a SQLite file or a postgres:// URL [default: [ledger] in
    /// prodiff.toml, else $XDG_DATA_HOME/prodiff/REPO-HASH.db].
    #[arg(long, global = true, value_name = "FILE|URL", env = "PRODIFF_LEDGER", hide_env_values = true)]
    pub ledger: Option<String>,
}

impl Global {
    /// `--repo`, or the current directory.
    pub fn repo(&self) -> &std::path::Path {
        self.repo.as_deref().unwrap_or(std::path::Path::new("."))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

fn parse_code(s: &str) -> Result<Code, String> {
    Code::parse(s).ok_or_else(|| {
        let all: Vec<&str> = Code::ALL.iter().map(|c| c.as_str()).collect();
        format!("unknown finding code (known: {})", all.join(", "))
    })
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// One row per service and environment: image, commit, evidence, behind/ahead, findings.
    Status(StatusArgs),
    /// The exact commits between what runs in ENV and the mainline (or --against), both ways.
    Diff(DiffArgs),
    /// The CI gate: the status, judged by the policy; fails (exit 1) only on denied findings.
    Check(CheckArgs),
    /// Write the current state as JSON, to use later as `check --baseline`.
    Snapshot(SnapshotArgs),
    /// What deploying TARGET to ENV would change: commits, tickets, files, risky paths.
    Plan(PlanArgs),
    /// Earlier releases ENV could roll back to, newest first, and the one to pick.
    Rollback(RollbackArgs),
    /// Is a commit or ticket deployed? Per service and environment. Exit 0 yes, 1 no, 4 partly.
    #[command(visible_alias = "is-deployed")]
    Contains(ContainsArgs),
    /// Why a commit or ticket is not (yet) in an environment: the chain from the change to
    /// each environment (repository, mainline, release, image, promotion path, seasoning,
    /// blockers), the first link that breaks, and what to do next. Exit codes as `contains`.
    Why(WhyArgs),
    /// Write a commented prodiff.toml from what is detected here: git tag scheme, Docker
    /// containers and contexts, Kubernetes contexts, image repositories.
    Init(InitArgs),
    /// Print a shell completion script: `prodiff completions bash > /etc/bash_completion.d/prodiff`.
    Completions(CompletionsArgs),
    /// Print the man page (roff): `prodiff man > prodiff.1; man ./prodiff.1`.
    Man,
    /// A live dashboard: the HTML matrix, re-audited every --interval seconds, on
    /// http://127.0.0.1:7878/ (pages /, /env/NAME, /service/NAME; /timeline and /metrics
    /// from the ledger). Read-only: GET and HEAD.
    Serve(ServeArgs),
    /// Audit like `status` and add what changed to the deployment ledger (or backfill it
    /// from snapshot files with --import).
    Record(RecordArgs),
    /// `record` every --every until SIGINT/SIGTERM; a failing cycle is logged, the loop goes on.
    Watch(WatchArgs),
    /// The deployments the ledger saw, newest first: when, from → to, commits, tickets.
    Log(LogArgs),
    /// When each environment first ran a commit or ticket (directly or as a cherry-pick),
    /// whether it still does, and the lead time.
    When(WhenArgs),
    /// The four DORA keys from the ledger, with sample sizes and performance bands.
    Metrics(MetricsArgs),
    /// Send the ledger's deployment events to the `[publish]` targets (each at most once it
    /// acknowledged; failures are retried with backoff). `record` and `watch` do this too.
    Publish(PublishArgs),
}

#[derive(Debug, Args)]
pub struct PublishArgs {
    /// Only events first seen within this long before now: 7d, 24h.
    #[arg(long, value_name = "DURATION")]
    pub since: Option<String>,
    /// Print exactly what would be sent (method, URL, headers, body), send nothing, store nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (`IP` or `IP:PORT`). Anything but loopback needs --allow-remote.
    #[arg(long, default_value = "127.0.0.1", value_name = "ADDR")]
    pub bind: String,
    /// Port, unless --bind names one (0: any free port, printed on stderr).
    #[arg(long, default_value_t = 7878)]
    pub port: u16,
    /// Allow --bind to a non-loopback address (other hosts can then read the dashboard).
    #[arg(long)]
    pub allow_remote: bool,
    /// Require `Authorization: Bearer TOKEN`, with TOKEN read from this environment variable.
    #[arg(long, value_name = "VAR")]
    pub token_env: Option<String>,
    /// Seconds between audits; pages reload themselves as often.
    #[arg(long, default_value_t = 60, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub interval: u64,
    /// Only these environments (repeatable).
    #[arg(long = "env", value_name = "ENV")]
    pub environments: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RecordArgs {
    /// Backfill from these `prodiff snapshot` files instead of auditing now (in time order).
    #[arg(long, value_name = "SNAPSHOT.json", num_args = 1..)]
    pub import: Vec<PathBuf>,
    /// Only these environments (repeatable).
    #[arg(long = "env", value_name = "ENV")]
    pub environments: Vec<String>,
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Time between cycles: 30s, 10m, 1h.
    #[arg(long, value_name = "DURATION", default_value = "10m")]
    pub every: String,
    /// Only these environments (repeatable).
    #[arg(long = "env", value_name = "ENV")]
    pub environments: Vec<String>,
}

#[derive(Debug, Args)]
pub struct LogArgs {
    /// Only this environment.
    pub environment: Option<String>,
    /// Only this service.
    #[arg(long, value_name = "SERVICE")]
    pub service: Option<String>,
    /// Only deployments first seen within this long before now: 7d, 24h.
    #[arg(long, value_name = "DURATION")]
    pub since: Option<String>,
}

#[derive(Debug, Args)]
pub struct WhenArgs {
    /// A commit SHA (full or abbreviated) or a ticket key (SHOP-123, #42).
    #[arg(value_name = "COMMIT|TICKET")]
    pub item: String,
}

#[derive(Debug, Args)]
pub struct MetricsArgs {
    /// Only this environment (production, usually).
    #[arg(long = "env", value_name = "ENV")]
    pub environment: Option<String>,
    /// The window, back from now.
    #[arg(long, value_name = "DURATION", default_value = "90d")]
    pub since: String,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Where to write [default: prodiff.toml in the repository root]; `-` for standard output.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Overwrite an existing file.
    #[arg(long)]
    pub force: bool,
    /// Do not ask Docker or kubectl what runs; use only the repository.
    #[arg(long)]
    pub no_detect: bool,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The environment to deploy to.
    pub environment: String,
    /// What to deploy: an image tag (`1.5.0`, mapped through the service's git_tags), a git
    /// ref (`v1.5.0`, `main`, a SHA) or another environment (`staging`).
    #[arg(long, value_name = "TAG|REF|ENV")]
    pub to: String,
    /// Only this service.
    #[arg(long, value_name = "SERVICE")]
    pub service: Option<String>,
    /// Show the unified diff of this file (or of every changed file under this directory).
    #[arg(long, value_name = "PATH")]
    pub patch: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The environment to roll back.
    pub environment: String,
    /// Only this service.
    #[arg(long, value_name = "SERVICE")]
    pub service: Option<String>,
    /// A commit or ticket the target must not contain (repeatable).
    #[arg(long, value_name = "COMMIT|TICKET")]
    pub exclude: Vec<String>,
    /// How many earlier releases to list.
    #[arg(long, default_value_t = 10)]
    pub limit: usize,
    /// Offer release candidates (`-rc.N`) too where what runs is a final release.
    #[arg(long)]
    pub pre_releases: bool,
}

#[derive(Debug, Args)]
pub struct ContainsArgs {
    /// Commit SHAs (full or abbreviated) or ticket keys (SHOP-123, #42).
    #[arg(required = true, value_name = "COMMIT|TICKET")]
    pub items: Vec<String>,
    /// Only these environments (repeatable).
    #[arg(long = "env", value_name = "ENV")]
    pub environments: Vec<String>,
    /// Only this service (in a fleet: only the repository that runs it).
    #[arg(long, value_name = "SERVICE")]
    pub service: Option<String>,
}

#[derive(Debug, Args)]
pub struct WhyArgs {
    /// A commit SHA (full or abbreviated) or a ticket key (SHOP-123, #42).
    #[arg(value_name = "COMMIT|TICKET")]
    pub item: String,
    /// Only these environments (repeatable); their predecessors are still consulted.
    #[arg(long = "env", value_name = "ENV")]
    pub environments: Vec<String>,
    /// Only this service.
    #[arg(long, value_name = "SERVICE")]
    pub service: Option<String>,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Accept every finding this earlier snapshot already had; fail only on new ones.
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
    /// Only these environments (repeatable).
    #[arg(long = "env", value_name = "ENV")]
    pub environments: Vec<String>,
}

#[derive(Debug, Args)]
pub struct SnapshotArgs {
    /// Where to write the snapshot [default: standard output].
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Only these environments (repeatable).
    #[arg(long = "env", value_name = "ENV")]
    pub environments: Vec<String>,
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
