//! One integration-test binary: modules per area, shared scaffolding in `util`.

mod canary;
mod cli;
mod contract;
mod demo;
mod diag;
mod docker;
mod docker_contexts;
mod docker_ssh;
mod fleet;
mod fuzz;
mod gate;
mod histories;
mod history;
mod hostile;
mod init;
mod kubernetes;
mod layers;
mod registry;
mod release;
mod shell;
mod sources;
mod util;
mod util_registry;
mod walk;
mod why;
