//! The text of `INFO [section ...]`: which sections a request asks for, and each section's
//! lines, in Redis's format (`# Section\r\nkey:value\r\n...`, a blank line between sections).
//!
//! A client that asks percore for INFO asks the cluster as a whole, so each section comes
//! from where its figures mean something: the process it talks to (server, clients, cpu,
//! cluster, and a `# Proxy` section of percore's own) or the data (memory, persistence,
//! stats, replication, modules, commandstats, errorstats, keyspace: the masters' INFO merged
//! by [`super::info_merge`]). Latency statistics are percentiles, which do not add up across
//! masters, so percore has no such section.
//!
//! Pure: a [`Sections`] set, the [`Facts`] the shard gathered and the merged masters' text
//! in; the text out.

use std::fmt::Write;
use std::time::Duration;

use bytes::{Bytes, BytesMut};

use crate::command::table::GENERATED_FROM;
use crate::metrics::CoreStats;
use crate::resp::{encode, Protocol};

use super::admin::ProxyView;
use super::info_merge::Merged;

/// One INFO section percore can show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// The process: version, pid, port, uptime.
    Server,
    /// Client connections to the proxy.
    Clients,
    /// The masters' memory, summed.
    Memory,
    /// The masters' persistence.
    Persistence,
    /// The masters' statistics, summed.
    Stats,
    /// The masters' replicas.
    Replication,
    /// The proxy process's CPU time.
    Cpu,
    /// The modules loaded on the masters.
    Modules,
    /// The masters' command statistics, summed.
    Commandstats,
    /// The masters' error statistics, summed.
    Errorstats,
    /// Cluster mode (on; off for a static pool).
    Cluster,
    /// The masters' keys, summed.
    Keyspace,
    /// percore's own figures.
    Proxy,
}

/// Every section in the order Redis prints them (percore's own last, where Redis puts the
/// sections modules add).
const ORDER: [Section; 13] = [
    Section::Server,
    Section::Clients,
    Section::Memory,
    Section::Persistence,
    Section::Stats,
    Section::Replication,
    Section::Cpu,
    Section::Modules,
    Section::Commandstats,
    Section::Errorstats,
    Section::Cluster,
    Section::Keyspace,
    Section::Proxy,
];

/// What `INFO` and `INFO default` show: Redis's default sections, and percore's own.
const DEFAULT: [Section; 12] = [
    Section::Server,
    Section::Clients,
    Section::Memory,
    Section::Persistence,
    Section::Stats,
    Section::Replication,
    Section::Cpu,
    Section::Modules,
    Section::Errorstats,
    Section::Cluster,
    Section::Keyspace,
    Section::Proxy,
];

impl Section {
    /// The name a request uses, lowercase; also what the masters are asked for.
    fn name(self) -> &'static str {
        match self {
            Section::Server => "server",
            Section::Clients => "clients",
            Section::Memory => "memory",
            Section::Persistence => "persistence",
            Section::Stats => "stats",
            Section::Replication => "replication",
            Section::Cpu => "cpu",
            Section::Modules => "modules",
            Section::Commandstats => "commandstats",
            Section::Errorstats => "errorstats",
            Section::Cluster => "cluster",
            Section::Keyspace => "keyspace",
            Section::Proxy => "proxy",
        }
    }

    /// The section's header, as Redis writes it: the name capitalized (CPU in capitals).
    fn title(self) -> String {
        match self.name() {
            "cpu" => "CPU".into(),
            name => name[..1].to_uppercase() + &name[1..],
        }
    }

    /// True for the sections made from the masters' INFO.
    fn made_from_masters(self) -> bool {
        matches!(
            self,
            Section::Memory
                | Section::Persistence
                | Section::Stats
                | Section::Replication
                | Section::Modules
                | Section::Commandstats
                | Section::Errorstats
                | Section::Keyspace
        )
    }

    fn bit(self) -> u16 {
        1 << ORDER.iter().position(|&s| s == self).unwrap_or(0)
    }
}

/// The sections one request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sections(u16);

impl Sections {
    /// The sections `INFO <args>` asks for, as Redis 7 reads them: none means `default`;
    /// `all` and `everything` mean every section; names in any case, any number of them,
    /// repeats and unknown names ignored.
    pub fn parse<'a>(args: impl IntoIterator<Item = &'a [u8]>) -> Sections {
        let mut set = Sections(0);
        let mut any = false;
        for arg in args {
            any = true;
            let arg = arg.to_ascii_lowercase();
            match arg.as_slice() {
                b"default" => set.add_all(&DEFAULT),
                b"all" | b"everything" => set.add_all(&ORDER),
                // Redis 7 also calls the modules section by this name.
                b"module_list" => set.add_all(&[Section::Modules]),
                name => {
                    if let Some(&section) = ORDER.iter().find(|s| s.name().as_bytes() == name) {
                        set.add_all(&[section]);
                    }
                }
            }
        }
        if !any {
            set.add_all(&DEFAULT);
        }
        set
    }

    fn add_all(&mut self, sections: &[Section]) {
        for section in sections {
            self.0 |= section.bit();
        }
    }

    /// True if `section` is asked for.
    pub fn contains(self, section: Section) -> bool {
        self.0 & section.bit() != 0
    }

    /// The request that asks every master for the sections made from theirs, if any is
    /// asked for.
    pub fn masters_request(self) -> Option<Bytes> {
        let mut args: Vec<&[u8]> = vec![b"INFO"];
        args.extend(
            ORDER
                .iter()
                .filter(|s| s.made_from_masters() && self.contains(**s))
                .map(|s| s.name().as_bytes()),
        );
        if args.len() == 1 {
            return None;
        }
        let mut out = BytesMut::new();
        encode::command(&mut out, args.iter().copied());
        Some(out.freeze())
    }

    /// True if a section needs every core's figures (connected clients, requests).
    pub fn needs_cores(self) -> bool {
        self.contains(Section::Clients) || self.contains(Section::Proxy)
    }
}

/// CPU time used, as `getrusage` reports it.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuTimes {
    /// System time of the process.
    pub sys: Duration,
    /// User time of the process.
    pub user: Duration,
    /// System time of its waited-for children.
    pub sys_children: Duration,
    /// User time of its waited-for children.
    pub user_children: Duration,
}

/// What the shard found out about the process for one INFO.
#[derive(Debug, Clone)]
pub struct Facts {
    /// The serving core's view of the proxy.
    pub view: ProxyView,
    /// Process id.
    pub pid: u32,
    /// Path of the running binary.
    pub executable: String,
    /// Kernel name, release and machine, as Redis shows `os`.
    pub os: String,
    /// Time since the Unix epoch.
    pub now: Duration,
    /// `--max-clients`.
    pub max_clients: usize,
    /// The process's CPU time.
    pub cpu: CpuTimes,
    /// Every core's stats (empty when no section needs them).
    pub cores: Vec<CoreStats>,
    /// `cluster`, or a static pool's `standalone` (then `cluster_enabled:0`), as its servers
    /// would say, so clients that read INFO to choose cluster mode do not.
    pub redis_mode: &'static str,
}

/// The text of an INFO reply: the asked-for sections, in Redis's order.
pub fn info_text(sections: Sections, facts: &Facts, masters: &Merged) -> String {
    let mut parts: Vec<String> = Vec::new();
    for section in ORDER.into_iter().filter(|&s| sections.contains(s)) {
        let mut text = format!("# {}\r\n", section.title());
        match section {
            Section::Server => server(&mut text, facts),
            Section::Clients => clients(&mut text, facts),
            Section::Cpu => cpu(&mut text, &facts.cpu),
            Section::Cluster if facts.redis_mode == "cluster" => {
                text.push_str("cluster_enabled:1\r\n")
            }
            Section::Cluster => text.push_str("cluster_enabled:0\r\n"),
            Section::Proxy => proxy(&mut text, facts),
            _ => {
                for (key, value) in masters.section(section.name()) {
                    let _ = write!(text, "{key}:{value}\r\n");
                }
            }
        }
        parts.push(text);
    }
    parts.join("\r\n")
}

/// The reply: a bulk string in RESP2, a verbatim string in RESP3, as Redis sends INFO.
pub fn info_reply(text: &str, protocol: Protocol) -> Bytes {
    let mut out = BytesMut::with_capacity(text.len() + 20);
    encode::verbatim(&mut out, protocol, text.as_bytes());
    out.freeze()
}

fn server(text: &mut String, facts: &Facts) {
    let uptime = facts.view.uptime.as_secs();
    let _ = write!(
        text,
        "redis_version:{GENERATED_FROM}\r\nredis_mode:{}\r\nos:{}\r\narch_bits:{}\r\n\
         multiplexing_api:io_uring\r\nprocess_id:{}\r\nprocess_supervised:no\r\ntcp_port:{}\r\n\
         server_time_usec:{}\r\nuptime_in_seconds:{uptime}\r\nuptime_in_days:{}\r\n\
         executable:{}\r\nconfig_file:\r\nproxy:percore\r\npercore_version:{}\r\n",
        facts.redis_mode,
        facts.os,
        usize::BITS,
        facts.pid,
        facts.view.listen.port(),
        facts.now.as_micros(),
        uptime / 86_400,
        facts.executable,
        env!("CARGO_PKG_VERSION"),
    );
}

fn clients(text: &mut String, facts: &Facts) {
    let connected: u64 = facts.cores.iter().map(|c| c.clients).sum();
    let blocked: u64 = facts.cores.iter().map(|c| c.blocked_clients()).sum();
    let _ = write!(
        text,
        "connected_clients:{connected}\r\nmaxclients:{}\r\nblocked_clients:{blocked}\r\n",
        facts.max_clients
    );
}

fn cpu(text: &mut String, cpu: &CpuTimes) {
    let _ = write!(
        text,
        "used_cpu_sys:{:.6}\r\nused_cpu_user:{:.6}\r\nused_cpu_sys_children:{:.6}\r\n\
         used_cpu_user_children:{:.6}\r\n",
        cpu.sys.as_secs_f64(),
        cpu.user.as_secs_f64(),
        cpu.sys_children.as_secs_f64(),
        cpu.user_children.as_secs_f64(),
    );
}

fn proxy(text: &mut String, facts: &Facts) {
    let view = &facts.view;
    let total = |f: fn(&CoreStats) -> u64| facts.cores.iter().map(f).sum::<u64>();
    let _ = write!(
        text,
        "core:{}\r\nthreads:{}\r\npinned:{}\r\ntopology_epoch:{}\r\nmasters:{}\r\n\
         connections_received:{}\r\nrequests:{}\r\nmoved:{}\r\nasked:{}\r\n\
         backend_failures:{}\r\nauth_failures:{}\r\n",
        view.core,
        view.threads,
        if view.pinned { "yes" } else { "no" },
        view.epoch,
        view.masters.len(),
        total(|c| c.connections_total),
        total(|c| c.requests),
        total(|c| c.moved),
        total(|c| c.asked),
        total(|c| c.backend_failures),
        total(|c| c.auth_failures),
    );
}

#[cfg(test)]
#[path = "info_tests.rs"]
mod tests;
