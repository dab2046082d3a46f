//! The admin ports, served by core 0 alone: nutcracker's stats port (`-s`/`-a`, JSON) and,
//! with `--metrics-listen`, HTTP `/metrics` and `/health`.
//!
//! Both show one [`Snapshot`], gathered the way `PROXY INFO` gathers: for each pool this core
//! serves now (a reload adds and removes them), this core's shard of it asks every core of the
//! pool's mesh for its [`CoreStats`], so a stats
//! request never reads another core's request-path state, it only waits for the answers. The
//! JSON is gathered at most once per `-i` interval (nutcracker's aggregation interval), however
//! many connect; a scrape gathers anew each time (scrapers pace themselves).
//!
//! [`CoreStats`]: crate::metrics::CoreStats

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tracing::{info, warn};

use crate::config::Config;
use crate::control::http::{self, Status};
use crate::control::{nutstats, prometheus};
use crate::error::Error;
use crate::metrics::{PoolSnapshot, Snapshot};
use crate::net::{Accepted, Listener, Stream, Uring};
use crate::shutdown;
use crate::upgrade::{self, Role};

use super::pools::Core;
use super::{eject, Shard};

/// Most admin connections (stats and HTTP together) served at once; more are closed at once.
/// Scrapers, probes and dashboards make a few; this bounds what a flood of them can hold.
const MAX_CONNECTIONS: usize = 64;

/// Pause after a failed accept (out of file descriptors, say), so the loop does not spin
/// while the condition lasts.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(10);

/// What the admin ports serve from.
struct Observer {
    /// The core's pools and its configuration epoch.
    core: Rc<Core>,
    /// How often the JSON is gathered anew (nutcracker's `-i`, process-wide).
    interval: Duration,
    /// The host name, nutcracker's `source`.
    source: String,
    /// The last JSON and when it was gathered.
    json: RefCell<Option<(Instant, Rc<str>)>>,
    /// Admin connections open now.
    open: Cell<usize>,
}

/// Binds the admin ports (the process settings, `first`'s, are every pool's: they are the
/// process's) and serves them on this core. The stats port, on by default with a
/// configuration file as nutcracker's is, is skipped with a warning if it cannot be bound;
/// `--metrics-listen`, asked for, must bind.
pub(super) fn spawn(core: &Rc<Core>, first: &Config) -> Result<(), Error> {
    let uring = &core.uring;
    let observer = Rc::new(Observer {
        core: core.clone(),
        interval: first.stats_interval,
        source: hostname(),
        json: RefCell::new(None),
        open: Cell::new(0),
    });
    if let Some(addr) = &first.stats_listen {
        match bind(addr, uring) {
            Ok(listener) => {
                info!(stats = ?listener.local_addr(), "serving nutcracker stats");
                glommio::spawn_local(accept(observer.clone(), listener, serve_stats)).detach();
            }
            Err(reason) => warn!(stats = %addr, %reason, "stats port not served"),
        }
    }
    if let Some(addr) = &first.metrics_listen {
        let listener = bind(addr, uring)
            .map_err(|reason| Error::Config(format!("--metrics-listen {addr}: {reason}")))?;
        info!(metrics = ?listener.local_addr(), "serving /metrics and /health");
        glommio::spawn_local(accept(observer, listener, serve_http)).detach();
    }
    Ok(())
}

/// Binds `addr` (`host:port`, the host resolved once) for this core alone, or takes the
/// socket the process this one took over from had there (an upgrade).
fn bind(addr: &str, uring: &Rc<Uring>) -> Result<Listener, String> {
    let resolved: Option<SocketAddr> = addr.to_socket_addrs().map_err(|e| e.to_string())?.next();
    let addr = resolved.ok_or_else(|| "no address".to_string())?;
    if let Some(socket) = upgrade::take_admin(addr) {
        return Ok(Listener::adopt(socket, uring.clone()));
    }
    Listener::bind_one(addr, uring.clone()).map_err(|e| e.to_string())
}

/// Accepts connections and serves each with `serve`, [`MAX_CONNECTIONS`] at most at once,
/// until the process hands its sockets over to a new one (an upgrade: the new process
/// answers from then on, and `/health` there says it serves).
async fn accept<F, Fut>(observer: Rc<Observer>, listener: Listener, serve: F)
where
    F: Fn(Rc<Observer>, Stream) -> Fut + Copy + 'static,
    Fut: std::future::Future<Output = ()> + 'static,
{
    let registration = upgrade::register(Role::Admin, &listener);
    let mut stop = std::pin::pin!(upgrade::handed_over_wait());
    loop {
        let (stream, last) = match listener.accept_until(stop.as_mut()).await {
            Accepted::Stream(Ok(stream)) => (stream, false),
            Accepted::Stream(Err(_)) => {
                glommio::timer::sleep(ACCEPT_ERROR_PAUSE).await;
                continue;
            }
            // Taken off the queue as the accept stopped: answered, not dropped.
            Accepted::Stopped(Some(stream)) => (stream, true),
            Accepted::Stopped(None) => break,
        };
        if observer.open.get() < MAX_CONNECTIONS {
            observer.open.set(observer.open.get() + 1);
            let observer = observer.clone();
            glommio::spawn_local(async move {
                serve(observer.clone(), stream).await;
                observer.open.set(observer.open.get() - 1);
            })
            .detach();
        }
        if last {
            break;
        }
    }
    drop(registration);
}

/// The stats port: the JSON, then close, as nutcracker does.
async fn serve_stats(observer: Rc<Observer>, stream: Stream) {
    let json = observer.json().await;
    let _ = stream.write_all(json.as_bytes()).await;
}

/// One HTTP request: `/metrics`, `/health`, or an error status.
async fn serve_http(observer: Rc<Observer>, stream: Stream) {
    let text = "text/plain; charset=utf-8";
    let request = match http::read_request(&stream).await {
        Ok(request) => request,
        Err(status) => return http::respond(&stream, status, text, b"", false).await,
    };
    match request.path.as_str() {
        "/metrics" => {
            let body = prometheus::render(observer.snapshot().await);
            let kind = prometheus::CONTENT_TYPE;
            http::respond(&stream, Status::Ok, kind, body.as_bytes(), request.head).await;
        }
        "/health" => {
            let snapshot = observer.snapshot().await;
            let (status, body): (_, &[u8]) = match (snapshot.healthy(), snapshot.draining) {
                (true, _) => (Status::Ok, b"ok\n"),
                (false, true) => (Status::Unavailable, b"draining\n"),
                (false, false) => (Status::Unavailable, b"not serving every pool yet\n"),
            };
            http::respond(&stream, status, text, body, request.head).await;
        }
        _ => http::respond(&stream, Status::NotFound, text, b"", request.head).await,
    }
}

impl Observer {
    /// The stats JSON: the last one if younger than the stats interval, else gathered anew.
    async fn json(&self) -> Rc<str> {
        let interval = self.interval;
        if let Some((at, json)) = &*self.json.borrow() {
            if at.elapsed() < interval {
                return json.clone();
            }
        }
        let snapshot = self.snapshot().await;
        let json: Rc<str> = Rc::from(nutstats::render(&snapshot, &self.source));
        *self.json.borrow_mut() = Some((Instant::now(), json.clone()));
        json
    }

    /// Every pool's stats from every core, gathered now.
    async fn snapshot(&self) -> Snapshot {
        let served = self.core.pools();
        let mut pools = Vec::with_capacity(served.len());
        for (config, shard) in served {
            let cores = match &shard {
                Some(shard) => shard.gather_stats(false).await,
                None => Vec::new(),
            };
            let servers = config.servers.as_ref().map(|servers| {
                let names = servers.specs.iter().map(|spec| spec.nutcracker_name());
                names.zip(servers.addrs.iter().cloned()).collect()
            });
            let (ejects, ejected_at) = shard.as_deref().map_or_else(Default::default, ejections);
            pools.push(PoolSnapshot {
                name: config.name.clone(),
                threads: config.threads,
                servers,
                cores,
                ejects,
                ejected_at,
            });
        }
        let timestamp = SystemTime::now().duration_since(UNIX_EPOCH);
        let epoch = self.core.epoch();
        Snapshot {
            uptime: self.core.started.elapsed(),
            config_epoch: epoch.epoch,
            config_reload_failures: super::reload::reload_failures(),
            timestamp: timestamp.map_or(0, |t| t.as_secs()),
            pools,
            draining: shutdown::requested(),
        }
    }
}

/// A static pool's ejections as this core applied them (every core applies the same): how many
/// so far, and when each server out of the ring now went out, in microseconds since the Unix
/// epoch.
fn ejections(shard: &Shard) -> (u64, BTreeMap<String, u64>) {
    let Some(view) = eject::pool_view(shard) else {
        return Default::default();
    };
    let retry = shard
        .config()
        .servers
        .as_ref()
        .and_then(|s| s.eject)
        .map_or(Duration::ZERO, |policy| policy.retry_timeout);
    let now = SystemTime::now();
    let at = view.ejected.into_iter().map(|server| {
        // Out until `now + retry_in`, so out since `now + retry_in - retry`.
        let since = now - retry.saturating_sub(server.retry_in);
        let micros = since
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_micros());
        (server.addr, micros as u64)
    });
    (view.ejects, at.collect())
}

/// This host's name (nutcracker's `source`), or `unknown` if it has none.
fn hostname() -> String {
    let mut name = [0u8; 256];
    // SAFETY: gethostname writes at most `name.len()` bytes into `name`.
    let result = unsafe { libc::gethostname(name.as_mut_ptr().cast(), name.len()) };
    let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
    match result {
        0 if end > 0 => String::from_utf8_lossy(&name[..end]).into_owned(),
        _ => "unknown".into(),
    }
}
