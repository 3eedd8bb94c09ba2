//! One integration-test binary: modules per area, shared scaffolding in `util`.

mod canary;
mod cli;
mod contract;
mod demo;
mod diag;
mod docker;
mod docker_contexts;
mod docker_ssh;
mod fuzz;
mod gate;
mod histories;
mod history;
mod hostile;
mod init;
mod kubernetes;
mod layers;
mod ledger;
mod registry;
mod release;
mod shell;
mod sources;
mod util;
mod util_pg;
mod util_registry;
mod walk;
mod why;
