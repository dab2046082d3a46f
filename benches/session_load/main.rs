//! session_load: the load tool for the workloads redis-benchmark cannot express, run by
//! bench-scripts/sessions.sh against percore and straight against a node:
//!
//! - `pubsub`: one publisher fanning out to many subscribers (pubsub.rs);
//! - `tx`: MULTI / INCR / INCR / EXEC transactions from many clients (tx.rs).
//!
//! Each mode checks what it receives (every message once and in order, every transaction
//! atomic and counted), and prints one line of `key=value` results on stdout, including the
//! CPU per operation of the processes given with `--cpu NAME=PID[,PID...]`, sampled from
//! /proc at the edges of the measured phase (cpu.rs). Plain blocking connects, then a few
//! threads each polling its share of the sockets with epoll (poller.rs); no async runtime.
//!
//! A `[[bench]]` with `harness = false`, so it is built by `cargo bench` and never installed
//! with percore: `cargo bench --bench session_load -- pubsub --port 6381 --subscribers 1000`.
//! Without a mode (as `cargo bench` or `cargo test --benches` run every bench) it says how
//! to use it and succeeds.

mod cpu;
mod poller;
mod pubsub;
mod resp;
mod tx;

use std::net::TcpStream;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "session_load",
    about = "Pub/sub fan-out and transaction load for percore"
)]
struct Cli {
    #[command(subcommand)]
    mode: Option<Mode>,
}

#[derive(Subcommand)]
enum Mode {
    /// One publisher, many subscribers: delivered messages per second, CPU per delivery.
    Pubsub(pubsub::PubsubArgs),
    /// MULTI, INCR {tag}a, INCR {tag}b, EXEC from many clients: transactions per second.
    Tx(tx::TxArgs),
}

/// Options both modes take.
#[derive(clap::Args)]
struct Common {
    /// Server (percore or a node) to load.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    #[arg(long)]
    port: u16,
    /// Threads polling the connections (subscribers or transaction clients).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Processes whose CPU is reported per operation: NAME=PID[,PID...]; repeatable.
    #[arg(long = "cpu", value_name = "NAME=PIDS")]
    cpu: Vec<cpu::Group>,
    /// Seconds without progress after which the run is stopped and reported as failed.
    #[arg(long, default_value_t = 30)]
    timeout_secs: u64,
}

impl Common {
    fn connect(&self) -> Result<TcpStream, LoadError> {
        let stream = TcpStream::connect((self.host.as_str(), self.port))
            .map_err(LoadError::io("connecting"))?;
        stream
            .set_nodelay(true)
            .map_err(LoadError::io("set_nodelay"))?;
        Ok(stream)
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_secs)
    }
}

/// Why a run could not be completed (a run that completes with wrong results is reported in
/// its result line and exits 1 instead).
#[derive(Debug)]
enum LoadError {
    Usage(String),
    Io(&'static str, std::io::Error),
    Protocol(resp::ProtocolError),
    Reply(String),
    Timeout(String),
    Panic,
}

impl LoadError {
    /// A `map_err` adapter naming what was being done.
    fn io(doing: &'static str) -> impl Fn(std::io::Error) -> LoadError {
        move |error| LoadError::Io(doing, error)
    }
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoadError::Usage(text) => write!(f, "usage: {text}"),
            LoadError::Io(doing, error) => write!(f, "{doing}: {error}"),
            LoadError::Protocol(error) => write!(f, "unreadable reply: {}", error.0),
            LoadError::Reply(text) => write!(f, "unexpected reply: {text}"),
            LoadError::Timeout(text) => write!(f, "no progress: {text}"),
            LoadError::Panic => write!(f, "a load thread panicked"),
        }
    }
}

/// Counts of `0..total` that fall on each of `buckets` round-robin buckets.
fn spread(total: u64, buckets: usize) -> Vec<u64> {
    let buckets = buckets.max(1) as u64;
    (0..buckets)
        .map(|b| total / buckets + u64::from(b < total % buckets))
        .collect()
}

fn main() -> ExitCode {
    // `cargo bench` passes --bench to every harness-less bench; it means nothing here.
    let cli = Cli::parse_from(std::env::args().filter(|arg| arg != "--bench"));
    let outcome = match &cli.mode {
        None => {
            eprintln!(
                "session_load: no mode given, nothing to do (see --help; \
                 bench-scripts/sessions.sh runs it)"
            );
            return ExitCode::SUCCESS;
        }
        Some(Mode::Pubsub(args)) => pubsub::run(args),
        Some(Mode::Tx(args)) => tx::run(args),
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("session_load: the run completed with errors (see the result line)");
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("session_load: {error}");
            ExitCode::from(2)
        }
    }
}
