//! `ssh://user@host[:port]` daemons, reached the way the docker CLI reaches them: every
//! connection is `ssh -o ConnectTimeout=… -T -l user -p port -- host docker system
//! dial-stdio`, whose stdin and stdout carry the remote daemon's API. prodiff adds
//! `BatchMode=yes` (it never prompts; keys come from the agent or `~/.ssh/config`).
//! `PRODIFF_SSH` names another ssh program, as `PRODIFF_KUBECTL` does for kubectl.
//!
//! The ssh process gets one end of a socket pair as stdin and stdout; hyper speaks HTTP on
//! the other. What ssh prints on stderr is kept: when the daemon cannot be reached, its last
//! line (`ssh: connect to host … port 22: Connection refused`) is the message, not hyper's
//! "connection closed".

use std::future::Future;
use std::io;
use std::os::fd::OwnedFd;
use std::pin::Pin;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bollard::Docker;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};

pub use crate::config::observe::SshTarget as Target;

impl Target {
    /// The docker CLI's arguments, plus BatchMode.
    pub fn args(&self, timeout: Duration) -> Vec<String> {
        let mut a = vec!["-o".to_string(), format!("ConnectTimeout={}", timeout.as_secs().max(1))];
        a.extend(["-o".into(), "BatchMode=yes".into(), "-T".into()]);
        if let Some(u) = &self.user {
            a.extend(["-l".into(), u.clone()]);
        }
        if let Some(p) = self.port {
            a.extend(["-p".into(), p.to_string()]);
        }
        a.extend(["--".into(), self.host.clone()]);
        a.extend(["docker", "system", "dial-stdio"].map(String::from));
        a
    }
}

/// What the ssh processes printed on stderr, newest last, and how many are still printing.
#[derive(Clone, Default)]
pub struct Stderr {
    lines: Arc<Mutex<Vec<String>>>,
    open: Arc<AtomicUsize>,
}

impl Stderr {
    /// The last thing ssh said, when it said anything. A connection can fail before its ssh
    /// has finished saying why: wait (up to 2 s) until something is said or every ssh is done.
    pub async fn last(&self) -> Option<String> {
        for _ in 0..100 {
            if self.said().is_some() || self.open.load(Ordering::SeqCst) == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.said()
    }

    fn said(&self) -> Option<String> {
        self.lines.lock().ok()?.last().cloned()
    }
}

/// A bollard client whose every connection is an ssh process, and where ssh's complaints go.
pub fn client(url: &str, timeout: Duration) -> Result<(Docker, Stderr), String> {
    let target = Target::parse(url)?;
    let stderr = Stderr::default();
    let connector = Connector { target, timeout, stderr: stderr.clone() };
    let client = Arc::new(Client::builder(TokioExecutor::new()).build(connector));
    let transport = move |req: bollard::BollardRequest| {
        let client = client.clone();
        async move { client.request(req).await.map_err(bollard::errors::Error::from) }
    };
    let docker = Docker::connect_with_custom_transport(
        transport,
        Some("http://docker.ssh"),
        timeout.as_secs(),
        bollard::API_DEFAULT_VERSION,
    )
    .map_err(|e| e.to_string())?;
    Ok((docker, stderr))
}

#[derive(Clone)]
struct Connector {
    target: Target,
    timeout: Duration,
    stderr: Stderr,
}

impl tower_service::Service<hyper::Uri> for Connector {
    type Response = SshStream;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<SshStream>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: hyper::Uri) -> Self::Future {
        let spawned = self.spawn();
        Box::pin(async move { spawned })
    }
}

impl Connector {
    fn spawn(&self) -> io::Result<SshStream> {
        let program = std::env::var("PRODIFF_SSH").ok().filter(|p| !p.is_empty()).unwrap_or_else(|| "ssh".into());
        let (ours, theirs) = std::os::unix::net::UnixStream::pair()?;
        let theirs_out = theirs.try_clone()?;
        let mut child = Command::new(&program)
            .args(self.target.args(self.timeout))
            .stdin(Stdio::from(OwnedFd::from(theirs)))
            .stdout(Stdio::from(OwnedFd::from(theirs_out)))
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("cannot run {program}: {e}")))?;
        let pipe = child.stderr.take().expect("piped");
        let log = self.stderr.clone();
        log.open.fetch_add(1, Ordering::SeqCst);
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in io::BufReader::new(pipe).lines().map_while(Result::ok) {
                let line = line.trim().to_string();
                if let (false, Ok(mut l)) = (line.is_empty(), log.lines.lock()) {
                    l.push(line);
                }
            }
            log.open.fetch_sub(1, Ordering::SeqCst);
        });
        ours.set_nonblocking(true)?;
        let io = TokioIo::new(tokio::net::UnixStream::from_std(ours)?);
        Ok(SshStream { io, child })
    }
}

/// One connection: the socket to an ssh process, which ends with it.
struct SshStream {
    io: TokioIo<tokio::net::UnixStream>,
    child: Child,
}

impl Drop for SshStream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Connection for SshStream {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

impl hyper::rt::Read for SshStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for SshStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_become_the_docker_cli_arguments() {
        let t = Target::parse("ssh://deploy@10.0.0.9:2222").unwrap();
        assert_eq!(
            t.args(Duration::from_secs(10)).join(" "),
            "-o ConnectTimeout=10 -o BatchMode=yes -T -l deploy -p 2222 -- 10.0.0.9 docker system dial-stdio"
        );
        let t = Target::parse("ssh://h.example").unwrap();
        assert_eq!((t.user, t.host.as_str(), t.port), (None, "h.example", None));
        let t = Target::parse("ssh://u@[::1]:22").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", Some(22)));
        assert_eq!(Target::parse("ssh://[::1]").unwrap().port, None);
        let e = Target::parse("ssh://u:hunter2@h").unwrap_err();
        assert!(!e.contains("hunter2") && e.contains("password"), "{e}");
        assert!(Target::parse("ssh://u@h/var/run").is_err());
        assert!(Target::parse("ssh://u@-oProxyCommand=x").is_err());
    }
}
