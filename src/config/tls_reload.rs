//! A pool's TLS certificate, reloaded on SIGHUP without dropping a connection.
//!
//! rustls asks its certificate resolver for the certificate at every handshake, so the pool's
//! server configuration holds a [`ReloadingCert`] instead of a fixed certificate: a reload
//! reads the files again and swaps what the resolver hands out. Sessions already set up keep
//! the keys they agreed on, so no connection notices; the next handshake, on any core, gets
//! the new certificate. A reload that fails (a file missing or half written, a key that is
//! not the certificate's) changes nothing and says why.
//!
//! The lock is taken once per handshake, never per request, so cores still share nothing on
//! the request path. SIGHUP is taken by a thread of its own ([`watch_hangup`]) with
//! `sigwait`, as the stop signals are (`shutdown`), so no handler runs in an executor. The
//! same SIGHUP reloads the configuration file: the thread counts it ([`hangups`]) and core 0,
//! which owns reloads, sees the count change (`shard::reload`); the thread itself never waits
//! on an executor.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};

use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tracing::{info, warn};

use super::tls::{read_certs, read_key};

/// Every pool's reloading certificate, for SIGHUP to find (weak: a configuration dropped
/// takes its certificates with it).
static RELOADABLE: Mutex<Vec<Weak<ReloadingCert>>> = Mutex::new(Vec::new());

/// SIGHUPs received since start: core 0 reloads the configuration when the count changes.
static HANGUPS: AtomicU64 = AtomicU64::new(0);

/// SIGHUPs received since start.
pub fn hangups() -> u64 {
    HANGUPS.load(Ordering::Relaxed)
}

/// The certificate of one pool's listener, read from its files, again on each reload.
pub struct ReloadingCert {
    /// The pool, for the log lines.
    pool: String,
    cert: PathBuf,
    key: PathBuf,
    /// Parses the key (the pool's crypto provider).
    provider: Arc<CryptoProvider>,
    /// What handshakes get now.
    current: RwLock<Arc<CertifiedKey>>,
}

impl std::fmt::Debug for ReloadingCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReloadingCert")
            .field("cert", &self.cert)
            .field("key", &self.key)
            .finish()
    }
}

impl ReloadingCert {
    /// Reads `cert` and `key` for `pool` and registers them for reloading.
    pub(super) fn load(
        pool: &str,
        cert: PathBuf,
        key: PathBuf,
        provider: Arc<CryptoProvider>,
    ) -> Result<Arc<Self>, String> {
        let first = read(&cert, &key, &provider)?;
        let loaded = Arc::new(ReloadingCert {
            pool: pool.to_string(),
            cert,
            key,
            provider,
            current: RwLock::new(Arc::new(first)),
        });
        if let Ok(mut all) = RELOADABLE.lock() {
            all.retain(|w| w.strong_count() > 0);
            all.push(Arc::downgrade(&loaded));
        }
        Ok(loaded)
    }

    /// Reads the files again; on success, the next handshakes get what they hold.
    pub fn reload(&self) -> Result<(), String> {
        let fresh = read(&self.cert, &self.key, &self.provider)?;
        match self.current.write() {
            Ok(mut current) => *current = Arc::new(fresh),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(fresh),
        }
        Ok(())
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let current = self.current.read().unwrap_or_else(|p| p.into_inner());
        Some(current.clone())
    }
}

/// The chain and key, checked to belong together.
fn read(cert: &PathBuf, key: &PathBuf, provider: &CryptoProvider) -> Result<CertifiedKey, String> {
    CertifiedKey::from_der(read_certs(cert)?, read_key(key)?, provider)
        .map_err(|e| format!("{} and {}: {e}", cert.display(), key.display()))
}

/// Reloads every pool's certificate, logging each outcome.
pub fn reload_certificates() {
    let all: Vec<Arc<ReloadingCert>> = match RELOADABLE.lock() {
        Ok(all) => all.iter().filter_map(Weak::upgrade).collect(),
        Err(_) => return,
    };
    for cert in all {
        match cert.reload() {
            Ok(()) => {
                info!(pool = %cert.pool, cert = %cert.cert.display(), "TLS certificate reloaded")
            }
            Err(error) => {
                warn!(pool = %cert.pool, %error, "TLS certificate not reloaded; the previous one stays")
            }
        }
    }
}

/// Blocks SIGHUP in this thread (and so in every thread it starts, the executors too) and
/// starts the thread that reloads the certificates on each one. Call before starting the
/// executors; without it SIGHUP would end the process (its default).
pub fn watch_hangup() {
    // SAFETY: the sigset is initialised by sigemptyset before use; pthread_sigmask and
    // sigwait only read and write it.
    unsafe {
        // SIGTERM and SIGINT are blocked here too (`shutdown::install` blocks them again and
        // waits for them): a signal goes to any thread that does not block it, and this one
        // must not take them, nor the stop-signal thread SIGHUP, so all three are blocked
        // before either thread starts.
        let mut blocked: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut blocked);
        for signal in [libc::SIGHUP, libc::SIGTERM, libc::SIGINT] {
            libc::sigaddset(&mut blocked, signal);
        }
        if libc::pthread_sigmask(libc::SIG_BLOCK, &blocked, std::ptr::null_mut()) != 0 {
            warn!("cannot block SIGHUP; it will end the process instead of reloading certificates");
            return;
        }
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGHUP);
        // The kernel keeps 15 bytes of a thread's name: this one shows as percore-signals,
        // with the stop-signal thread, as the threads that are not executors.
        std::thread::Builder::new()
            .name("percore-signals-hup".into())
            .spawn(move || loop {
                let mut signal: libc::c_int = 0;
                if libc::sigwait(&set, &mut signal) == 0 {
                    info!("SIGHUP: reloading TLS certificates and the configuration file");
                    reload_certificates();
                    HANGUPS.fetch_add(1, Ordering::Relaxed);
                }
            })
            .map(drop)
            .unwrap_or_else(|e| warn!(error = %e, "cannot start the SIGHUP thread"));
    }
}
