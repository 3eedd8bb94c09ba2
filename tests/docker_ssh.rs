//! `ssh://` Docker hosts against a real sshd (Debian's openssh-server) that the test starts
//! on a free 127.0.0.1 port with its own config, host key and a throwaway client key; the
//! remote side is this machine's docker CLI (`docker system dial-stdio`) and daemon. Runs
//! as root, like the rest of the Docker tests. prodiff's ssh is a wrapper (`PRODIFF_SSH`)
//! that adds `-F` with the test's client config and logs the arguments it was given.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use crate::docker::{repo, Lab, DAEMON, REV};
use crate::util::*;

/// An sshd on 127.0.0.1, killed on drop, and the ssh wrapper that reaches it.
struct Sshd {
    child: Child,
    port: u16,
    ssh: PathBuf,
    log: PathBuf,
    dir: tempfile::TempDir,
}

fn keygen(path: &Path) {
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .output()
        .expect("ssh-keygen is installed (openssh-client)");
    assert!(out.status.success(), "ssh-keygen: {}", String::from_utf8_lossy(&out.stderr));
}

impl Sshd {
    fn start() -> Sshd {
        let sshd = Path::new("/usr/sbin/sshd");
        assert!(sshd.exists(), "needs Debian's openssh-server (apt-get install openssh-server; tests/run.sh does)");
        // sshd's privilege separation directory, which the package's service would create.
        std::fs::create_dir_all("/run/sshd").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        keygen(&d.join("host_key"));
        keygen(&d.join("client_key"));
        std::fs::copy(d.join("client_key.pub"), d.join("authorized_keys")).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        std::fs::write(
            d.join("sshd_config"),
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {0}/host_key\nPidFile {0}/sshd.pid\n\
                 AuthorizedKeysFile {0}/authorized_keys\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
                 PubkeyAuthentication yes\nAllowUsers root\nPermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\nLogLevel ERROR\n",
                d.display()
            ),
        )
        .unwrap();
        let host_pub = std::fs::read_to_string(d.join("host_key.pub")).unwrap();
        std::fs::write(d.join("known_hosts"), format!("[127.0.0.1]:{port} {host_pub}")).unwrap();
        std::fs::write(
            d.join("ssh_config"),
            format!(
                "Host *\n  IdentityFile {0}/client_key\n  IdentitiesOnly yes\n  UserKnownHostsFile {0}/known_hosts\n\
                 GlobalKnownHostsFile /dev/null\n  StrictHostKeyChecking yes\n",
                d.display()
            ),
        )
        .unwrap();
        let log = d.join("ssh-args.log");
        let ssh = d.join("ssh");
        std::fs::write(
            &ssh,
            format!("#!/bin/sh\necho \"$@\" >> {}\nexec ssh -F {}/ssh_config \"$@\"\n", log.display(), d.display()),
        )
        .unwrap();
        Command::new("chmod").arg("+x").arg(&ssh).status().unwrap();
        #[allow(clippy::zombie_processes)] // killed and waited for in Drop
        let child = Command::new(sshd)
            .args(["-D", "-e", "-f"])
            .arg(d.join("sshd_config"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Sshd { child, port, ssh, log, dir };
            }
            std::thread::sleep(std::time::Duration::from_millis(30));
        }
        panic!("sshd did not listen on 127.0.0.1:{port}");
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn ssh_hosts_are_reached_through_docker_system_dial_stdio_on_a_real_sshd() {
    let _daemon = DAEMON.lock().unwrap_or_else(|e| e.into_inner());
    let Some(lab) = Lab::new() else { return };
    let sshd = Sshd::start();
    let r = repo();
    let image = lab.image("api", "1.0.1", &[(REV, &r.rev("v1.0.1"))], "ssh");
    lab.run("api", &image, &[]);
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let host = format!("ssh://root@127.0.0.1:{}", sshd.port);
    let cfg = lab.config(
        sshd.dir.path(),
        &format!(
            "[services.api]\nimage = \"{}/api\"\n[environments.remote]\ndocker = [\"{host}\"]\n\
             [environments.gone]\ndocker = [\"ssh://root@127.0.0.1:{closed}\"]\n\
             [environments.denied]\ndocker = [\"ssh://nobody@127.0.0.1:{}\"]\n",
            lab.name, sshd.port
        ),
    );
    let args = ["status", "--offline", "--format", "json", "--config", cfg.to_str().unwrap()];
    let run = prodiff_env(r.path(), &args, None, &[("PRODIFF_SSH", sshd.ssh.to_str().unwrap())]);
    let report = run.json();
    let remote = row(&report, "remote", "api");
    assert_eq!(remote["commit"], r.rev("v1.0.1").as_str(), "{report:#}");
    assert_eq!(remote["instances"][0]["name"], format!("{host}/{}-api", lab.name));
    let image_id = crate::docker::docker(&["inspect", "--format", "{{.Id}}", &image]);
    assert!(remote["digests"].as_array().unwrap().iter().any(|d| d == image_id.as_str()), "{remote:#}");
    let audited: Vec<&Value> =
        report["daemons"].as_array().unwrap().iter().filter(|d| d["host"] == host.as_str()).collect();
    assert_eq!(audited[0]["reachable"], true);

    // The docker CLI's ssh arguments (plus BatchMode), for every connection.
    let calls = std::fs::read_to_string(&sshd.log).unwrap();
    let expected = format!(
        "-o ConnectTimeout=10 -o BatchMode=yes -T -l root -p {} -- 127.0.0.1 docker system dial-stdio",
        sshd.port
    );
    assert!(calls.lines().any(|l| l == expected), "{calls}");

    // Unreachable ssh hosts: a one-line source-unreachable, in ssh's own words.
    let unreachable = messages(&report, "source-unreachable");
    assert_eq!(unreachable.len(), 2, "{report:#}");
    let refused = format!(
        "Docker host ssh://root@127.0.0.1:{closed}: ssh: connect to host 127.0.0.1 port {closed}: Connection refused"
    );
    assert!(unreachable.contains(&refused.as_str()), "{unreachable:?}");
    let denied = format!("Docker host ssh://nobody@127.0.0.1:{}: ", sshd.port);
    assert!(unreachable.iter().any(|m| m.starts_with(&denied) && m.contains("Permission denied")), "{unreachable:?}");
    assert!(unreachable.iter().all(|m| !m.contains('\n')), "{unreachable:?}");
    assert_eq!(report["complete"], false);
    run.expect_code(1); // hotfix-drift: v1.0.1 is not on main
}
