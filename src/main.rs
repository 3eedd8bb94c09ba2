use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = prodiff::cli::Cli::parse();
    prodiff::diag::init(cli.global.verbose, io::stderr().is_terminal());
    // The one runtime, for the phases that talk to daemons and registries; the library
    // never builds its own.
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("prodiff: error: cannot start the async runtime: {e}");
            return ExitCode::from(prodiff::exit::USAGE);
        }
    };
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let result = prodiff::commands::run(&cli, &runtime, &mut out).and_then(|code| {
        out.flush()?;
        Ok(code)
    });
    match result {
        Ok(code) => ExitCode::from(code),
        // `prodiff status | head` is not a failure.
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            // Errors pass the redaction layer like every report does.
            eprintln!("prodiff: error: {}", prodiff::redact::text(&format!("{e:#}")));
            let _ = prodiff::commands::annotate_failure(&cli.global, &e, &mut out).and_then(|_| out.flush());
            ExitCode::from(prodiff::exit::USAGE)
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().filter_map(|c| c.downcast_ref::<io::Error>()).any(|io| io.kind() == io::ErrorKind::BrokenPipe)
}
