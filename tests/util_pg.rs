//! A real PostgreSQL server for the ledger tests: Debian's server binaries
//! (/usr/lib/postgresql/15/bin), `initdb` in a temporary directory, a free 127.0.0.1 port,
//! the unix socket in that directory, password (scram) authentication on TCP. One server
//! is shared by every test of the run (a `OnceLock`), with one database per test.
//!
//! A static is never dropped, so the server is started under a watchdog shell that stops
//! it and removes its directory as soon as the test process is gone, however it ends
//! (success, failed assertion, abort). As root (initdb refuses root) the server runs as the
//! `postgres` user the Debian package creates.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const BIN: &str = "/usr/lib/postgresql/15/bin";
const INSTALL: &str = "apt-get install postgresql (tests/run.sh does it)";
/// The ledger user's password: tests check it never shows up in any output.
pub const PASSWORD: &str = "ledger-pw-7Hq2xZ9";

pub struct Server {
    pub port: u16,
    dir: PathBuf,
    /// `setpriv --reuid=USER …` when running as root.
    as_user: Vec<String>,
}

static SERVER: OnceLock<Server> = OnceLock::new();
static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A fresh database on the shared server: its URL (with the password).
pub fn database(name: &str) -> String {
    let s = SERVER.get_or_init(Server::start);
    let db = format!("{name}_{}", NEXT.fetch_add(1, Ordering::SeqCst));
    s.psql("postgres", &format!("CREATE DATABASE {db}"));
    s.url(&db)
}

/// A ledger location as prodiff prints it: a path as is, a URL without its password.
pub fn redacted(ledger: &str) -> String {
    ledger.replace(&format!("prodiff:{PASSWORD}@"), "")
}

impl Server {
    fn url(&self, db: &str) -> String {
        format!("postgres://prodiff:{PASSWORD}@127.0.0.1:{}/{db}", self.port)
    }

    fn start() -> Server {
        assert!(Path::new(BIN).join("initdb").exists(), "PostgreSQL server binaries missing in {BIN}: {INSTALL}");
        let root = is_root();
        let user = "postgres";
        assert!(!root || id(user).is_some(), "no postgres user to run the server as (initdb refuses root): {INSTALL}");
        // setpriv execs (runuser would stay the parent and not pass the stop signal on).
        let as_user: Vec<String> = if root {
            vec!["setpriv".into(), format!("--reuid={user}"), format!("--regid={user}"), "--init-groups".into()]
        } else {
            vec![]
        };
        let dir = std::env::temp_dir().join(format!("prodiff-pg-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("pw"), PASSWORD).unwrap();
        if root {
            let status = Command::new("chown").args(["-R", user]).arg(&dir).status().unwrap();
            assert!(status.success(), "chown {user} {}", dir.display());
        }
        let server = Server { port: free_port(), dir, as_user };
        server.run(&[
            &format!("{BIN}/initdb"),
            "-D",
            &server.data(),
            "-U",
            "prodiff",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            &format!("--pwfile={}", server.dir.join("pw").display()),
            "-E",
            "UTF8",
            "--no-sync",
        ]);
        server.spawn_watched();
        server.wait_ready();
        server
    }

    fn data(&self) -> String {
        self.dir.join("data").display().to_string()
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut all: Vec<&str> = self.as_user.iter().map(String::as_str).collect();
        all.extend_from_slice(args);
        let mut c = Command::new(all[0]);
        c.args(&all[1..]).current_dir(&self.dir);
        c
    }

    fn run(&self, args: &[&str]) {
        let out = self.command(args).output().unwrap_or_else(|e| panic!("{args:?}: {e} ({INSTALL})"));
        assert!(
            out.status.success(),
            "{args:?} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `postgres` under a shell that stops it (and removes the directory) once this test
    /// process has exited.
    // The watchdog outlives this process on purpose (it stops the server after it): no wait.
    #[allow(clippy::zombie_processes)]
    fn spawn_watched(&self) {
        let server = format!(
            "{} {BIN}/postgres -D {} -p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off \
             -c synchronous_commit=off -c full_page_writes=off",
            self.as_user.join(" "),
            self.data(),
            self.port,
            self.dir.display()
        );
        let script = format!(
            "{server} >{dir}/log 2>&1 & pg=$!\n\
             while kill -0 {me} 2>/dev/null && kill -0 $pg 2>/dev/null; do sleep 0.5; done\n\
             kill -INT $pg 2>/dev/null; wait $pg; rm -rf {dir}\n",
            dir = self.dir.display(),
            me = std::process::id()
        );
        Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("sh runs");
    }

    fn wait_ready(&self) {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(60) {
            let ok = Command::new(format!("{BIN}/pg_isready"))
                .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-q"])
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let log = std::fs::read_to_string(self.dir.join("log")).unwrap_or_default();
        panic!("PostgreSQL did not start on port {} within 60 s:\n{log}", self.port);
    }

    fn psql(&self, db: &str, sql: &str) -> String {
        let out = Command::new(format!("{BIN}/psql"))
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "prodiff", "-d", db, "-At", "-v"])
            .arg("ON_ERROR_STOP=1")
            .arg("-c")
            .arg(sql)
            .env("PGPASSWORD", PASSWORD)
            .output()
            .expect("psql runs");
        assert!(out.status.success(), "psql {sql}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }
}

fn id(user: &str) -> Option<String> {
    let out = Command::new("id").args(["-u", user]).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}
