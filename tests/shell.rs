//! What a user installs around prodiff: completion scripts that the real shell loads, a man
//! page that `man` renders, `--version` naming the commit, and `--help` with examples, the
//! exit-code table (the README's, row for row) and the environment variables.

use std::process::Command;

use crate::util::*;

#[test]
fn bash_loads_the_completion_script_and_completes_subcommands_and_flags() {
    let dir = tempfile::tempdir().unwrap();
    let run = prodiff(dir.path(), &["completions", "bash"], None);
    run.expect_code(0);
    let script = dir.path().join("prodiff.bash");
    std::fs::write(&script, &run.stdout).unwrap();
    // Load it in a real bash and ask the completion function what `prodiff ro` and
    // `prodiff rollback --ex` complete to.
    let probe = format!(
        "source {}; complete -p prodiff; \
         COMP_WORDS=(prodiff ro); COMP_CWORD=1; _prodiff prodiff ro prodiff; echo \"[${{COMPREPLY[*]}}]\"; \
         COMP_WORDS=(prodiff rollback --ex); COMP_CWORD=2; _prodiff prodiff --ex rollback; echo \"[${{COMPREPLY[*]}}]\"",
        script.display()
    );
    let out = Command::new("bash").arg("--norc").arg("-c").arg(&probe).output().expect("bash runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("-F _prodiff") && stdout.contains(" prodiff\n"), "{stdout}");
    assert!(stdout.contains("[rollback]"), "{stdout}");
    assert!(stdout.contains("[--exclude]"), "{stdout}");
    for shell in ["zsh", "fish", "powershell", "elvish"] {
        let run = prodiff(dir.path(), &["completions", shell], None);
        run.expect_code(0);
        assert!(run.stdout.contains("rollback") && run.stdout.contains("exclude"), "{shell}: {}", run.context);
    }
    prodiff(dir.path(), &["completions", "tcsh"], None).expect_code(2);
}

#[test]
fn man_renders_the_page_with_exit_status_and_environment() {
    let dir = tempfile::tempdir().unwrap();
    let run = prodiff(dir.path(), &["man"], None);
    run.expect_code(0);
    let page = dir.path().join("prodiff.1");
    std::fs::write(&page, &run.stdout).unwrap();
    let out = Command::new("man")
        .args(["-l", page.to_str().unwrap()])
        .env("MANWIDTH", "100")
        .env("MANPAGER", "cat")
        .env("PAGER", "cat")
        .output()
        .expect("man is installed (apt-get install man-db)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    for want in
        ["EXIT STATUS", "ENVIRONMENT", "EXAMPLES", "PRODIFF_KUBECTL", "PRODIFF_NOW", "rollback", "--allow-incomplete"]
    {
        assert!(text.contains(want), "the rendered page lacks {want:?}:\n{text}");
    }
}

#[test]
fn version_names_the_commit_it_was_built_from() {
    let dir = tempfile::tempdir().unwrap();
    let run = prodiff(dir.path(), &["--version"], None);
    run.expect_code(0);
    let head = Command::new("git")
        .args(["rev-parse", "--short=10", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("git runs");
    let head = String::from_utf8_lossy(&head.stdout).trim().to_string();
    assert_eq!(run.stdout.trim(), format!("prodiff {} ({head})", env!("CARGO_PKG_VERSION")));
}

#[test]
fn help_has_examples_the_readme_exit_codes_and_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let run = prodiff(dir.path(), &["--help"], None);
    run.expect_code(0);
    let help = &run.stdout;
    assert!(help.contains("Examples:\n  prodiff status"), "{help}");
    for var in ["PRODIFF_NOW", "PRODIFF_KUBECTL", "PRODIFF_CACHE_DIR", "RUST_LOG", "NO_COLOR"] {
        assert!(help.contains(var), "--help does not mention {var}");
    }
    // Every exit code of the README's table is in --help, and no other.
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let table = readme.split("## Exit codes").nth(1).unwrap().split("\n## ").next().unwrap();
    let readme_codes: Vec<&str> = table
        .lines()
        .filter_map(|l| l.strip_prefix("| "))
        .filter_map(|l| l.split(' ').next())
        .filter(|c| c.parse::<u8>().is_ok())
        .collect();
    let help_codes: Vec<&str> = help
        .split("Exit codes (every command):\n")
        .nth(1)
        .unwrap()
        .lines()
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.trim_start().split(' ').next())
        .filter(|c| c.parse::<u8>().is_ok() && !c.is_empty())
        .collect();
    assert_eq!(readme_codes, ["0", "1", "2", "3", "4"]);
    assert_eq!(help_codes, readme_codes, "{help}");
    let short = prodiff(dir.path(), &["-h"], None);
    assert!(short.stdout.contains("prodiff --help"), "{}", short.context);
}

#[test]
fn the_build_script_tolerates_a_source_tree_without_git() {
    // The compiled build script, run where no git repository is: a tarball build.
    let debug = std::env::current_exe().unwrap().parent().unwrap().parent().unwrap().to_path_buf();
    let mut scripts: Vec<_> = std::fs::read_dir(debug.join("build"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("prodiff-"))
        .map(|e| e.path().join("build-script-build"))
        .filter(|p| p.exists())
        .collect();
    scripts.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
    let script = scripts.pop().expect("cargo built prodiff's build script");
    let outside = tempfile::tempdir().unwrap();
    let run = |env: &[(&str, &str)]| {
        let out = Command::new(&script)
            .current_dir(outside.path())
            .env("OUT_DIR", outside.path())
            .env("GIT_CEILING_DIRECTORIES", outside.path().parent().unwrap())
            .env_remove("PRODIFF_BUILD_COMMIT")
            .envs(env.iter().copied())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(run(&[]).contains("cargo:rustc-env=PRODIFF_BUILD_COMMIT=unknown commit\n"));
    assert!(run(&[("PRODIFF_BUILD_COMMIT", "abc123")]).contains("cargo:rustc-env=PRODIFF_BUILD_COMMIT=abc123\n"));
    // Without git on PATH at all, the same.
    assert!(run(&[("PATH", "/nonexistent")]).contains("PRODIFF_BUILD_COMMIT=unknown commit\n"));
}
