//! TLS on a [`Stream`], with rustls, over the same io_uring socket as plain TCP.
//!
//! rustls works on buffers (`read_tls`, `process_new_packets`, `reader`, `writer`,
//! `write_tls`), so the ring keeps doing every receive and send: received records go from the
//! socket into [`Tls::incoming`], are fed to the connection and come out as plaintext into the
//! caller's read buffer; plaintext to send is written into the connection, which encrypts it,
//! and the records go to the socket from [`Tls::outgoing`] in one send. No thread, no extra
//! task: the connection's own reader and writer drive it. The copies are the ones the buffered
//! rustls API makes (ciphertext into its deframer, plaintext out of it, records out of its
//! queue); nothing per request beyond that.
//!
//! A stream has a reader and a writer running at once, and both may have records to send (the
//! writer its replies, the reader a TLS 1.3 key update or an alert), so sending is one at a
//! time under [`Tls::sending`]: records leave the connection only in the order it made them.
//! A send dropped half done would leave a torn record on the wire, so the stream is then
//! marked broken and fails every later read and write, closing cleanly instead.
//!
//! Plain streams carry no `Tls` at all: the only cost to them is the `Option` check in
//! `Stream`'s read and send.

use std::cell::{Cell, RefCell};
use std::io::{self, BufRead, IoSlice, Write};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BufMut, BytesMut};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, Connection, ServerConfig, ServerConnection};

use super::connect::{connect as connect_tcp, ConnectError};
use super::ring::Uring;
use super::socket::Stream;
use crate::config::BackendTls;
use crate::sync::Signal;

/// Room asked for in [`Tls::incoming`] per receive: one TLS record is at most 16 KiB of
/// plaintext plus its header and tag, so one receive takes a whole record and often several.
const RECORD_READ: usize = 17 * 1024;

/// The TLS state of one connection.
pub(super) struct Tls {
    /// The rustls connection (server side for clients, client side for backends).
    conn: RefCell<Connection>,
    /// Records received and not yet taken by `conn` (it takes what it has room for).
    incoming: RefCell<BytesMut>,
    /// Records taken from `conn` and not yet sent; only the task holding `sending` touches it.
    outgoing: RefCell<BytesMut>,
    /// A task is sending `outgoing`: the other waits on `sent`.
    sending: Cell<bool>,
    /// Set each time a send ends.
    sent: Signal,
    /// A send was dropped half done: the record stream is torn.
    broken: Cell<bool>,
}

impl Tls {
    fn new(mut conn: Connection) -> Self {
        // Plaintext written is encrypted at once and sent before the write returns, so the
        // limit on what rustls may hold would only split a caller's batch.
        conn.set_buffer_limit(None);
        Tls {
            conn: RefCell::new(conn),
            incoming: RefCell::new(BytesMut::new()),
            outgoing: RefCell::new(BytesMut::new()),
            sending: Cell::new(false),
            sent: Signal::default(),
            broken: Cell::new(false),
        }
    }

    fn check(&self) -> io::Result<()> {
        if self.broken.get() {
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "TLS stream torn by a cancelled send",
            ));
        }
        Ok(())
    }

    /// Feeds the connection what it takes of `incoming` (at most about a record) and
    /// processes it; the records it has to send back (alerts, handshake, key updates) are left
    /// for [`Tls::flush`]. One call at a time, with the plaintext taken out in between, so the
    /// connection's plaintext buffer never fills and refuses records.
    fn feed(&self) -> io::Result<()> {
        let mut incoming = self.incoming.borrow_mut();
        let mut conn = self.conn.borrow_mut();
        let taken = conn.read_tls(&mut &incoming[..])?;
        incoming.advance(taken);
        conn.process_new_packets()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        Ok(())
    }

    /// Receives more records into `incoming`; false at end of stream.
    // Held across the receive on purpose: the kernel writes into `incoming`, and only the
    // stream's one reader (this, `feed`, the handshake, in turn) ever borrows it.
    #[allow(clippy::await_holding_refcell_ref)]
    async fn receive(&self, stream: &Stream) -> io::Result<bool> {
        let mut incoming = self.incoming.borrow_mut();
        Ok(stream.recv_into(&mut incoming, 0, RECORD_READ).await? > 0)
    }

    /// Moves the plaintext the connection holds into `buf`: how many bytes, and whether the
    /// peer has closed the session (its close_notify) after them.
    fn take_plaintext(&self, buf: &mut BytesMut) -> io::Result<(usize, bool)> {
        let mut conn = self.conn.borrow_mut();
        let mut reader = conn.reader();
        let mut taken = 0;
        loop {
            let chunk = match reader.fill_buf() {
                Ok(chunk) => chunk,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok((taken, false)),
                Err(e) => return Err(e),
            };
            if chunk.is_empty() {
                return Ok((taken, true));
            }
            let len = chunk.len();
            buf.extend_from_slice(chunk);
            reader.consume(len);
            taken += len;
        }
    }

    /// Sends every record the connection has made, in order, then returns. If the other task
    /// is sending, waits for it to finish first (it takes and sends ours too, as it sends until
    /// the connection has nothing left).
    // `outgoing` is borrowed across the send on purpose: the kernel reads it, and only the
    // holder of `sending` touches it (the guard's drop comes after the borrow's).
    #[allow(clippy::await_holding_refcell_ref)]
    async fn flush(&self, stream: &Stream) -> io::Result<()> {
        while self.sending.get() {
            self.sent.wait().await;
        }
        self.check()?;
        let mut guard = Sending::start(self);
        loop {
            {
                let mut outgoing = self.outgoing.borrow_mut();
                if outgoing.is_empty() {
                    let mut conn = self.conn.borrow_mut();
                    while conn.wants_write() {
                        conn.write_tls(&mut (&mut *outgoing).writer())?;
                    }
                }
                if outgoing.is_empty() {
                    break;
                }
            }
            let outgoing = self.outgoing.borrow();
            let sent = stream.send_raw(&outgoing).await?;
            drop(outgoing);
            if sent == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            self.outgoing.borrow_mut().advance(sent);
        }
        guard.done = true;
        Ok(())
    }

    /// Reads plaintext into `buf` (see [`Stream::read_into`]); 0 at the end of the stream or
    /// the session.
    pub(super) async fn read_into(
        &self,
        stream: &Stream,
        buf: &mut BytesMut,
        need: usize,
        grow: usize,
    ) -> io::Result<usize> {
        self.check()?;
        if buf.capacity() - buf.len() < need {
            buf.reserve(grow.max(need));
        }
        let mut total = 0;
        loop {
            let (taken, closed) = self.take_plaintext(buf)?;
            total += taken;
            if closed {
                return Ok(total);
            }
            if self.incoming.borrow().is_empty() {
                if total > 0 {
                    return Ok(total);
                }
                if !self.receive(stream).await? {
                    return Ok(0);
                }
            }
            let fed = self.feed();
            if self.conn.borrow().wants_write() {
                // An alert for a bad record goes out before the error closes the stream.
                let flushed = self.flush(stream).await;
                fed.and(flushed)?;
            } else {
                fed?;
            }
        }
    }

    /// Encrypts everything `iovecs` point to and sends it; returns its length.
    ///
    /// # Safety
    /// As [`Stream::send_iovecs`]: the memory behind `iovecs` is alive and unchanged until
    /// this returns (it is copied into the connection before the first await).
    pub(super) async unsafe fn send_iovecs(
        &self,
        stream: &Stream,
        iovecs: &[libc::iovec],
    ) -> io::Result<usize> {
        self.check()?;
        // SAFETY: `IoSlice` is ABI-compatible with `iovec` on Unix (std guarantees it), and
        // the memory behind each is the caller's, alive and unchanged (see above).
        let slices: &[IoSlice] =
            unsafe { std::slice::from_raw_parts(iovecs.as_ptr().cast::<IoSlice>(), iovecs.len()) };
        let total: usize = slices.iter().map(|s| s.len()).sum();
        {
            let mut conn = self.conn.borrow_mut();
            let mut writer = conn.writer();
            // All of it in one write: rustls makes a record per write call, so frame by frame
            // would cost a record (header, tag, one encryption) per reply at -P 16.
            let mut skip = writer.write_vectored(slices)?;
            // Only a buffer limit takes less, and it is off; should one ever take less, the
            // rest still goes, in order.
            if skip < total {
                for slice in slices {
                    if skip >= slice.len() {
                        skip -= slice.len();
                        continue;
                    }
                    writer.write_all(&slice[skip..])?;
                    skip = 0;
                }
            }
        }
        self.flush(stream).await?;
        Ok(total)
    }

    /// Encrypts and sends all of `data`.
    pub(super) async fn write_all(&self, stream: &Stream, data: &[u8]) -> io::Result<()> {
        self.check()?;
        self.conn.borrow_mut().writer().write_all(data)?;
        self.flush(stream).await
    }

    /// Runs the handshake to its end, or fails with why.
    async fn handshake(&self, stream: &Stream) -> io::Result<()> {
        loop {
            if self.conn.borrow().wants_write() {
                self.flush(stream).await?;
            }
            if !self.conn.borrow().is_handshaking() {
                return Ok(());
            }
            if self.incoming.borrow().is_empty() && !self.receive(stream).await? {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "peer closed the connection during the TLS handshake",
                ));
            }
            if let Err(e) = self.feed() {
                // Best effort: tell the peer why (the alert rustls queued), then fail.
                let _ = self.flush(stream).await;
                return Err(e);
            }
        }
    }
}

/// `sending` held by one task; released (and the stream marked broken if the send did not
/// finish) however the task's future ends.
struct Sending<'a> {
    tls: &'a Tls,
    done: bool,
}

impl<'a> Sending<'a> {
    fn start(tls: &'a Tls) -> Self {
        tls.sending.set(true);
        Sending { tls, done: false }
    }
}

impl Drop for Sending<'_> {
    fn drop(&mut self) {
        if !self.done && !self.tls.outgoing.borrow().is_empty() {
            self.tls.broken.set(true);
        }
        self.tls.sending.set(false);
        self.tls.sent.notify();
    }
}

/// Why a TLS session could not be set up, for the log line that names the peer.
fn setup_error(e: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, e)
}

/// Runs the server side of the handshake on a client connection, bounded by `timeout`.
pub async fn accept(
    mut stream: Stream,
    config: &Arc<ServerConfig>,
    timeout: Duration,
) -> io::Result<Stream> {
    let conn = ServerConnection::new(config.clone()).map_err(setup_error)?;
    stream.set_tls(Tls::new(conn.into()));
    handshake(stream, timeout).await
}

/// Runs the client side of the handshake on a backend connection, verifying the server's
/// certificate for `name`, bounded by `timeout`.
pub async fn connect(
    mut stream: Stream,
    config: &Arc<ClientConfig>,
    name: ServerName<'static>,
    timeout: Duration,
) -> io::Result<Stream> {
    let conn = ClientConnection::new(config.clone(), name).map_err(setup_error)?;
    stream.set_tls(Tls::new(conn.into()));
    handshake(stream, timeout).await
}

/// Connects to `node` (`host:port`, or a Unix socket's path) as [`super::connect()`] does and,
/// when the pool's backends speak TLS, runs the handshake, checking the node's certificate;
/// `timeout` bounds each.
pub async fn connect_node(
    uring: &Rc<Uring>,
    node: &str,
    timeout: Duration,
    tls: Option<&BackendTls>,
) -> Result<Stream, ConnectError> {
    let stream = connect_tcp(uring, node, timeout).await?;
    // A Unix socket server (`/path`) is local and plaintext: Redis has no TLS on its
    // `unixsocket`, so a pool's `backend_tls` is for its TCP servers.
    let Some(tls) = tls.filter(|_| !node.starts_with('/')) else {
        return Ok(stream);
    };
    let name = tls
        .server_name(node)
        .map_err(|e| ConnectError::Tls(io::Error::new(io::ErrorKind::InvalidInput, e)))?;
    connect(stream, &tls.config, name, timeout)
        .await
        .map_err(ConnectError::Tls)
}

async fn handshake(stream: Stream, timeout: Duration) -> io::Result<Stream> {
    let run = async {
        let tls = stream.tls().ok_or(io::ErrorKind::InvalidInput)?;
        tls.handshake(&stream).await
    };
    match glommio::timer::timeout(timeout, async { Ok(run.await) }).await {
        Ok(Ok(())) => Ok(stream),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "TLS handshake timed out",
        )),
    }
}
