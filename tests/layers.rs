//! The house's one rule, checked on the source itself: imports run one way, along the
//! pipeline. Every `src/**/*.rs` is read; each `crate::X` (and `super::` climbing to the
//! crate root) names a top-level module; both ends map to a stage, and an import from a
//! later stage is a failure naming the file, the line and the import. A second check finds
//! import cycles between top-level modules (same-stage ones included).
//!
//! A new top-level module must be given a stage in `STAGES` (the test says so when it meets
//! one); the rooms kept for the ledger, publishing and serving are already there.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Stage order: a module may import from its own stage and earlier ones, never later.
/// Keep in step with the map in src/lib.rs.
const STAGES: &[(&str, &[&str])] = &[
    ("ground", &["model", "reference", "redact", "exit", "diag", "cache_dir"]),
    ("config", &["config"]),
    ("git", &["git"]),
    ("observe", &["observe"]),
    ("resolve", &["resolve"]),
    ("history", &["history"]),
    ("judge", &["judge"]),
    ("ledger", &["ledger"]),
    ("report", &["report"]),
    ("publish", &["publish", "serve"]),
    ("commands", &["commands", "cli"]),
];

/// Stage index of a top-level module; the crate root (lib.rs, main.rs) is above them all.
fn stage(module: &str) -> Option<usize> {
    match module {
        "" => Some(STAGES.len()),
        _ => STAGES.iter().position(|(_, mods)| mods.contains(&module)),
    }
}

fn stage_name(i: usize) -> &'static str {
    STAGES.get(i).map(|(n, _)| *n).unwrap_or("crate root")
}

/// One `crate::…` or `super::…` path that leaves its file's top-level module.
#[derive(Debug, PartialEq)]
struct Import {
    line: usize,
    /// The top-level module imported.
    target: String,
    /// The path as written (`crate::resolve::Deployment`), for the message.
    text: String,
}

/// `path` relative to src/ as a module path: `observe/docker/ssh.rs` → [observe, docker, ssh].
fn module_path(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    let last = parts.pop().unwrap_or_default();
    let stem = last.trim_end_matches(".rs");
    if !matches!(stem, "mod" | "lib" | "main") {
        parts.push(stem.to_string());
    }
    parts
}

/// `src` with comments, strings and char literals blanked out (newlines kept), so only code
/// is searched and byte offsets still give line numbers.
fn code_only(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = b.to_vec();
    let blank = |out: &mut Vec<u8>, from: usize, to: usize| {
        for c in &mut out[from..to] {
            if *c != b'\n' {
                *c = b' ';
            }
        }
    };
    let mut i = 0;
    while i < b.len() {
        let start = i;
        if b[i..].starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            blank(&mut out, start, i);
        } else if b[i..].starts_with(b"/*") {
            let mut depth = 0;
            while i < b.len() {
                if b[i..].starts_with(b"/*") {
                    depth += 1;
                    i += 2;
                } else if b[i..].starts_with(b"*/") {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            blank(&mut out, start, i.min(b.len()));
        } else if b[i] == b'r' && (b.get(i + 1) == Some(&b'"') || b.get(i + 1) == Some(&b'#')) && !ident_byte(b, i) {
            let hashes = b[i + 1..].iter().take_while(|c| **c == b'#').count();
            if b.get(i + 1 + hashes) != Some(&b'"') {
                i += 1;
                continue;
            }
            let close: Vec<u8> = std::iter::once(b'"').chain(std::iter::repeat_n(b'#', hashes)).collect();
            i += 2 + hashes;
            while i < b.len() && !b[i..].starts_with(&close) {
                i += 1;
            }
            i = (i + close.len()).min(b.len());
            blank(&mut out, start, i);
        } else if b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i = (i + 1).min(b.len());
            blank(&mut out, start, i);
        } else if b[i] == b'\'' && (b.get(i + 1) == Some(&b'\\') || b.get(i + 2) == Some(&b'\'')) {
            i += 1;
            while i < b.len() && b[i] != b'\'' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i = (i + 1).min(b.len());
            blank(&mut out, start, i);
        } else {
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether the byte before `i` continues an identifier (`expr` in `expr"…"` is no raw string).
fn ident_byte(b: &[u8], i: usize) -> bool {
    i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_')
}

fn ident(s: &str) -> &str {
    let end = s.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(s.len());
    &s[..end]
}

/// The first segment of each entry of a `{a::b, c, d::{e, f}}` group (`s` starts after `{`).
fn group_heads(s: &str) -> Vec<String> {
    let (mut heads, mut depth, mut at_start) = (Vec::new(), 0, true);
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => at_start = true,
            c if at_start && !c.is_whitespace() => {
                at_start = false;
                let id = ident(&s[i..]);
                if !id.is_empty() && id != "self" {
                    heads.push(id.to_string());
                }
            }
            _ => {}
        }
    }
    heads
}

/// Imports of the file at `module` (its module path) that leave its top-level module.
fn imports(module: &[String], src: &str) -> Vec<Import> {
    let code = code_only(src);
    let line_of = |at: usize| code[..at].matches('\n').count() + 1;
    let mut found = Vec::new();
    for (kw, up) in [("crate::", None), ("super::", Some(()))] {
        for (at, _) in code.match_indices(kw) {
            if ident_byte(code.as_bytes(), at) || code[..at].ends_with('$') || code[..at].ends_with("::") {
                continue;
            }
            let mut rest = &code[at + kw.len()..];
            let mut base: Vec<String> = match up {
                None => Vec::new(),
                Some(()) => module[..module.len().saturating_sub(1)].to_vec(),
            };
            if up.is_some() {
                while let Some(r) = rest.strip_prefix("super::") {
                    base.pop();
                    rest = r;
                }
            }
            let heads = match (base.first(), rest.strip_prefix('{')) {
                (Some(top), _) => vec![top.clone()],
                (None, Some(group)) => group_heads(group),
                (None, None) => vec![ident(rest).to_string()],
            };
            let text: String = code[at..].chars().take_while(|c| !matches!(c, ';' | '\n' | '(' | ' ')).collect();
            // `super::` that reaches the root from an inline module (`mod tests`) names an item
            // of the file itself, not a top-level module: only known modules count.
            let to_root = up.is_some() && base.is_empty();
            let heads = heads.into_iter().filter(|h| !to_root || stage(h).is_some());
            for target in heads.filter(|h| !h.is_empty() && Some(h) != module.first()) {
                found.push(Import { line: line_of(at), target, text: text.clone() });
            }
        }
    }
    found
}

/// The problems in a set of files (path relative to src/, contents): backward imports,
/// top-level modules without a stage, and cycles between top-level modules.
fn problems(files: &[(PathBuf, String)]) -> Vec<String> {
    let mut out = Vec::new();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (rel, src) in files {
        let module = module_path(rel);
        let from = module.first().cloned().unwrap_or_default();
        let Some(from_stage) = stage(&from) else {
            out.push(format!(
                "src/{}: top-level module `{from}` has no stage in tests/layers.rs STAGES",
                rel.display()
            ));
            continue;
        };
        for imp in imports(&module, src) {
            let Some(to_stage) = stage(&imp.target) else {
                out.push(format!(
                    "src/{}:{}: `{}` names `{}`, which has no stage in tests/layers.rs STAGES",
                    rel.display(),
                    imp.line,
                    imp.text,
                    imp.target
                ));
                continue;
            };
            if to_stage > from_stage {
                out.push(format!(
                    "src/{}:{}: `{}` is a backward import: {} (stage {}) uses {} (stage {}, later)",
                    rel.display(),
                    imp.line,
                    imp.text,
                    if from.is_empty() { "the crate root" } else { &from },
                    stage_name(from_stage),
                    imp.target,
                    stage_name(to_stage)
                ));
            }
            if !from.is_empty() {
                edges.entry(from.clone()).or_default().insert(imp.target);
            }
        }
    }
    out.extend(
        cycles(&edges).into_iter().map(|c| format!("import cycle between top-level modules: {}", c.join(" → "))),
    );
    out
}

/// Each cycle in `edges`, once, as the path that closes it (`a → b → a`).
fn cycles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    fn visit(
        n: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
        out: &mut Vec<Vec<String>>,
    ) {
        if let Some(i) = stack.iter().position(|s| s == n) {
            let mut c = stack[i..].to_vec();
            c.push(n.to_string());
            out.push(c);
            return;
        }
        if !done.insert(n.to_string()) {
            return;
        }
        stack.push(n.to_string());
        for m in edges.get(n).into_iter().flatten() {
            visit(m, edges, stack, done, out);
        }
        stack.pop();
    }
    let (mut out, mut done) = (Vec::new(), BTreeSet::new());
    for n in edges.keys() {
        visit(n, edges, &mut Vec::new(), &mut done, &mut out);
    }
    out
}

fn rust_files(dir: &Path, root: &Path, out: &mut Vec<(PathBuf, String)>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir).expect("src/ is readable").map(|e| e.unwrap().path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, root, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&p).expect("source is UTF-8");
            out.push((p.strip_prefix(root).unwrap().to_path_buf(), text));
        }
    }
}

fn source_files() -> Vec<(PathBuf, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&root, &root, &mut files);
    files
}

#[test]
fn imports_run_one_way_along_the_pipeline() {
    let files = source_files();
    assert!(files.len() > 40, "found only {} files under src/", files.len());
    let found = problems(&files);
    assert!(found.is_empty(), "{} import problem(s):\n{}", found.len(), found.join("\n"));
}

#[test]
fn every_stage_is_a_module_of_the_crate() {
    let files = source_files();
    let tops: BTreeSet<String> = files.iter().filter_map(|(rel, _)| module_path(rel).first().cloned()).collect();
    let rooms = ["ledger", "publish", "serve"];
    for (name, mods) in STAGES {
        for m in mods.iter().filter(|m| !rooms.contains(m)) {
            assert!(tops.contains(*m), "stage {name} lists `{m}`, which is not a module under src/");
        }
    }
}

#[test]
fn a_backward_import_is_named_with_file_line_and_path() {
    let files = vec![
        (PathBuf::from("config/mod.rs"), "//! doc crate::judge::x\nuse crate::model::Code;\n".to_string()),
        (
            PathBuf::from("observe/enrich.rs"),
            "use crate::model::X;\nlet s = \"crate::report\";\nuse crate::{config::Config, resolve::{a, b}};\n"
                .to_string(),
        ),
        (PathBuf::from("observe/docker/ssh.rs"), "fn f() { super::super::super::judge::policy::x(); }\n".to_string()),
    ];
    let found = problems(&files);
    assert_eq!(
        found,
        vec![
            "src/observe/enrich.rs:3: `crate::{config::Config,` is a backward import: observe (stage observe) uses \
             resolve (stage resolve, later)"
                .to_string(),
            "src/observe/docker/ssh.rs:1: `super::super::super::judge::policy::x` is a backward import: observe \
             (stage observe) uses judge (stage judge, later)"
                .to_string(),
        ]
    );
}

#[test]
fn a_cycle_between_top_level_modules_is_named() {
    let files = vec![
        (PathBuf::from("model.rs"), "use crate::redact::text;\n".to_string()),
        (PathBuf::from("redact.rs"), "use crate::exit::USAGE;\n".to_string()),
        (PathBuf::from("exit.rs"), "pub(crate) use crate::model::Code;\n".to_string()),
    ];
    assert_eq!(problems(&files), vec!["import cycle between top-level modules: exit → model → redact → exit"]);
}

#[test]
fn a_module_without_a_stage_is_named() {
    let files = vec![(PathBuf::from("ledger2/mod.rs"), "use crate::model::Code;\n".to_string())];
    assert_eq!(
        problems(&files),
        vec!["src/ledger2/mod.rs: top-level module `ledger2` has no stage in tests/layers.rs STAGES"]
    );
}
