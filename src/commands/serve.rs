//! `prodiff serve`: the status of the chosen environments, audited on an interval and
//! served live (the server itself is `crate::serve`).

use anyhow::Result;

use super::pipeline::status_report;
use crate::cli::{Global, ServeArgs};
use crate::history::Detail;

pub(super) fn serve(g: &Global, args: &ServeArgs) -> Result<u8> {
    let request = crate::serve::Request {
        bind: &args.bind,
        port: args.port,
        allow_remote: args.allow_remote,
        token_env: args.token_env.as_deref(),
        interval: std::time::Duration::from_secs(args.interval),
    };
    crate::serve::run(&request, &|| status_report(g, &args.environments, "serve", Detail::Full))
}
