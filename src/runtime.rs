//! Process start-up: raise resource limits, check that io_uring can be set up, take over the
//! running percore's listening sockets if an upgrade socket is set and one answers there
//! (`upgrade`), bind the pools' Unix sockets (once for the process: every core accepts from
//! the same one), then start one pinned executor per core and wait on them; remove the Unix
//! socket files at the end (unless handed over).
//!
//! Failing early and clearly matters here: the most common start-up failure is a memlock
//! limit too small for io_uring, and the operator should read that, not a panic backtrace.

use std::sync::Arc;
use std::time::Duration;

use glommio::channels::channel_mesh::MeshBuilder;
use glommio::{LocalExecutorBuilder, Placement};
use tracing::{error, info, warn};

use crate::config::{Config, ListenAddr, ReloadSource};
use crate::control::mesh::{self, Message};
use crate::error::Error;
use crate::net::{SharedListener, UnixSocketFile, Uring};
use crate::shard::{executor, CoreStart};
use crate::{service, shard, shutdown, upgrade};

/// io_uring buffer memory per executor. percore does no file I/O, so glommio's default
/// (10 MiB, registered and therefore memlocked) is waste; 1 MiB per core keeps a 2-core
/// process well inside the common 8 MiB memlock limit.
pub const IO_MEMORY: usize = 1024 * 1024;

/// io_uring submission queue depth per executor.
const RING_DEPTH: usize = 256;

/// How often a busy executor stops running tasks to look at glommio's own events: timers and
/// cross-core messages. A core under load never parks through glommio (its driver waits in the
/// socket ring, see `uring`), so this bounds how late those are under load: a stats request
/// from `PROXY INFO`, a topology broadcast, a reconnect timer. glommio's default is 100 ms.
const PREEMPT_EVERY: Duration = Duration::from_millis(10);

/// Runs the proxy with one pool until a stop signal has been handled, or a core fails (then
/// with its error).
pub fn run(config: Config) -> Result<(), Error> {
    run_pools(vec![config])
}

/// Runs the proxy with every pool of `pools` on every core, until a stop signal has been
/// handled or a core fails. The process settings (threads, pinning) are the first pool's:
/// they come from one place, the file's `percore:` section or the flags.
pub fn run_pools(pools: Vec<Config>) -> Result<(), Error> {
    serve(pools, None)
}

/// [`run_pools`], reloading the configuration from `source` on SIGHUP and `PROXY CONFIG
/// RELOAD` (`shard::reload`).
pub fn run_reloadable(pools: Vec<Config>, source: ReloadSource) -> Result<(), Error> {
    serve(pools, Some(Arc::new(source)))
}

fn serve(pools: Vec<Config>, reload: Option<Arc<ReloadSource>>) -> Result<(), Error> {
    let Some(first) = pools.first() else {
        return Err(Error::Config("no pool to serve".into()));
    };
    let (threads, pin) = (first.threads, first.pin);
    let pools: Vec<Arc<Config>> = pools.into_iter().map(Arc::new).collect();
    raise_limit(libc::RLIMIT_NOFILE, "open files");
    raise_limit(libc::RLIMIT_MEMLOCK, "locked memory");
    let cores = pick_cores(threads)?;
    probe_io_uring()?;
    // An upgrade: the running percore's listening sockets, taken before anything is bound.
    let upgrade = pools[0]
        .upgrade_socket
        .as_deref()
        .map(upgrade::prepare)
        .transpose()?;
    let held = upgrade.as_ref().map_or(0, upgrade::Upgrade::held_readiness);
    service::expect_listeners(cores.len() * pools.len() + held);
    // Bound before the executors start, so a path in use stops the process here, with the
    // reason; dropped (the files removed) when this returns, however it returns.
    let mut unix_sockets = bind_unix_sockets(&pools)?;
    // SIGHUP first: the stop-signal thread must start with it blocked too, or the kernel
    // hands SIGHUP to that thread, where its default action ends the process.
    crate::config::watch_hangup();
    shutdown::install();
    // After the signal masks, which its thread inherits; kept (the file) until the end.
    let _upgrade_socket = upgrade.map(upgrade::Upgrade::start).transpose()?;
    for pool in &pools {
        info!(pool = %pool.name, threads = cores.len(), pinned = pin, listen = %pool.listen, seeds = ?pool.seeds, servers = pool.servers.as_ref().map_or(0, |s| s.addrs.len()), "starting percore pool");
    }

    // Every pool's cores talk over a mesh of its own, so pools share nothing but the cores.
    let meshes: Vec<MeshBuilder<Message, _>> = pools
        .iter()
        .map(|_| MeshBuilder::full(cores.len(), mesh::CHANNEL_CAPACITY))
        .collect();
    // And every core in one more, which outlives the pools: reloads travel on it.
    let control = MeshBuilder::full(cores.len(), mesh::CHANNEL_CAPACITY);
    let mut handles = Vec::with_capacity(cores.len());
    for (index, core) in cores.into_iter().enumerate() {
        let start = CoreStart {
            pools: pools.clone(),
            meshes: meshes.clone(),
            shared: share_unix_sockets(&unix_sockets)?,
            control: control.clone(),
            reload: reload.clone(),
        };
        let placement = if pin {
            Placement::Fixed(core)
        } else {
            Placement::Unbound
        };
        let builder = LocalExecutorBuilder::new(placement)
            .io_memory(IO_MEMORY)
            .ring_depth(RING_DEPTH)
            .preempt_timer(PREEMPT_EVERY);
        let handle = executor::spawn(&format!("percore-{index}"), builder, move || {
            shard::run_core(start)
        })
        .map_err(|e| Error::Executor {
            core,
            reason: e.to_string(),
        })?;
        handles.push((core, handle));
    }
    // The cores hold the Unix sockets now: each closes when its last core stops accepting.
    unix_sockets
        .iter_mut()
        .flatten()
        .for_each(UnixSocketFile::close);
    // A core that fails stops the others (they would wait for it in the mesh), which drain
    // and end; the first failure is what the process ends with.
    let watchers: Vec<_> = handles
        .into_iter()
        .map(|(core, handle)| {
            std::thread::spawn(move || {
                // Also what gets the core past its first turn if glommio parks it there.
                let result = handle
                    .join()
                    .map_err(|e| Error::Executor {
                        core,
                        reason: e.to_string(),
                    })
                    .and_then(|served| served);
                if let Err(e) = &result {
                    error!(core, error = %e, "core failed; stopping the others");
                    shutdown::request();
                }
                result
            })
        })
        .collect();
    let mut first_error = None;
    for watcher in watchers {
        let result = watcher.join().unwrap_or_else(|_| {
            Err(Error::Executor {
                core: 0,
                reason: "watcher thread panicked".into(),
            })
        });
        if let Err(e) = result {
            first_error.get_or_insert(e);
        }
    }
    info!("all cores stopped");
    if let Some(e) = upgrade::failure() {
        first_error.get_or_insert(e);
    }
    match first_error {
        Some(e) => Err(e),
        None if shutdown::immediate() => Err(Error::Interrupted),
        None => Ok(()),
    }
}

/// Each pool's Unix socket, bound and listening (`None` for a TCP pool).
fn bind_unix_sockets(pools: &[Arc<Config>]) -> Result<Vec<Option<UnixSocketFile>>, Error> {
    let bind = |pool: &Arc<Config>| match &pool.listen {
        ListenAddr::Tcp(_) => Ok(None),
        // Handed over by the percore this one takes over from (an upgrade), or bound.
        ListenAddr::Unix { path, permissions } => match upgrade::take_unix(path) {
            Some(socket) => UnixSocketFile::adopt(path, socket, *permissions),
            None => UnixSocketFile::bind(path, *permissions, pool.listen_backlog),
        }
        .map(Some)
        .map_err(|reason| Error::UnixListen {
            path: path.display().to_string(),
            reason,
        }),
    };
    pools.iter().map(bind).collect()
}

/// One core's descriptors of the pools' Unix sockets, in pool order.
fn share_unix_sockets(
    sockets: &[Option<UnixSocketFile>],
) -> Result<Vec<Option<SharedListener>>, Error> {
    let share =
        |socket: &Option<UnixSocketFile>| socket.as_ref().map(UnixSocketFile::share).transpose();
    sockets
        .iter()
        .map(share)
        .collect::<Result<_, _>>()
        .map_err(|e| Error::Config(format!("cannot share a Unix socket with a core: {e}")))
}

/// The first `threads` cores this process may run on.
fn pick_cores(threads: usize) -> Result<Vec<usize>, Error> {
    let available: Vec<usize> = core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id)
        .collect();
    if available.is_empty() {
        return Err(Error::Config(
            "cannot list the cores this process may use".into(),
        ));
    }
    if threads > available.len() {
        return Err(Error::Config(format!(
            "--threads {threads} but only {} cores are available",
            available.len()
        )));
    }
    Ok(available.into_iter().take(threads).collect())
}

/// Builds and drops one executor with the real settings, so a ring that cannot be set up is
/// reported before any thread starts.
fn probe_io_uring() -> Result<(), Error> {
    let probe = std::thread::spawn(|| {
        LocalExecutorBuilder::new(Placement::Unbound)
            .io_memory(IO_MEMORY)
            .ring_depth(RING_DEPTH)
            .make()
            .map(|executor| executor.run(glommio::timer::sleep(Duration::from_millis(1))))
            .map_err(|e| e.to_string())?;
        // Each core's own socket ring too, with the flags it is set up with.
        Uring::new().map(drop).map_err(|e| e.to_string())
    });
    let result = probe
        .join()
        .unwrap_or_else(|_| Err("the probe thread panicked".into()));
    result.map_err(|reason| Error::Executor {
        core: 0,
        reason: format!(
            "cannot set up io_uring ({reason}); check `ulimit -l` (locked memory, needs at \
             least {} KiB per thread) and that io_uring is not disabled \
             (sysctl kernel.io_uring_disabled)",
            IO_MEMORY / 1024 + 512
        ),
    })
}

/// Raises a soft resource limit to its hard limit, logging what it could not do.
fn raise_limit(resource: libc::__rlimit_resource_t, what: &str) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed to them.
    unsafe {
        if libc::getrlimit(resource, &mut limit) != 0 {
            return warn!(what, "cannot read resource limit");
        }
        if limit.rlim_cur >= limit.rlim_max {
            return;
        }
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        if libc::setrlimit(resource, &raised) != 0 {
            warn!(
                what,
                current = limit.rlim_cur,
                "cannot raise resource limit"
            );
        } else {
            info!(
                what,
                from = limit.rlim_cur,
                to = limit.rlim_max,
                "raised resource limit"
            );
        }
    }
}
