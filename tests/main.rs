//! One integration-test binary: modules per area, shared scaffolding in `util`.

mod cli;
mod demo;
mod docker;
mod gate;
mod histories;
mod history;
mod kubernetes;
mod registry;
mod release;
mod sources;
mod util;
mod util_registry;
mod walk;
