//! TLS settings of a pool, both sides: `tls:` (clients connect to percore with TLS) and
//! `backend_tls:` (percore connects to the servers' `tls-port`), as written in the file or
//! given as flags ([`TlsFlags`], over the file's), and the rustls configurations built from
//! them once at start.
//!
//! The settings are kept as written ([`TlsSettings`]: paths and names), so a pool's
//! configuration compares and prints as text; the certificates are read and the rustls
//! configurations built when the runtime's `Config` is ([`settle`]), and each core's
//! connections share those through an `Arc` (the listener's certificate through a resolver
//! that SIGHUP reloads, `tls_reload`). The crypto provider is rustls's `ring` one: it
//! builds with a C compiler alone (aws-lc-rs needs cmake and more), and its cipher suites are
//! the ones Redis's OpenSSL builds offer by default.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls::crypto::{ring, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig, SupportedProtocolVersion};

use super::error::Problem;
use super::read::{Fields, Reader};
pub use super::tls_flags::TlsFlags;
use super::tls_reload::ReloadingCert;
use super::yaml::Entry;
use super::{Config, PoolConfig};
use crate::error::Error;

/// Longest a client may take to finish its TLS handshake before it is closed. A handshake is
/// two round trips and some milliseconds of CPU; a client that has not finished in 10 s is
/// stuck or holding a connection open on purpose (nginx and HAProxy bound it the same way).
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The protocol names `protocols:` takes, with rustls's versions. Both by default.
const PROTOCOLS: &[(&str, &SupportedProtocolVersion)] = &[
    ("tls1.2", &rustls::version::TLS12),
    ("tls1.3", &rustls::version::TLS13),
];

/// Keys of `tls:` (client side).
const CLIENT_KEYS: &[&str] = &["cert", "key", "ca", "protocols", "ciphers"];
/// Keys of `backend_tls:`.
const BACKEND_KEYS: &[&str] = &["ca", "cert", "key", "server_name", "protocols", "ciphers"];

/// One side's TLS settings as written; `None` or empty where not given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsSettings {
    /// Certificate chain percore presents (PEM).
    pub cert: Option<PathBuf>,
    /// Its private key (PEM).
    pub key: Option<PathBuf>,
    /// CA certificates (PEM): clients must present a certificate signed by one (client
    /// side); the servers' certificates must be signed by one (backend side).
    pub ca: Option<PathBuf>,
    /// Protocol versions allowed (`tls1.2`, `tls1.3`); empty: both.
    pub protocols: Vec<String>,
    /// Cipher suites allowed, by their IANA names as rustls spells them; empty: rustls's.
    pub ciphers: Vec<String>,
    /// The name the servers' certificates must carry (backend side); `None`: the host of
    /// each server's address.
    pub server_name: Option<String>,
}

/// TLS on percore's own listener, ready for the cores.
#[derive(Clone)]
pub struct ClientTls {
    /// The rustls configuration every client connection of the pool shares.
    pub config: Arc<ServerConfig>,
    /// What it was built from, for printing.
    settings: TlsSettings,
}

/// TLS to the pool's servers, ready for the cores.
#[derive(Clone)]
pub struct BackendTls {
    /// The rustls configuration every backend connection of the pool shares.
    pub config: Arc<ClientConfig>,
    /// What it was built from (and `server_name`).
    settings: TlsSettings,
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ClientTls").field(&self.settings).finish()
    }
}

impl std::fmt::Debug for BackendTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("BackendTls").field(&self.settings).finish()
    }
}

impl BackendTls {
    /// The name `node`'s certificate is checked against: `server_name:` if given, else the
    /// host of `node` (`host:port`, an IPv6 host in brackets).
    pub fn server_name(&self, node: &str) -> Result<ServerName<'static>, String> {
        let host = match &self.settings.server_name {
            Some(name) => name.as_str(),
            None => {
                let host = node.rsplit_once(':').map_or(node, |(host, _)| host);
                host.trim_start_matches('[').trim_end_matches(']')
            }
        };
        ServerName::try_from(host.to_string())
            .map_err(|_| format!("'{host}' is not a name a certificate can be checked for"))
    }
}

/// A pool's TLS settings, both sides, as its file gives them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PoolTls {
    /// `tls:`: TLS to clients; `None`: plain TCP.
    pub clients: Option<TlsSettings>,
    /// `backend_tls:`: TLS to the servers; `None`: plain TCP.
    pub backends: Option<TlsSettings>,
}

/// Reads a pool's `tls:` and `backend_tls:` (errors recorded in `reader`).
pub(super) fn read_pool_tls(reader: &mut Reader, fields: &Fields) -> PoolTls {
    PoolTls {
        clients: fields
            .get("tls")
            .and_then(|e| read_settings(reader, e, false)),
        backends: (fields.get("backend_tls")).and_then(|e| read_settings(reader, e, true)),
    }
}

/// Reads `tls:` (`backend: false`) or `backend_tls:`; `None` if it has errors (recorded).
fn read_settings(reader: &mut Reader, entry: &Entry, backend: bool) -> Option<TlsSettings> {
    let known = if backend { BACKEND_KEYS } else { CLIENT_KEYS };
    let fields = reader.fields(entry.line, &entry.value, known)?;
    let before = reader.errors.len();
    let path = |reader: &mut Reader, key| {
        let entry = fields.get(key)?;
        reader.text(entry).map(PathBuf::from)
    };
    let cert = path(reader, "cert");
    let key = path(reader, "key");
    let ca = path(reader, "ca");
    let names = |reader: &mut Reader, key| match fields.get(key) {
        Some(entry) => reader.list(entry).map_or_else(Vec::new, |items| {
            items
                .into_iter()
                .map(|(item, _)| item.to_string())
                .collect()
        }),
        None => Vec::new(),
    };
    let protocols = names(reader, "protocols");
    let ciphers = names(reader, "ciphers");
    let server_name = fields
        .get("server_name")
        .and_then(|e| reader.text(e).map(String::from));
    let settings = TlsSettings {
        cert,
        key,
        ca,
        protocols,
        ciphers,
        server_name,
    };
    if let Err(problem) = settings.check(backend) {
        reader.error(entry.line, Some(&entry.key), Problem::Tls(problem));
    }
    (reader.errors.len() == before).then_some(settings)
}

impl TlsSettings {
    /// What must go together: a certificate with its key, a client side with a certificate,
    /// a backend side with a CA; protocol and cipher names percore knows.
    fn check(&self, backend: bool) -> Result<(), String> {
        match (&self.cert, &self.key) {
            (Some(_), None) => return Err("cert needs key".into()),
            (None, Some(_)) => return Err("key needs cert".into()),
            (None, None) if !backend => return Err("needs cert and key".into()),
            _ => {}
        }
        if backend && self.ca.is_none() {
            return Err(
                "needs ca, the CA certificates the servers' certificates are checked \
                        against"
                    .into(),
            );
        }
        versions(&self.protocols)?;
        provider(&self.ciphers)?;
        Ok(())
    }

    /// These settings with `flags` over them (each flag given replaces its value).
    fn with_flags(
        mut self,
        cert: &Option<PathBuf>,
        key: &Option<PathBuf>,
        ca: &Option<PathBuf>,
    ) -> Self {
        self.cert = cert.clone().or(self.cert);
        self.key = key.clone().or(self.key);
        self.ca = ca.clone().or(self.ca);
        self
    }
}

/// The runtime's TLS for a pool: the file's settings (if any) with the flags over them, the
/// certificates read and the rustls configurations built. `pool` names the pool in errors.
pub fn settle(
    pool: &str,
    file: (Option<&TlsSettings>, Option<&TlsSettings>),
    flags: &TlsFlags,
) -> Result<(Option<ClientTls>, Option<BackendTls>), Error> {
    let fail = |side: &str, e: String| Error::Config(format!("pool '{pool}': {side}: {e}"));
    let client_given = flags.tls_cert.is_some()
        || flags.tls_key.is_some()
        || flags.tls_ca.is_some()
        || !flags.tls_protocols.is_empty()
        || !flags.tls_ciphers.is_empty();
    let client = match (file.0, client_given) {
        (None, false) => None,
        (file, _) => {
            let mut settings = file.cloned().unwrap_or_default().with_flags(
                &flags.tls_cert,
                &flags.tls_key,
                &flags.tls_ca,
            );
            if !flags.tls_protocols.is_empty() {
                settings.protocols = flags.tls_protocols.clone();
            }
            if !flags.tls_ciphers.is_empty() {
                settings.ciphers = flags.tls_ciphers.clone();
            }
            settings.check(false).map_err(|e| fail("tls", e))?;
            Some(client_tls(pool, settings).map_err(|e| fail("tls", e))?)
        }
    };
    let backend_given = flags.backend_tls_ca.is_some()
        || flags.backend_tls_cert.is_some()
        || flags.backend_tls_key.is_some()
        || flags.backend_tls_server_name.is_some();
    let backend = match (file.1, backend_given) {
        (None, false) => None,
        (file, _) => {
            let mut settings = file.cloned().unwrap_or_default().with_flags(
                &flags.backend_tls_cert,
                &flags.backend_tls_key,
                &flags.backend_tls_ca,
            );
            if flags.backend_tls_server_name.is_some() {
                settings.server_name = flags.backend_tls_server_name.clone();
            }
            settings.check(true).map_err(|e| fail("backend_tls", e))?;
            Some(backend_tls(settings).map_err(|e| fail("backend_tls", e))?)
        }
    };
    Ok((client, backend))
}

/// `config` with its TLS: the pool's `tls:` and `backend_tls:` with the flags over them, the
/// certificates read.
pub(super) fn with_tls(
    config: Config,
    pool: Option<&PoolConfig>,
    flags: &TlsFlags,
) -> Result<Config, Error> {
    let tls = pool.map(PoolConfig::tls);
    let file = (
        tls.and_then(|t| t.clients.as_ref()),
        tls.and_then(|t| t.backends.as_ref()),
    );
    let (tls, backend_tls) = settle(&config.name, file, flags)?;
    Ok(Config {
        tls,
        backend_tls,
        ..config
    })
}

/// The versions named (both when none are).
fn versions(names: &[String]) -> Result<Vec<&'static SupportedProtocolVersion>, String> {
    if names.is_empty() {
        return Ok(PROTOCOLS.iter().map(|(_, v)| *v).collect());
    }
    names
        .iter()
        .map(|name| {
            PROTOCOLS
                .iter()
                .find(|(known, _)| known.eq_ignore_ascii_case(name))
                .map(|(_, version)| *version)
                .ok_or_else(|| format!("unknown protocol '{name}' (tls1.2 or tls1.3)"))
        })
        .collect()
}

/// ring's provider with only the cipher suites named (all of ring's when none are).
fn provider(ciphers: &[String]) -> Result<Arc<CryptoProvider>, String> {
    let mut provider = ring::default_provider();
    if !ciphers.is_empty() {
        let name = |suite: &rustls::SupportedCipherSuite| format!("{:?}", suite.suite());
        let mut chosen = Vec::with_capacity(ciphers.len());
        for cipher in ciphers {
            match provider
                .cipher_suites
                .iter()
                .find(|s| name(s).eq_ignore_ascii_case(cipher))
            {
                Some(suite) => chosen.push(*suite),
                None => {
                    let known: Vec<String> = provider.cipher_suites.iter().map(name).collect();
                    return Err(format!(
                        "unknown cipher suite '{cipher}' (one of {})",
                        known.join(", ")
                    ));
                }
            }
        }
        provider.cipher_suites = chosen;
    }
    Ok(Arc::new(provider))
}

pub(super) fn read_certs(path: &PathBuf) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate in it", path.display()));
    }
    Ok(certs)
}

pub(super) fn read_key(path: &PathBuf) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn read_roots(path: &PathBuf) -> Result<Arc<RootCertStore>, String> {
    let mut roots = RootCertStore::empty();
    for cert in read_certs(path)? {
        roots
            .add(cert)
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(Arc::new(roots))
}

/// Both are set when [`TlsSettings::check`] passed.
fn cert_and_key(
    settings: &TlsSettings,
) -> Result<Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>, String> {
    match (&settings.cert, &settings.key) {
        (Some(cert), Some(key)) => Ok(Some((read_certs(cert)?, read_key(key)?))),
        _ => Ok(None),
    }
}

fn client_tls(pool: &str, settings: TlsSettings) -> Result<ClientTls, String> {
    let provider = provider(&settings.ciphers)?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions(&settings.protocols)?)
        .map_err(|e| e.to_string())?;
    let builder = match &settings.ca {
        Some(ca) => {
            let roots = read_roots(ca)?;
            let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider.clone())
                .build()
                .map_err(|e| e.to_string())?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let (Some(cert), Some(key)) = (&settings.cert, &settings.key) else {
        return Err("needs cert and key".into());
    };
    let cert = ReloadingCert::load(pool, cert.clone(), key.clone(), provider)?;
    let config = builder.with_cert_resolver(cert);
    Ok(ClientTls {
        config: Arc::new(config),
        settings,
    })
}

fn backend_tls(settings: TlsSettings) -> Result<BackendTls, String> {
    let ca = settings.ca.as_ref().ok_or("needs ca")?;
    let builder = ClientConfig::builder_with_provider(provider(&settings.ciphers)?)
        .with_protocol_versions(&versions(&settings.protocols)?)
        .map_err(|e| e.to_string())?
        .with_root_certificates(read_roots(ca)?);
    let config = match cert_and_key(&settings)? {
        Some((certs, key)) => builder
            .with_client_auth_cert(certs, key)
            .map_err(|e| e.to_string())?,
        None => builder.with_no_client_auth(),
    };
    Ok(BackendTls {
        config: Arc::new(config),
        settings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_goes_together_is_checked() {
        let path = |p: &str| Some(PathBuf::from(p));
        let client = TlsSettings {
            cert: path("c.pem"),
            key: path("k.pem"),
            ..TlsSettings::default()
        };
        assert_eq!(client.check(false), Ok(()));
        let no_key = TlsSettings {
            key: None,
            ..client.clone()
        };
        assert_eq!(no_key.check(false), Err("cert needs key".into()));
        assert!(TlsSettings::default().check(false).is_err());
        assert!(client.check(true).unwrap_err().starts_with("needs ca"));
        let bad = TlsSettings {
            protocols: vec!["ssl3".into()],
            ..client.clone()
        };
        assert!(bad
            .check(false)
            .unwrap_err()
            .contains("unknown protocol 'ssl3'"));
        let ciphers = TlsSettings {
            ciphers: vec!["TLS13_AES_128_GCM_SHA256".into(), "rc4".into()],
            ..client
        };
        let error = ciphers.check(false).unwrap_err();
        assert!(
            error.contains("unknown cipher suite 'rc4' (one of TLS13_"),
            "{error}"
        );
    }

    #[test]
    fn the_server_name_defaults_to_the_host_of_the_address() {
        let tls = |name: Option<&str>| BackendTls {
            config: Arc::new(
                ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
                    .with_safe_default_protocol_versions()
                    .unwrap()
                    .with_root_certificates(RootCertStore::empty())
                    .with_no_client_auth(),
            ),
            settings: TlsSettings {
                server_name: name.map(String::from),
                ..TlsSettings::default()
            },
        };
        let name = |tls: &BackendTls, node| tls.server_name(node).map(|n| n.to_str().into_owned());
        assert_eq!(name(&tls(None), "127.0.0.1:7000"), Ok("127.0.0.1".into()));
        assert_eq!(name(&tls(None), "[::1]:7000"), Ok("::1".into()));
        assert_eq!(
            name(&tls(None), "redis.local:6379"),
            Ok("redis.local".into())
        );
        let named = tls(Some("cache.example"));
        assert_eq!(name(&named, "10.0.0.1:6379"), Ok("cache.example".into()));
    }
}
