//! A real browser for the HTML tests: Debian's `chromium`, headless, with a fresh profile
//! per load. `load` returns the DOM as the browser built it (`--dump-dom`) and every
//! console message the page produced; `screenshot` writes a PNG into the test's artefact
//! directory (target/test-artifacts/NAME/). Missing chromium fails the test, loudly.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What the browser made of a page.
pub struct Page {
    /// The serialised DOM after loading (text nodes escaped, elements as tags).
    pub dom: String,
    /// Console lines (`CONSOLE`, `Uncaught …`): a page without script should have none.
    pub console: Vec<String>,
}

/// The chromium binary, or a panic saying how to install it.
pub fn chromium() -> PathBuf {
    for candidate in ["/usr/bin/chromium", "/usr/bin/chromium-browser"] {
        if Path::new(candidate).is_file() {
            return PathBuf::from(candidate);
        }
    }
    panic!("chromium is missing: the HTML tests need a real browser (apt-get install -y chromium; tests/run.sh installs it)")
}

/// Where a test keeps what it produced (pages, screenshots), kept after the run:
/// `target/test-artifacts/NAME/`.
pub fn artefacts(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).parent().unwrap().join("test-artifacts").join(name);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs chromium headless on `url` with `args`; returns (stdout, stderr).
fn run(url: &str, args: &[String]) -> (String, String) {
    let profile = tempfile::tempdir().unwrap();
    let mut child = Command::new(chromium())
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run"])
        .args(["--disable-extensions", "--enable-logging=stderr", "--v=0"])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("chromium starts");
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut out, &mut s).unwrap();
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut err, &mut s).unwrap();
        s
    });
    let started = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if started.elapsed() > Duration::from_secs(90) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish loading {url} within 90 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    (reader.join().unwrap(), err_reader.join().unwrap())
}

/// Loads `url` and returns its DOM and console messages.
pub fn load(url: &str) -> Page {
    let (dom, stderr) = run(url, &["--dump-dom".to_string()]);
    assert!(dom.contains("<html"), "chromium gave no DOM for {url}:\n{stderr}");
    let console = stderr
        .lines()
        .filter(|l| l.contains(":CONSOLE") || l.contains("Uncaught") || l.contains("net::ERR_"))
        .map(str::to_string)
        .collect();
    Page { dom, console }
}

/// Takes a screenshot of `url` into `png` (1400 pixels wide) and checks it is a PNG.
pub fn screenshot(url: &str, png: &Path, height: u32) {
    let _ = std::fs::remove_file(png);
    let (_, stderr) = run(url, &[format!("--screenshot={}", png.display()), format!("--window-size=1400,{height}")]);
    let bytes = std::fs::read(png).unwrap_or_else(|e| panic!("no screenshot at {} ({e}):\n{stderr}", png.display()));
    assert!(bytes.starts_with(b"\x89PNG") && bytes.len() > 10_000, "{} is not a real screenshot", png.display());
}

/// `file:///…` for a local page.
pub fn file_url(path: &Path) -> String {
    format!("file://{}", path.canonicalize().unwrap().display())
}

/// The inner HTML of the matrix cell of `service` in `env` (as the browser serialised it).
pub fn cell<'a>(dom: &'a str, env: &str, service: &str) -> &'a str {
    let marker = format!("data-env=\"{env}\" data-service=\"{service}\">");
    let start = dom.find(&marker).unwrap_or_else(|| panic!("no cell {env}/{service} in the DOM:\n{dom}"));
    let rest = &dom[start + marker.len()..];
    &rest[..rest.find("</td>").expect("the cell ends")]
}
