//! What the shell and `man` need from prodiff: completion scripts (clap_complete) and the
//! man page (clap_mangen), both generated from the clap types in `cli`, so they cannot
//! drift from the real flags. Neither needs a repository.

use std::io::Write;

use anyhow::{Context as _, Result};
use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs};

/// `prodiff completions SHELL`: the script for that shell on standard output.
pub(super) fn completions(args: &CompletionsArgs, out: &mut dyn Write) -> Result<u8> {
    let mut cmd = Cli::command();
    // clap_complete panics when its writer fails: render in memory, so that a closed pipe
    // is an ordinary write error.
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "prodiff", &mut script);
    out.write_all(&script)?;
    Ok(crate::exit::CLEAN)
}

/// `prodiff man`: prodiff(1) in roff, with the examples, exit codes and environment.
pub(super) fn man(out: &mut dyn Write) -> Result<u8> {
    let cmd = Cli::command();
    let page = clap_mangen::Man::new(cmd);
    page.render_title(out)?;
    page.render_name_section(out)?;
    page.render_synopsis_section(out)?;
    page.render_description_section(out)?;
    page.render_options_section(out)?;
    page.render_subcommands_section(out)?;
    render_sections(out).context("writing the man page")?;
    page.render_version_section(out)?;
    Ok(crate::exit::CLEAN)
}

/// The `--help` epilogue as man sections: EXAMPLES, EXIT STATUS, ENVIRONMENT.
fn render_sections(out: &mut dyn Write) -> std::io::Result<()> {
    for block in crate::cli::AFTER_HELP.split("\n\n") {
        let (title, body) = block.split_once(":\n").unwrap_or(("", block));
        let section = match title {
            "Examples" => "EXAMPLES",
            "Exit codes (every command)" => "EXIT STATUS",
            "Environment" => "ENVIRONMENT",
            _ => continue,
        };
        writeln!(out, ".SH {section}\n.nf")?;
        for line in body.lines() {
            writeln!(out, "{}", roff_escape(line.trim_start()))?;
        }
        writeln!(out, ".fi")?;
    }
    Ok(())
}

/// Backslashes and leading dots or quotes are roff syntax.
fn roff_escape(line: &str) -> String {
    let line = line.replace('\\', "\\e").replace('-', "\\-");
    if line.starts_with(['.', '\'']) {
        format!("\\&{line}")
    } else {
        line
    }
}
