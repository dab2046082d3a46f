//! The TLS flags (`--tls-*`, `--backend-tls-*`): the `tls:` and `backend_tls:` keys of the
//! pool the flags describe, or of a file's one pool, over its values. A clap `Args` group the
//! binary flattens into its command line, so each flag's doc is its `--help` and the library
//! keeps the names next to the settings they set ([`super::tls`]).

use std::path::PathBuf;

/// The TLS flags, for the pool the flags describe (or the file's one pool, over its values).
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args)]
pub struct TlsFlags {
    /// Serve clients with TLS: the certificate chain (PEM) percore presents. Needs --tls-key.
    #[arg(long, value_name = "PATH")]
    pub tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, value_name = "PATH")]
    pub tls_key: Option<PathBuf>,
    /// Require client certificates signed by one of these CA certificates (PEM) [default:
    /// clients need none].
    #[arg(long, value_name = "PATH")]
    pub tls_ca: Option<PathBuf>,
    /// TLS versions clients may use [default: tls1.2,tls1.3].
    #[arg(long, value_delimiter = ',', value_name = "tls1.2,tls1.3")]
    pub tls_protocols: Vec<String>,
    /// Cipher suites clients may use, by IANA name (TLS13_AES_128_GCM_SHA256,
    /// TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, ...) [default: rustls's, all AEAD].
    #[arg(long, value_delimiter = ',', value_name = "SUITE,...")]
    pub tls_ciphers: Vec<String>,
    /// Connect to the backends with TLS (their tls-port), checking their certificates against
    /// these CA certificates (PEM).
    #[arg(long, value_name = "PATH")]
    pub backend_tls_ca: Option<PathBuf>,
    /// Client certificate (PEM) percore presents to the backends (for tls-auth-clients yes).
    #[arg(long, value_name = "PATH")]
    pub backend_tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --backend-tls-cert.
    #[arg(long, value_name = "PATH")]
    pub backend_tls_key: Option<PathBuf>,
    /// The name the backends' certificates must carry [default: the host of each node's
    /// address].
    #[arg(long, value_name = "NAME")]
    pub backend_tls_server_name: Option<String>,
}
