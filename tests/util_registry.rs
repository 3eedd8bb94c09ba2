//! Scaffolding for registry tests: the real CNCF distribution registry on a free loopback
//! port (plain or with htpasswd basic auth), images built and pushed by hand over its HTTP
//! API (no Docker needed), a scripted fault proxy, and a prodiff runner with an isolated
//! cache and docker config.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

use crate::util::Run;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// Which family of media types an image is pushed with.
#[derive(Clone, Copy)]
pub enum Format {
    Oci,
    Docker,
}

impl Format {
    /// (manifest, index, config, layer) media types.
    fn types(self) -> (&'static str, &'static str, &'static str, &'static str) {
        match self {
            Format::Oci => (
                OCI_MANIFEST,
                OCI_INDEX,
                "application/vnd.oci.image.config.v1+json",
                "application/vnd.oci.image.layer.v1.tar",
            ),
            Format::Docker => (
                DOCKER_MANIFEST,
                DOCKER_LIST,
                "application/vnd.docker.container.image.v1+json",
                "application/vnd.docker.image.rootfs.diff.tar.gzip",
            ),
        }
    }
}
pub const REV: &str = "org.opencontainers.image.revision";
const INSTALL: &str = "apt-get install docker-registry skopeo";

pub fn sha256(bytes: &[u8]) -> String {
    let h = Sha256::digest(bytes);
    let hex: String = h.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// A running `docker-registry serve`, killed on drop (also when a test fails).
pub struct TestRegistry {
    child: Child,
    pub port: u16,
    /// Storage and config; removed when the registry is dropped.
    _dir: tempfile::TempDir,
    /// Basic-auth credentials the registry demands, if any.
    pub login: Option<(String, String)>,
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl TestRegistry {
    pub fn start() -> TestRegistry {
        TestRegistry::start_with(None)
    }

    /// A registry that demands this user and password (htpasswd, bcrypt).
    pub fn start_with(login: Option<(&str, &str)>) -> TestRegistry {
        assert!(
            Path::new("/usr/bin/docker-registry").is_file(),
            "the registry tests need the CNCF distribution registry: {INSTALL}"
        );
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut yaml = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.path().join("data").display()
        );
        if let Some((user, password)) = login {
            let hash = bcrypt::hash_with_result(password, 4).unwrap().format_for_version(bcrypt::Version::TwoY);
            let htpasswd = dir.path().join("htpasswd");
            std::fs::write(&htpasswd, format!("{user}:{hash}\n")).unwrap();
            yaml.push_str(&format!("auth:\n  htpasswd:\n    realm: prodiff-test\n    path: {}\n", htpasswd.display()));
        }
        let config = dir.path().join("config.yml");
        std::fs::write(&config, yaml).unwrap();
        let child = Command::new("/usr/bin/docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start docker-registry ({e}): {INSTALL}"));
        let r = TestRegistry { child, port, _dir: dir, login: login.map(|(u, p)| (u.to_string(), p.to_string())) };
        r.wait_ready();
        r
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(a) = http(self.port, "GET", "/v2/", &[], &[]) {
                if a.status == 200 || a.status == 401 {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("docker-registry did not answer on 127.0.0.1:{}", self.port);
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn auth(&self) -> Vec<(String, String)> {
        match &self.login {
            Some((u, p)) => vec![(
                "Authorization".into(),
                format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))),
            )],
            None => vec![],
        }
    }

    fn call(&self, method: &str, path: &str, headers: &[(String, String)], body: &[u8]) -> Answer {
        let mut all = self.auth();
        all.extend_from_slice(headers);
        http(self.port, method, path, &all, body).unwrap()
    }

    /// Uploads a blob (monolithic: POST then PUT with the digest); returns its digest.
    pub fn push_blob(&self, repo: &str, bytes: &[u8]) -> String {
        let digest = sha256(bytes);
        let a = self.call("POST", &format!("/v2/{repo}/blobs/uploads/"), &[], &[]);
        assert_eq!(a.status, 202, "blob upload start: {a:?}");
        let location = a.headers["location"].clone();
        let path = match location.find("/v2/") {
            Some(i) => location[i..].to_string(),
            None => location,
        };
        let sep = if path.contains('?') { '&' } else { '?' };
        let ct = vec![("Content-Type".to_string(), "application/octet-stream".to_string())];
        let a = self.call("PUT", &format!("{path}{sep}digest={digest}"), &ct, bytes);
        assert_eq!(a.status, 201, "blob upload: {a:?}");
        digest
    }

    /// Puts a manifest (or index) under `reference` (a tag or digest); returns its digest.
    pub fn push_manifest(&self, repo: &str, reference: &str, media_type: &str, bytes: &[u8]) -> String {
        let ct = vec![("Content-Type".to_string(), media_type.to_string())];
        let a = self.call("PUT", &format!("/v2/{repo}/manifests/{reference}"), &ct, bytes);
        assert_eq!(a.status, 201, "manifest put: {a:?}");
        sha256(bytes)
    }

    pub fn delete_manifest(&self, repo: &str, digest: &str) {
        let a = self.call("DELETE", &format!("/v2/{repo}/manifests/{digest}"), &[], &[]);
        assert_eq!(a.status, 202, "manifest delete: {a:?}");
    }

    /// Pushes a one-layer OCI image for `platform` with `labels`; `salt` makes it unique.
    pub fn push_image(&self, repo: &str, platform: &str, labels: &[(&str, &str)], salt: &str) -> Image {
        self.push_image_in(Format::Oci, repo, platform, labels, salt)
    }

    /// `push_image` with the media types of `format`.
    pub fn push_image_in(
        &self,
        format: Format,
        repo: &str,
        platform: &str,
        labels: &[(&str, &str)],
        salt: &str,
    ) -> Image {
        let (manifest_type, _, config_type, layer_type) = format.types();
        let (os, arch) = platform.split_once('/').unwrap();
        let layer = format!("layer {repo} {platform} {salt}").into_bytes();
        let layer_digest = self.push_blob(repo, &layer);
        let labels: BTreeMap<&str, &str> = labels.iter().copied().collect();
        let config = serde_json::to_vec(&json!({
            "architecture": arch, "os": os,
            "config": {"Labels": labels},
            "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
        }))
        .unwrap();
        let config_digest = self.push_blob(repo, &config);
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2, "mediaType": manifest_type,
            "config": {"mediaType": config_type, "digest": config_digest, "size": config.len()},
            "layers": [{"mediaType": layer_type, "digest": layer_digest, "size": layer.len()}],
        }))
        .unwrap();
        let digest = sha256(&manifest);
        self.push_manifest(repo, &digest, manifest_type, &manifest);
        Image { manifest: digest, config: config_digest, bytes: manifest, media_type: manifest_type }
    }

    /// Pushes an OCI index over `images` (platform, image); returns the index digest.
    pub fn push_index(&self, repo: &str, images: &[(&str, &Image)]) -> String {
        self.push_index_in(Format::Oci, repo, images)
    }

    /// `push_index` with the media types of `format` (a Docker manifest list).
    pub fn push_index_in(&self, format: Format, repo: &str, images: &[(&str, &Image)]) -> String {
        let (_, index_type, _, _) = format.types();
        let manifests: Vec<Value> = images
            .iter()
            .map(|(platform, img)| {
                let (os, arch) = platform.split_once('/').unwrap();
                json!({"mediaType": img.media_type, "digest": img.manifest, "size": img.bytes.len(),
                       "platform": {"os": os, "architecture": arch}})
            })
            .collect();
        let index = serde_json::to_vec(&json!({
            "schemaVersion": 2, "mediaType": index_type, "manifests": manifests,
        }))
        .unwrap();
        let digest = sha256(&index);
        self.push_manifest(repo, &digest, index_type, &index);
        digest
    }

    /// Points `tag` at an existing manifest or index.
    pub fn tag(&self, repo: &str, tag: &str, digest: &str, media_type: &str) {
        let a =
            self.call("GET", &format!("/v2/{repo}/manifests/{digest}"), &[("Accept".into(), media_type.into())], &[]);
        assert_eq!(a.status, 200, "manifest get: {a:?}");
        self.push_manifest(repo, tag, media_type, &a.body);
    }
}

/// One pushed image.
pub struct Image {
    pub manifest: String,
    pub config: String,
    pub bytes: Vec<u8>,
    pub media_type: &'static str,
}

#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

/// A minimal HTTP/1.1 client for the tests (one request per connection).
pub fn http(port: u16, method: &str, path: &str, headers: &[(String, String)], body: &[u8]) -> std::io::Result<Answer> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())?;
    s.write_all(body)?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    Ok(parse_response(&raw))
}

pub fn parse_response(raw: &[u8]) -> Answer {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("a header block");
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers: BTreeMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers.get("transfer-encoding").is_some_and(|t| t.contains("chunked")) {
        body = dechunk(&body);
    }
    Answer { status, headers, body }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(i) = b.windows(2).position(|w| w == b"\r\n") {
        let n = usize::from_str_radix(String::from_utf8_lossy(&b[..i]).trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.extend_from_slice(&b[i + 2..i + 2 + n]);
        b = &b[i + 4 + n..];
    }
    out
}

/// A request the fault proxy saw.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub authorization: Option<String>,
    pub body: String,
}

/// What the proxy does with a request.
pub enum Act {
    Forward,
    /// Forward, adding these headers to the answer.
    ForwardWith(Vec<(String, String)>),
    /// Forward, dropping this header (lower-case) from the answer.
    ForwardWithout(String),
    /// Forward, then flip the last byte of the body (content no longer matches its digest).
    Corrupt,
    Reply(u16, Vec<(String, String)>, Vec<u8>),
    /// Accept and never answer.
    Hang,
    /// Answer the status and headers, then the body one byte per `every` (a peer that
    /// keeps the connection alive without ever finishing).
    Drip(u16, Vec<(String, String)>, Vec<u8>, Duration),
    /// Answer the status and headers, then an endless body (until the client hangs up).
    Endless(u16, Vec<(String, String)>),
}

type Script = dyn Fn(&Seen, usize) -> Act + Send + Sync;

/// A loopback proxy in front of `upstream` that logs every request and acts as `script`
/// says (`script(request, how many requests came before)`).
pub struct Proxy {
    pub port: u16,
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

impl Proxy {
    pub fn start(upstream: u16, script: impl Fn(&Seen, usize) -> Act + Send + Sync + 'static) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let log = seen.clone();
        let script: Arc<Script> = Arc::new(script);
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { break };
                let (log, script) = (log.clone(), script.clone());
                std::thread::spawn(move || serve(conn, upstream, &log, &*script));
            }
        });
        Proxy { port, seen }
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn count(&self, method: &str, path_contains: &str) -> usize {
        self.seen.lock().unwrap().iter().filter(|s| s.method == method && s.path.contains(path_contains)).count()
    }

    pub fn log(&self) -> String {
        let seen = self.seen.lock().unwrap();
        seen.iter().map(|s| format!("{} {}\n", s.method, s.path)).collect()
    }
}

fn serve(mut conn: TcpStream, upstream: u16, log: &Mutex<Vec<Seen>>, script: &Script) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    // One request per connection (we answer `Connection: close`).
    let Some((head, body)) = read_request(&mut conn) else {
        return;
    };
    let mut lines = head.split("\r\n");
    let first: Vec<&str> = lines.next().unwrap_or("").split(' ').collect();
    let headers: Vec<(String, String)> =
        lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_string(), v.trim().to_string())).collect();
    let seen = Seen {
        method: first[0].to_string(),
        path: first.get(1).unwrap_or(&"").to_string(),
        authorization: headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("authorization")).map(|(_, v)| v.clone()),
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    let n = {
        let mut l = log.lock().unwrap();
        l.push(seen.clone());
        l.len() - 1
    };
    let (status, hs, mut out) = match script(&seen, n) {
        Act::Hang => {
            std::thread::sleep(Duration::from_secs(30));
            return;
        }
        Act::Drip(status, hs, body, every) => return drip(conn, status, &hs, &body, every),
        Act::Endless(status, hs) => return endless(conn, status, &hs),
        Act::Reply(s, h, b) => (s, h, b),
        act @ (Act::Forward | Act::ForwardWith(_) | Act::ForwardWithout(_) | Act::Corrupt) => {
            let fwd: Vec<(String, String)> = headers
                .into_iter()
                .filter(|(k, _)| {
                    !k.eq_ignore_ascii_case("connection")
                        && !k.eq_ignore_ascii_case("content-length")
                        && !k.eq_ignore_ascii_case("host")
                })
                .collect();
            let a = http(upstream, &seen.method, &seen.path, &fwd, &body).unwrap();
            let mut b = a.body;
            if matches!(act, Act::Corrupt) {
                if let Some(last) = b.last_mut() {
                    *last ^= 1;
                }
            }
            let mut hs: Vec<(String, String)> = a
                .headers
                .into_iter()
                .filter(|(k, _)| !matches!(k.as_str(), "connection" | "content-length" | "transfer-encoding"))
                .collect();
            match act {
                Act::ForwardWith(extra) => hs.extend(extra),
                Act::ForwardWithout(name) => hs.retain(|(k, _)| *k != name),
                _ => {}
            }
            (a.status, hs, b)
        }
    };
    let mut resp = format!("HTTP/1.1 {status} X\r\nConnection: close\r\n");
    let len = if seen.method == "HEAD" {
        hs.iter().find(|(k, _)| k == "content-length").map(|(_, v)| v.clone())
    } else {
        None
    };
    resp.push_str(&format!("Content-Length: {}\r\n", len.unwrap_or(out.len().to_string())));
    for (k, v) in &hs {
        resp.push_str(&format!("{k}: {v}\r\n"));
    }
    resp.push_str("\r\n");
    if seen.method == "HEAD" {
        out.clear();
    }
    let _ = conn.write_all(resp.as_bytes());
    let _ = conn.write_all(&out);
}

fn head(status: u16, hs: &[(String, String)], len: Option<usize>) -> String {
    let mut resp = format!("HTTP/1.1 {status} X\r\nConnection: close\r\n");
    if let Some(n) = len {
        resp.push_str(&format!("Content-Length: {n}\r\n"));
    }
    for (k, v) in hs {
        resp.push_str(&format!("{k}: {v}\r\n"));
    }
    resp + "\r\n"
}

fn drip(mut conn: TcpStream, status: u16, hs: &[(String, String)], body: &[u8], every: Duration) {
    if conn.write_all(head(status, hs, Some(body.len())).as_bytes()).is_err() {
        return;
    }
    for b in body {
        std::thread::sleep(every);
        if conn.write_all(&[*b]).is_err() {
            return;
        }
    }
}

/// Writes `{"token": "AAAA…` forever (valid-looking JSON that never ends).
fn endless(mut conn: TcpStream, status: u16, hs: &[(String, String)]) {
    let chunk = vec![b'A'; 64 << 10];
    let _ = conn.write_all(head(status, hs, None).as_bytes());
    let _ = conn.write_all(b"{\"token\": \"");
    // At most 64 GiB: ends on its own, should a client really read that far.
    for _ in 0..(1 << 20) {
        if conn.write_all(&chunk).is_err() {
            return;
        }
    }
}

fn read_request(conn: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let split = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = conn.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..split]).to_string();
    let len: usize = head
        .split("\r\n")
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0);
    let mut body = buf[split + 4..].to_vec();
    while body.len() < len {
        let n = conn.read(&mut chunk).ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some((head, body))
}

/// An isolated home for prodiff runs: its own cache and docker config directory.
pub struct Home {
    pub dir: tempfile::TempDir,
}

impl Home {
    pub fn new() -> Home {
        let h = Home { dir: tempfile::tempdir().unwrap() };
        std::fs::create_dir_all(h.docker()).unwrap();
        h
    }
    pub fn cache(&self) -> PathBuf {
        self.dir.path().join("cache")
    }
    pub fn docker(&self) -> PathBuf {
        self.dir.path().join("docker")
    }
    pub fn bin(&self) -> PathBuf {
        self.dir.path().join("bin")
    }

    /// The prodiff command with this home's cache and docker config (never the user's).
    pub fn command(&self, cwd: &Path, args: &[&str]) -> Command {
        let path = format!("{}:{}", self.bin().display(), std::env::var("PATH").unwrap_or_default());
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_prodiff"));
        cmd.args(args)
            .current_dir(cwd)
            .env("NO_COLOR", "1")
            .env("PRODIFF_CACHE_DIR", self.cache())
            .env("DOCKER_CONFIG", self.docker())
            .env("HOME", self.dir.path())
            .env("PATH", path)
            .env_remove("XDG_CACHE_HOME")
            .env_remove("XDG_DATA_HOME")
            .env_remove("PRODIFF_LEDGER")
            .env_remove("GITHUB_STEP_SUMMARY")
            .env_remove("DOCKER_HOST")
            .stdin(Stdio::null());
        cmd
    }

    /// Runs prodiff with this home's cache and docker config (never the user's).
    pub fn prodiff(&self, cwd: &Path, args: &[&str]) -> Run {
        let out = self.command(cwd, args).output().expect("prodiff binary runs");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let context = format!("cwd: {}\nargs: {args:?}\n--- stdout\n{stdout}\n--- stderr\n{stderr}", cwd.display());
        Run { code: out.status.code().unwrap_or(-1), stdout, stderr, context }
    }
}

/// Writes an inventory of raw JSON workloads.
pub fn write_inventory(dir: &Path, workloads: Vec<Value>) -> PathBuf {
    let path = dir.join("inventory.json");
    std::fs::write(&path, serde_json::to_string_pretty(&json!({ "workloads": workloads })).unwrap()).unwrap();
    path
}

/// `status --format json` on `repo` with `inventory` and extra args.
pub fn status(home: &Home, repo: &Path, inventory: &Path, extra: &[&str]) -> Run {
    let mut args = vec![
        "status",
        "--format",
        "json",
        "--repo",
        repo.to_str().unwrap(),
        "--inventory",
        inventory.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    home.prodiff(repo, &args)
}

/// The evidence kinds of a JSON row, with the commit each names.
pub fn evidence(row: &Value) -> Vec<(String, String)> {
    row["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["kind"].as_str().unwrap().to_string(), e["commit"].as_str().unwrap_or("-").to_string()))
        .collect()
}

/// The finding codes of a row, without `behind-mainline` (which is about git, not registries).
pub fn registry_codes(row: &Value) -> Vec<String> {
    crate::util::codes(row).into_iter().filter(|c| c != "behind-mainline").collect()
}

/// How a bounded run went: the run, and the peak resident memory in MiB.
pub struct Bounded {
    pub run: Run,
    pub max_rss_mib: u64,
}

/// Runs `cmd` (a prodiff command) under GNU time, killed if it is still running after
/// `deadline`: a hang fails the test instead of hanging it. The deadline is a guard against
/// hangs, loose on purpose, not a timing assertion.
pub fn bounded(cmd: Command, deadline: Duration) -> Bounded {
    use std::os::unix::process::CommandExt;
    assert!(
        Path::new("/usr/bin/time").is_file(),
        "the hostile tests measure memory with GNU time: apt-get install time"
    );
    let rss = tempfile::NamedTempFile::new().unwrap();
    let program = cmd.get_program().to_owned();
    let args: Vec<_> = cmd.get_args().map(|a| a.to_owned()).collect();
    let mut timed = Command::new("/usr/bin/time");
    timed.arg("-f").arg("%M").arg("-o").arg(rss.path()).arg(program).args(&args);
    timed.current_dir(cmd.get_current_dir().unwrap_or(Path::new(".")));
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => timed.env(k, v),
            None => timed.env_remove(k),
        };
    }
    timed.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).process_group(0);
    let mut child = timed.spawn().expect("GNU time runs prodiff");
    let (out, err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut b = Vec::new();
            let _ = r.read_to_end(&mut b);
            String::from_utf8_lossy(&b).into_owned()
        })
    };
    let (out, err) = (drain(Box::new(out)), drain(Box::new(err)));
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if started.elapsed() > deadline {
            // The whole group: GNU time and the prodiff it runs.
            let _ = Command::new("kill").arg("-KILL").arg(format!("-{}", child.id())).status();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let (stdout, stderr) = (out.join().unwrap(), err.join().unwrap());
    let context = format!("args: {args:?}\n--- stdout\n{stdout}\n--- stderr\n{stderr}");
    let Some(status) = status else {
        panic!("prodiff did not finish within {deadline:?} (a hang)\n{context}");
    };
    let kib: u64 = std::fs::read_to_string(rss.path())
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .next_back()
        .unwrap_or_else(|| panic!("GNU time reported no peak memory\n{context}"));
    let run = Run { code: status.code().unwrap_or(-1), stdout, stderr, context };
    Bounded { run, max_rss_mib: kib / 1024 }
}
