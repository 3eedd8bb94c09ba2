//! Docker contexts as the docker CLI makes them (`docker context create`, `docker context
//! use`, in a throwaway DOCKER_CONFIG), each pointing at the real daemon through a relay
//! this test starts: a unix socket of its own (socat), and a TLS port that demands a client
//! certificate signed by a throwaway CA (rustls; socat's OpenSSL server refuses rustls's
//! session resumption when it verifies clients). Which relay prodiff went through shows
//! which daemon endpoint it chose.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use serde_json::Value;

use crate::docker::{repo, Lab, DAEMON, REV};
use crate::util::*;

/// A socat relay to the real daemon, killed on drop.
struct Relay(Child);

impl Relay {
    fn start(listen: &str, ready: impl Fn() -> bool) -> Relay {
        #[allow(clippy::zombie_processes)] // killed and waited for in Drop
        let child = Command::new("socat")
            .args([listen, "UNIX-CONNECT:/var/run/docker.sock"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("socat is installed (apt-get install socat; tests/run.sh does)");
        for _ in 0..100 {
            if ready() {
                return Relay(child);
            }
            std::thread::sleep(std::time::Duration::from_millis(30));
        }
        panic!("socat {listen} did not start");
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A TLS endpoint in front of the real daemon that demands a client certificate signed by
/// `ca.pem`, like a daemon started with `--tlsverify`; stopped on drop.
struct TlsRelay {
    port: u16,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TlsRelay {
    fn start(certs: &Path) -> TlsRelay {
        use tokio_rustls::rustls::{self, pki_types::pem::PemObject, pki_types::*};
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots.add(CertificateDer::from_pem_file(certs.join("ca.pem")).unwrap()).unwrap();
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .unwrap();
        let chain = vec![CertificateDer::from_pem_file(certs.join("server.pem")).unwrap()];
        let key = PrivateKeyDer::from_pem_file(certs.join("server.key")).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let (stop, mut stopped) = tokio::sync::oneshot::channel();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                loop {
                    let (tcp, _) = tokio::select! {
                        _ = &mut stopped => return,
                        accepted = listener.accept() => accepted.unwrap(),
                    };
                    let acceptor = acceptor.clone();
                    tokio::spawn(async move {
                        // A refused client certificate ends here, as with a real daemon.
                        let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                        let Ok(mut daemon) = tokio::net::UnixStream::connect("/var/run/docker.sock").await else {
                            return;
                        };
                        let _ = tokio::io::copy_bidirectional(&mut tls, &mut daemon).await;
                    });
                }
            });
        });
        TlsRelay { port, stop: Some(stop), thread: Some(thread) }
    }
}

impl Drop for TlsRelay {
    fn drop(&mut self) {
        let _ = self.stop.take().map(|s| s.send(()));
        let _ = self.thread.take().map(|t| t.join());
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl").args(args).current_dir(dir).output().expect("openssl is installed");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate, all signed by it.
fn certificates(dir: &Path) {
    let days = ["-days", "2"];
    openssl(
        dir,
        &[
            &["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem"][..],
            &days,
            &["-subj", "/CN=prodiff test CA"],
        ]
        .concat(),
    );
    for (who, ext) in [
        ("server", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"),
        ("client", "extendedKeyUsage=clientAuth\n"),
    ] {
        std::fs::write(dir.join(format!("{who}.ext")), ext).unwrap();
        openssl(
            dir,
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                &format!("{who}.key"),
                "-out",
                &format!("{who}.csr"),
                "-subj",
                &format!("/CN={who}"),
            ],
        );
        openssl(
            dir,
            &[
                &[
                    "x509",
                    "-req",
                    "-in",
                    &format!("{who}.csr"),
                    "-CA",
                    "ca.pem",
                    "-CAkey",
                    "ca.key",
                    "-CAcreateserial",
                    "-out",
                    &format!("{who}.pem"),
                    "-extfile",
                    &format!("{who}.ext"),
                ][..],
                &days,
            ]
            .concat(),
        );
    }
}

/// The docker CLI with this test's DOCKER_CONFIG.
fn docker_cli(config: &Path, args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .env("DOCKER_CONFIG", config)
        .env_remove("DOCKER_HOST")
        .env_remove("DOCKER_CONTEXT")
        .output()
        .unwrap();
    assert!(out.status.success(), "docker {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn daemons(report: &Value) -> Vec<(String, Option<String>, String)> {
    report["daemons"]
        .as_array()
        .unwrap_or_else(|| panic!("no daemons in {report:#}"))
        .iter()
        .map(|d| {
            (
                d["host"].as_str().unwrap().to_string(),
                d["context"].as_str().map(String::from),
                d["chosen_by"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn docker_contexts_choose_the_daemon_like_the_docker_cli() {
    let _daemon = DAEMON.lock().unwrap_or_else(|e| e.into_inner());
    let Some(lab) = Lab::new() else { return };
    let r = repo();
    let image = lab.image("api", "1.1.0", &[(REV, &r.rev("v1.1.0"))], "ctx");
    lab.run("api", &image, &[]);

    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    std::fs::create_dir(&certs).unwrap();
    certificates(&certs);
    let socket = dir.path().join("relay.sock");
    let _unix = Relay::start(&format!("UNIX-LISTEN:{},fork", socket.display()), || socket.exists());
    let tls = TlsRelay::start(&certs);
    let port = tls.port;
    let c = |f: &str| certs.join(f).display().to_string();

    // The contexts, made and checked by the real docker CLI.
    let config_dir = dir.path().join("docker-config");
    let tls_host = format!("tcp://127.0.0.1:{port}");
    let sock_host = format!("unix://{}", socket.display());
    docker_cli(
        &config_dir,
        &[
            "context",
            "create",
            "lab-tls",
            "--docker",
            &format!("host={tls_host},ca={},cert={},key={}", c("ca.pem"), c("client.pem"), c("client.key")),
        ],
    );
    docker_cli(&config_dir, &["context", "create", "lab-sock", "--docker", &format!("host={sock_host}")]);
    docker_cli(&config_dir, &["context", "use", "lab-sock"]);
    assert!(
        !docker_cli(&config_dir, &["--context", "lab-tls", "version", "--format", "{{.Server.APIVersion}}"]).is_empty()
    );
    let inspect: Value = serde_json::from_str(&docker_cli(&config_dir, &["context", "inspect", "lab-tls"])).unwrap();
    let tls_dir = PathBuf::from(inspect[0]["Storage"]["TLSPath"].as_str().unwrap());

    let cfg = lab.config(
        r.scratch(),
        &format!("[services.api]\nimage = \"{}/api\"\n[environments.local]\ndocker = [\"default\"]\n", lab.name),
    );
    let cfg_path = cfg.to_str().unwrap();
    let cd = config_dir.to_str().unwrap();
    let audit = |config: &str, env: &[(&str, &str)]| {
        let mut all = vec![("DOCKER_CONFIG", cd)];
        all.extend_from_slice(env);
        prodiff_env(r.path(), &["status", "--offline", "--format", "json", "--config", config], None, &all)
    };
    let api_instance =
        |report: &Value| row(report, "local", "api")["instances"][0]["name"].as_str().unwrap().to_string();

    // currentContext in config.json (docker context use).
    let run = audit(cfg_path, &[("DOCKER_HOST", ""), ("DOCKER_CONTEXT", "")]);
    let report = run.json();
    let config_json = config_dir.join("config.json").display().to_string();
    assert_eq!(daemons(&report), [(sock_host.clone(), Some("lab-sock".into()), config_json.clone())]);
    assert_eq!(api_instance(&report), format!("{sock_host}/{}-api", lab.name));
    assert_eq!(row(&report, "local", "api")["commit"], r.rev("v1.1.0").as_str());

    // DOCKER_CONTEXT over currentContext: through TLS with the context's client certificate.
    let report = audit(cfg_path, &[("DOCKER_HOST", ""), ("DOCKER_CONTEXT", "lab-tls")]).json();
    assert_eq!(daemons(&report), [(tls_host.clone(), Some("lab-tls".into()), "DOCKER_CONTEXT".into())]);
    assert_eq!(api_instance(&report), format!("{tls_host}/{}-api", lab.name), "{report:#}");

    // DOCKER_HOST over both.
    let report =
        audit(cfg_path, &[("DOCKER_HOST", "unix:///var/run/docker.sock"), ("DOCKER_CONTEXT", "lab-tls")]).json();
    assert_eq!(daemons(&report), [("unix:///var/run/docker.sock".into(), None, "DOCKER_HOST".into())]);

    // `{ context = "…" }` in prodiff.toml wins over DOCKER_HOST, like `docker --context`; the
    // table header says which daemon was audited.
    let pinned = lab.config(
        dir.path(),
        &format!(
            "[services.api]\nimage = \"{}/api\"\n[environments.local]\ndocker = [{{ context = \"lab-tls\" }}]\n",
            lab.name
        ),
    );
    let args = ["status", "--offline", "--config", pinned.to_str().unwrap()];
    let run = prodiff_env(r.path(), &args, None, &[("DOCKER_CONFIG", cd), ("DOCKER_HOST", "tcp://127.0.0.1:1")]);
    let header = run.stdout.lines().nth(1).unwrap_or_default();
    assert_eq!(header, format!("docker local: {tls_host} (context lab-tls, from prodiff.toml)"), "{}", run.context);
    let args = ["status", "--offline", "--format", "markdown", "--config", pinned.to_str().unwrap()];
    let run = prodiff_env(r.path(), &args, None, &[("DOCKER_CONFIG", cd), ("DOCKER_HOST", "tcp://127.0.0.1:1")]);
    let line = format!("- docker `local`: `{tls_host} (context lab-tls, from prodiff.toml)`");
    assert!(run.stdout.lines().any(|l| l == line), "{}", run.context);

    // A client certificate the CA did not sign: the TLS relay refuses, so the material is used.
    openssl(
        &certs,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "rogue.key",
            "-out",
            "rogue.pem",
            "-days",
            "2",
            "-subj",
            "/CN=rogue",
        ],
    );
    std::fs::copy(certs.join("rogue.pem"), tls_dir.join("docker/cert.pem")).unwrap();
    std::fs::copy(certs.join("rogue.key"), tls_dir.join("docker/key.pem")).unwrap();
    let report = audit(cfg_path, &[("DOCKER_HOST", ""), ("DOCKER_CONTEXT", "lab-tls")]).json();
    let refused = messages(&report, "source-unreachable");
    assert!(
        refused.len() == 1 && refused[0].starts_with(&format!("Docker host {tls_host} (context lab-tls): ")),
        "{report:#}"
    );
    assert_eq!(report["daemons"][0]["reachable"], false);

    // A context that does not exist is a configuration error naming it.
    let run = audit(cfg_path, &[("DOCKER_HOST", ""), ("DOCKER_CONTEXT", "lab-nope")]);
    run.expect_code(2);
    assert!(run.stderr.contains("Docker context \"lab-nope\" (from DOCKER_CONTEXT) does not exist"), "{}", run.context);
    assert!(run.stderr.contains("docker context ls"), "{}", run.context);
}
