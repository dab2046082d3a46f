//! TLS fixtures: certificates made in the test (rcgen), redis-servers and a Redis Cluster that
//! speak TLS only (`--port 0 --tls-port P`), redis-cli with `--tls`, and a blocking RESP
//! client over rustls for exact replies.
//!
//! Made here rather than checked in: a certificate in the tree expires and hides what the
//! test depends on (the names, the CA). Each test gets its own CA, a server certificate for
//! 127.0.0.1 and localhost, a client certificate signed by the CA and one signed by a CA
//! nobody trusts.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use tempfile::TempDir;

use super::{
    die_with_the_test, encode, frame_len, free_port, parse, require, wait_until, Value,
    READY_TIMEOUT, READ_TIMEOUT,
};

/// A CA and the certificates it signed, as PEM files in a temp dir.
pub struct Pki {
    dir: TempDir,
}

impl Pki {
    /// Makes `ca.pem`, `server.pem`/`server.key` (127.0.0.1, localhost), `client.pem`/
    /// `client.key` (signed by the CA), and another CA, `other-ca.pem`, with its
    /// `stranger.pem`/`stranger.key` (a client) and `server2.pem`/`server2.key` (127.0.0.1).
    pub fn new() -> Pki {
        let dir = TempDir::new().unwrap();
        let (ca_params, ca_key) = ca("percore test CA");
        std::fs::write(
            dir.path().join("ca.pem"),
            ca_params.self_signed(&ca_key).unwrap().pem(),
        )
        .unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let names = vec!["127.0.0.1".to_string(), "localhost".to_string()];
        write_leaf(dir.path(), "server", names, &issuer);
        write_leaf(dir.path(), "client", vec!["client".into()], &issuer);
        let (other_params, other_key) = ca("nobody's CA");
        let other_cert = other_params.self_signed(&other_key).unwrap();
        std::fs::write(dir.path().join("other-ca.pem"), other_cert.pem()).unwrap();
        let other = Issuer::new(other_params, other_key);
        write_leaf(dir.path(), "stranger", vec!["client".into()], &other);
        let names = vec!["127.0.0.1".to_string(), "localhost".to_string()];
        write_leaf(dir.path(), "server2", names, &other);
        Pki { dir }
    }

    /// The path of one of the files.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The path as text, for command lines.
    pub fn arg(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }
}

fn ca(name: &str) -> (CertificateParams, KeyPair) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    (params, KeyPair::generate().unwrap())
}

fn write_leaf(dir: &Path, name: &str, names: Vec<String>, issuer: &Issuer<KeyPair>) {
    let mut params = CertificateParams::new(names).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, issuer).unwrap();
    std::fs::write(dir.join(format!("{name}.pem")), cert.pem()).unwrap();
    std::fs::write(dir.join(format!("{name}.key")), key.serialize_pem()).unwrap();
}

/// redis-server's TLS options with the test's server certificate; `auth_clients` is
/// `tls-auth-clients` (whether clients must present a certificate signed by the CA).
fn tls_args(pki: &Pki, port: u16, auth_clients: bool) -> Vec<String> {
    let yes_no = if auth_clients { "yes" } else { "no" };
    [
        "--port",
        "0",
        "--tls-port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--tls-cert-file",
        &pki.arg("server.pem"),
        "--tls-key-file",
        &pki.arg("server.key"),
        "--tls-ca-cert-file",
        &pki.arg("ca.pem"),
        "--tls-auth-clients",
        yes_no,
        "--save",
        "",
        "--appendonly",
        "no",
        "--protected-mode",
        "no",
    ]
    .map(String::from)
    .to_vec()
}

/// A redis-server (standalone or a cluster node) reachable only over TLS.
pub struct TlsRedis {
    pub port: u16,
    dir: TempDir,
    child: Child,
}

impl TlsRedis {
    /// A standalone server; waits until it answers PING over TLS.
    pub fn start(pki: &Pki, auth_clients: bool) -> TlsRedis {
        TlsRedis::spawn(pki, auth_clients, &[])
    }

    fn spawn(pki: &Pki, auth_clients: bool, extra: &[&str]) -> TlsRedis {
        require("redis-server");
        let port = free_port();
        let dir = TempDir::new().unwrap();
        let child = die_with_the_test(Command::new("redis-server"))
            .args(tls_args(pki, port, auth_clients))
            .args(extra)
            .arg("--dir")
            .arg(dir.path())
            .arg("--logfile")
            .arg(dir.path().join("redis.log"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        let server = TlsRedis { port, dir, child };
        wait_until(
            &format!("TLS redis-server on {port}"),
            READY_TIMEOUT,
            || redis_cli(pki, port, true, &["PING"]).trim() == "PONG",
        );
        server
    }

    /// The server's log, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("redis.log")).unwrap_or_default()
    }
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Redis Cluster of masters that speak TLS only, their bus too (`--tls-cluster yes`), so
/// CLUSTER SLOTS names their TLS ports.
pub struct TlsCluster {
    pub nodes: Vec<TlsRedis>,
}

impl TlsCluster {
    /// Starts `masters` masters and waits until every one reports `cluster_state:ok`.
    pub fn start(pki: &Pki, masters: usize, auth_clients: bool) -> TlsCluster {
        require("redis-cli");
        let cluster_args = [
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-node-timeout",
            "2000",
            "--tls-cluster",
            "yes",
        ];
        let nodes: Vec<TlsRedis> = (0..masters)
            .map(|_| TlsRedis::spawn(pki, auth_clients, &cluster_args))
            .collect();
        let mut create = tls_cli(pki, true);
        create.args(["--cluster", "create"]);
        for node in &nodes {
            create.arg(format!("127.0.0.1:{}", node.port));
        }
        let output = create
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .expect("run redis-cli --cluster create");
        assert!(
            output.status.success(),
            "cluster create failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        for node in &nodes {
            wait_until("TLS cluster state ok", READY_TIMEOUT, || {
                redis_cli(pki, node.port, true, &["CLUSTER", "INFO"]).contains("cluster_state:ok")
            });
        }
        TlsCluster { nodes }
    }

    /// `--cluster` seeds.
    pub fn seeds(&self) -> String {
        let seeds: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        seeds.join(",")
    }
}

/// redis-cli with `--tls`, trusting the test's CA; with `client_cert`, presenting the test's
/// client certificate.
pub fn tls_cli(pki: &Pki, client_cert: bool) -> Command {
    let mut cli = Command::new("redis-cli");
    cli.args(["--tls", "--cacert", &pki.arg("ca.pem")]);
    if client_cert {
        cli.args([
            "--cert",
            &pki.arg("client.pem"),
            "--key",
            &pki.arg("client.key"),
        ]);
    }
    cli
}

/// Runs one command with redis-cli over TLS against 127.0.0.1:`port`; its output (stdout then
/// stderr).
pub fn redis_cli(pki: &Pki, port: u16, client_cert: bool, args: &[&str]) -> String {
    let output = tls_cli(pki, client_cert)
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .output()
        .expect("run redis-cli");
    text(&output)
}

/// stdout then stderr of a finished command.
pub fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A blocking RESP connection over rustls, trusting the test's CA.
pub struct TlsConn {
    stream: StreamOwned<ClientConnection, TcpStream>,
    buf: Vec<u8>,
}

impl TlsConn {
    /// Connects to 127.0.0.1:`port`, presenting `cert` (a name in the [`Pki`], e.g. "client")
    /// if given. The handshake itself runs on the first write or read.
    pub fn connect(pki: &Pki, port: u16, cert: Option<&str>) -> TlsConn {
        TlsConn::connect_trusting(pki, port, "ca.pem", cert)
    }

    /// [`TlsConn::connect`], trusting the CA in the [`Pki`]'s file `ca` instead.
    pub fn connect_trusting(pki: &Pki, port: u16, ca: &str, cert: Option<&str>) -> TlsConn {
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(pki.path(ca)).unwrap() {
            roots.add(cert.unwrap()).unwrap();
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots);
        let config = match cert {
            Some(name) => {
                let chain = CertificateDer::pem_file_iter(pki.path(&format!("{name}.pem")))
                    .unwrap()
                    .map(Result::unwrap)
                    .collect();
                let key = PrivateKeyDer::from_pem_file(pki.path(&format!("{name}.key"))).unwrap();
                builder.with_client_auth_cert(chain, key).unwrap()
            }
            None => builder.with_no_client_auth(),
        };
        let name = ServerName::try_from("127.0.0.1").unwrap();
        let conn = ClientConnection::new(Arc::new(config), name).unwrap();
        let tcp = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        tcp.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        TlsConn {
            stream: StreamOwned::new(conn, tcp),
            buf: Vec::new(),
        }
    }

    /// Sends one command (words split on spaces) and reads its reply; `Err` with the cause if
    /// the connection fails (a refused handshake, a close).
    pub fn try_cmd(&mut self, line: &str) -> Result<Value, String> {
        let args: Vec<&[u8]> = line.split(' ').map(str::as_bytes).collect();
        self.stream
            .write_all(&encode(&args))
            .map_err(|e| e.to_string())?;
        self.stream.flush().map_err(|e| e.to_string())?;
        let mut chunk = [0u8; 16 * 1024];
        loop {
            if let Some(len) = frame_len(&self.buf, 0) {
                let value = parse(&self.buf[..len], &mut 0);
                self.buf.drain(..len);
                return Ok(value);
            }
            match self.stream.read(&mut chunk) {
                Ok(0) => return Err("connection closed".into()),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) => return Err(e.to_string()),
            }
        }
    }

    /// [`TlsConn::try_cmd`], failing the test on a connection error.
    pub fn cmd(&mut self, line: &str) -> Value {
        self.try_cmd(line).unwrap_or_else(|e| panic!("{line}: {e}"))
    }
}
