//! `tx` mode: transactions of two INCRs. Each client loops `MULTI`, `INCR {tag}a`,
//! `INCR {tag}b`, `EXEC`, the four commands written together (`--pipeline` transactions in
//! flight per client), and checks every reply: `+OK`, `+QUEUED` twice, and EXEC's two
//! counters equal (the transaction ran atomically: no other client's INCR came between its
//! two). At the end both keys must hold the number of transactions run. Transactions per
//! second and CPU per transaction are measured from the first MULTI to the last EXEC reply.

use std::io::{self, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Barrier;
use std::thread;
use std::time::Instant;

use crate::cpu;
use crate::poller::{Poller, POLL_MS};
use crate::pubsub::{command, read_reply};
use crate::resp::{InBuf, Item, Reply};
use crate::{Common, LoadError};

/// Errors quoted in full in the report; the rest are only counted.
const ERRORS_SHOWN: usize = 5;
/// How long a write waits for room in a socket's send buffer: a server that reads nothing
/// for this long is stuck, and the run is stopped.
const WRITE_WAIT_MS: i32 = 10_000;

#[derive(clap::Args)]
pub struct TxArgs {
    #[command(flatten)]
    common: Common,
    /// Client connections.
    #[arg(long, default_value_t = 50)]
    clients: usize,
    /// Transactions in all, spread evenly over the clients.
    #[arg(long, default_value_t = 100_000)]
    transactions: u64,
    /// Transactions each client keeps in flight.
    #[arg(long, default_value_t = 1)]
    pipeline: u64,
    /// Hash tag of the two counters (`{tag}a`, `{tag}b`): one slot, one master.
    #[arg(long, default_value = "session-load")]
    tag: String,
}

struct Client {
    stream: TcpStream,
    buf: InBuf,
    quota: u64,
    sent: u64,
    done: u64,
    /// Replies of the oldest transaction in flight read so far (0-3).
    phase: u8,
}

#[derive(Default)]
struct Found {
    done: u64,
    errors: u64,
    quoted: Vec<String>,
}

/// The four commands of one transaction, as written.
fn block(tag: &str) -> Vec<u8> {
    let (a, b) = (format!("{{{tag}}}a"), format!("{{{tag}}}b"));
    let mut out = command(&[b"MULTI"]);
    out.extend(command(&[b"INCR", a.as_bytes()]));
    out.extend(command(&[b"INCR", b.as_bytes()]));
    out.extend(command(&[b"EXEC"]));
    out
}

pub fn run(args: &TxArgs) -> Result<bool, LoadError> {
    let common = &args.common;
    let (a, b) = (format!("{{{}}}a", args.tag), format!("{{{}}}b", args.tag));
    let mut setup = common.connect()?;
    let mut buf = InBuf::new();
    setup
        .write_all(&command(&[b"DEL", a.as_bytes(), b.as_bytes()]))
        .map_err(LoadError::io("DEL"))?;
    read_reply(&mut setup, &mut buf, |reply| match reply {
        Reply::One(Item::Int(_)) => Ok(()),
        other => Err(format!("DEL answered {other:?}")),
    })?;
    let threads = common.threads.max(1);
    let quotas = crate::spread(args.transactions, args.clients);
    let mut groups: Vec<Vec<Client>> = (0..threads).map(|_| Vec::new()).collect();
    for (index, quota) in quotas.into_iter().enumerate() {
        let stream = common.connect()?;
        stream
            .set_nonblocking(true)
            .map_err(LoadError::io("set_nonblocking"))?;
        let client = Client {
            stream,
            buf: InBuf::new(),
            quota,
            sent: 0,
            done: 0,
            phase: 0,
        };
        groups[index % threads].push(client);
    }
    let block = block(&args.tag);
    let stop = AtomicBool::new(false);
    let start_line = Barrier::new(threads + 1);
    let (block, stop, start_line) = (&block, &stop, &start_line);
    let (before, start, found) = thread::scope(|scope| {
        let workers: Vec<_> = groups
            .into_iter()
            .map(|group| scope.spawn(move || drive(group, block, args, stop, start_line)))
            .collect();
        let before = cpu::sample(&common.cpu);
        let start = Instant::now();
        start_line.wait();
        let mut found = Found::default();
        let mut failure = None;
        for worker in workers {
            match worker
                .join()
                .map_err(|_| LoadError::Panic)
                .and_then(|part| part)
            {
                Ok(part) => {
                    found.done += part.done;
                    found.errors += part.errors;
                    found.quoted.extend(part.quoted);
                }
                Err(error) => {
                    stop.store(true, Ordering::Relaxed);
                    failure.get_or_insert(error);
                }
            }
        }
        failure.map_or(Ok((before, start, found)), Err)
    })?;
    let secs = start.elapsed().as_secs_f64();
    let after = cpu::sample(&common.cpu);
    let mut finals = Vec::new();
    for key in [&a, &b] {
        setup
            .write_all(&command(&[b"GET", key.as_bytes()]))
            .map_err(LoadError::io("GET"))?;
        finals.push(read_reply(&mut setup, &mut buf, |reply| match reply {
            Reply::One(Item::Bulk(value)) => {
                Ok(String::from_utf8_lossy(value).parse().unwrap_or(-1))
            }
            Reply::One(Item::Nil) => Ok(0),
            other => Err(format!("GET answered {other:?}")),
        })?);
    }
    for quote in found.quoted.iter().take(ERRORS_SHOWN) {
        eprintln!("session_load tx: {quote}");
    }
    let total = args.transactions as i64;
    let verified = finals.iter().all(|&value| value == total) && found.done == args.transactions;
    println!(
        "mode=tx clients={} pipeline={} transactions={} secs={secs:.3} tx_per_s={:.0} errors={} \
         final_a={} final_b={} verified={}{}",
        args.clients,
        args.pipeline,
        found.done,
        found.done as f64 / secs,
        found.errors,
        finals[0],
        finals[1],
        if verified { "yes" } else { "no" },
        cpu::report(&common.cpu, &before, &after, found.done, secs),
    );
    Ok(verified && found.errors == 0)
}

/// One client thread: keeps each of its clients' transactions going until its quota is done.
fn drive(
    mut clients: Vec<Client>,
    block: &[u8],
    args: &TxArgs,
    stop: &AtomicBool,
    start_line: &Barrier,
) -> Result<Found, LoadError> {
    let mut poller = Poller::new().map_err(LoadError::io("epoll_create"))?;
    let mut ready = Vec::new();
    for (token, client) in clients.iter().enumerate() {
        poller
            .add(&client.stream, token)
            .map_err(LoadError::io("epoll_ctl"))?;
    }
    start_line.wait();
    let mut found = Found::default();
    let mut unfinished = 0;
    for client in &mut clients {
        unfinished += usize::from(client.quota > 0);
        while client.sent < client.quota.min(args.pipeline.max(1)) {
            send(client, block)?;
        }
    }
    let mut heard_at = Instant::now();
    while unfinished > 0 {
        if stop.load(Ordering::Relaxed) || heard_at.elapsed() > args.common.timeout() {
            return Err(LoadError::Timeout(format!(
                "{unfinished} clients did not finish"
            )));
        }
        poller
            .wait(POLL_MS, &mut ready)
            .map_err(LoadError::io("epoll_wait"))?;
        for &token in &ready {
            let client = &mut clients[token];
            match client.buf.fill(&mut client.stream) {
                Ok(0) => return Err(LoadError::Reply("connection closed by the server".into())),
                Ok(_) => heard_at = Instant::now(),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(LoadError::Io("reading a reply", e)),
            }
            let was_done = client.done == client.quota;
            while let Some(check) = client
                .buf
                .next(|reply| check(reply, client.phase))
                .map_err(LoadError::Protocol)?
            {
                if let Err(error) = check {
                    found.errors += 1;
                    if found.quoted.len() < ERRORS_SHOWN {
                        found.quoted.push(error);
                    }
                }
                client.phase = (client.phase + 1) % 4;
                if client.phase == 0 {
                    client.done += 1;
                    found.done += 1;
                    if client.sent < client.quota {
                        send(client, block)?;
                    }
                }
            }
            unfinished -= usize::from(!was_done && client.done == client.quota);
        }
    }
    Ok(found)
}

/// Whether reply number `phase` of a transaction is the one Redis gives.
fn check(reply: &Reply<'_>, phase: u8) -> Result<(), String> {
    match (phase, reply) {
        (0, Reply::One(Item::Simple(b"OK"))) | (1 | 2, Reply::One(Item::Simple(b"QUEUED"))) => {
            Ok(())
        }
        (
            3,
            Reply::Array {
                len: 2,
                items: [Item::Int(a), Item::Int(b), ..],
            },
        ) if a == b => Ok(()),
        (
            3,
            Reply::Array {
                len: 2,
                items: [Item::Int(a), Item::Int(b), ..],
            },
        ) => Err(format!(
            "EXEC gave a={a} b={b}: another transaction came between the INCRs"
        )),
        _ => Err(format!("reply {} of a transaction: {reply:?}", phase + 1)),
    }
}

/// Writes one transaction's block, waiting for room if the send buffer is full.
fn send(client: &mut Client, block: &[u8]) -> Result<(), LoadError> {
    let mut rest = block;
    while !rest.is_empty() {
        match client.stream.write(rest) {
            Ok(written) => rest = &rest[written..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let mut want = libc::pollfd {
                    fd: client.stream.as_raw_fd(),
                    events: libc::POLLOUT,
                    revents: 0,
                };
                // SAFETY: one valid pollfd for the duration of the call.
                if unsafe { libc::poll(&mut want, 1, WRITE_WAIT_MS) } <= 0 {
                    return Err(LoadError::Timeout("the server reads nothing".into()));
                }
            }
            Err(e) => return Err(LoadError::Io("sending a transaction", e)),
        }
    }
    client.sent += 1;
    Ok(())
}
