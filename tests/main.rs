//! One integration-test binary: modules per area, shared scaffolding in `util`.

mod cli;
mod demo;
mod history;
mod registry;
mod util;
mod util_registry;
