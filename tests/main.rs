//! One integration-test binary: modules per area, shared scaffolding in `util`.

mod history;
mod util;
