//! Sockets on the core's own io_uring ([`super::ring`]): the listener, client and backend
//! connections, and their reads and writes. TCP, or Unix sockets (a pool's shared
//! [`super::unix`] listener, servers named by a path): the same operations on either, the
//! kind told apart once, when the connection is made.
//!
//! A connection's reader and writer are two futures of one task that share a `&Stream`; each
//! read or write is one io_uring operation, submitted with every other operation the core
//! queued in the same round. Receives ask the kernel to wait for data before trying
//! (`IORING_RECVSEND_POLL_FIRST`): at `-P 1` the next request is never there yet when the
//! receive is queued, so trying first would only cost a failed attempt each time.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::pin::Pin;
use std::rc::Rc;
use std::task::Poll;
use std::time::Duration;

use bytes::BytesMut;
use io_uring::{opcode, types, types::Fd};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::op::Op;
use super::ring::Uring;
use super::tls::Tls;
use super::unix::SharedListener;

/// Most bytes read in one call: bounds how much of a buffer one receive may claim.
pub const READ_CHUNK: usize = 64 * 1024;

/// Free room below which the read buffer is grown before reading. Small next to the sizes
/// buffers are grown by, so one buffer takes many small requests or replies before it must
/// grow again: a frame split off the buffer shares its memory until it is answered, so
/// growing while frames are out means a new allocation, while growing once they are all
/// answered reuses the old one in place.
const MIN_READ_ROOM: usize = 1024;

/// Pending connections the kernel queues before accepting on the admin ports and the upgrade
/// endpoint (the pools' listeners take their pool's `listen_backlog`).
pub(super) const LISTEN_BACKLOG: i32 = 1024;

/// `IORING_RECVSEND_POLL_FIRST`: wait for readiness before the first receive attempt.
const RECVSEND_POLL_FIRST: u16 = 1;

/// A listening socket of one core: a TCP one bound with SO_REUSEPORT, so every core binds the
/// same address and the kernel spreads connections across them, or its share of a pool's Unix
/// socket, accepted from by every core.
pub struct Listener {
    socket: Socket,
    uring: Rc<Uring>,
    /// TCP: accepted connections get Nagle turned off (a Unix socket has no Nagle).
    tcp: bool,
}

impl Listener {
    /// Binds `addr` with SO_REUSEADDR and SO_REUSEPORT and starts listening, queueing up to
    /// `backlog` connections.
    pub fn bind(addr: SocketAddr, backlog: i32, uring: Rc<Uring>) -> io::Result<Self> {
        Listener::bind_tcp(addr, true, backlog, uring)
    }

    /// This core's share of a pool's Unix socket, already listening.
    pub fn shared(share: SharedListener, uring: Rc<Uring>) -> Self {
        Listener {
            socket: share.0,
            uring,
            tcp: false,
        }
    }

    /// A listening socket an older process handed over (an upgrade), as it is: bound,
    /// listening, its queue of connections intact.
    pub fn adopt(socket: Socket, uring: Rc<Uring>) -> Self {
        let tcp = socket
            .local_addr()
            .is_ok_and(|addr| addr.as_socket().is_some());
        Listener { socket, uring, tcp }
    }

    /// Binds `addr` for one core alone (SO_REUSEADDR, no SO_REUSEPORT) and starts listening:
    /// for the admin ports (stats, metrics), served by one core, where a second process
    /// binding the same port must fail rather than take half the connections.
    pub fn bind_one(addr: SocketAddr, uring: Rc<Uring>) -> io::Result<Self> {
        Listener::bind_tcp(addr, false, LISTEN_BACKLOG, uring)
    }

    /// A TCP listener on `addr`, SO_REUSEADDR, and SO_REUSEPORT when `shared_port`.
    fn bind_tcp(
        addr: SocketAddr,
        shared_port: bool,
        backlog: i32,
        uring: Rc<Uring>,
    ) -> io::Result<Self> {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        socket.set_reuse_address(true)?;
        if shared_port {
            socket.set_reuse_port(true)?;
        }
        socket.bind(&addr.into())?;
        socket.listen(backlog)?;
        Ok(Listener {
            socket,
            uring,
            tcp: true,
        })
    }

    /// The address it is bound to.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.socket.local_addr().ok()?.as_socket()
    }

    /// The next connection (for tests: the accept loops use [`Listener::accept_until`], which
    /// stops without dropping a connection).
    #[cfg(test)]
    pub async fn accept(&self) -> io::Result<Stream> {
        let mut op = AcceptOp(self.accept_op());
        let fd = (&mut op.0).await?;
        Ok(self.accepted(fd))
    }

    /// The next connection, or [`Accepted::Stopped`] once `stop` completes. A connection the
    /// kernel gave the accept as it was being cancelled comes back with `Stopped`, to be
    /// served: it has left the listener's queue, so this process is the only one that can
    /// (closing it would drop a client that connected while another process, on an upgrade,
    /// was there to accept it).
    pub async fn accept_until(&self, stop: Pin<&mut impl Future<Output = ()>>) -> Accepted {
        let mut op = AcceptOp(self.accept_op());
        let mut stop = stop;
        let done = std::future::poll_fn(|cx| {
            if let Poll::Ready(result) = Pin::new(&mut op.0).poll(cx) {
                return Poll::Ready(Some(result));
            }
            stop.as_mut().poll(cx).map(|()| None)
        });
        match done.await {
            Some(result) => Accepted::Stream(result.map(|fd| self.accepted(fd))),
            None => match op.0.cancel() {
                Some(Ok(fd)) => Accepted::Stopped(Some(self.accepted(fd))),
                _ => Accepted::Stopped(None),
            },
        }
    }

    /// An accept of a connection on this listener, close-on-exec.
    fn accept_op(&self) -> Op<'_> {
        let entry = opcode::Accept::new(
            Fd(self.socket.as_raw_fd()),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
        .flags(libc::SOCK_CLOEXEC)
        .build();
        // SAFETY: the entry points to no memory.
        unsafe { Op::new(&self.uring, entry) }
    }

    /// The stream of a descriptor an accept returned.
    fn accepted(&self, fd: usize) -> Stream {
        // SAFETY: a successful accept returns a new descriptor that nothing else owns.
        let socket = unsafe { Socket::from_raw_fd(fd as i32) };
        Stream::new(socket, self.uring.clone(), self.tcp)
    }
}

/// What [`Listener::accept_until`] got.
pub enum Accepted {
    /// A connection, or why the accept failed.
    Stream(io::Result<Stream>),
    /// Told to stop; with the connection the cancelled accept had already taken, if any.
    Stopped(Option<Stream>),
}

impl AsRawFd for Listener {
    /// The listening socket's descriptor, to hand to a new process on an upgrade.
    fn as_raw_fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }
}

/// An accept whose connection, if it arrives as the accept is dropped, is closed, not leaked.
struct AcceptOp<'a>(Op<'a>);

impl Drop for AcceptOp<'_> {
    fn drop(&mut self) {
        if let Some(Ok(fd)) = self.0.cancel() {
            // SAFETY: the accept returned this descriptor and nothing else has it.
            drop(unsafe { Socket::from_raw_fd(fd as i32) });
        }
    }
}

/// One end of a client connection, as Redis shows it: an IP address and port, or the Unix
/// socket's path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A TCP end.
    Ip(SocketAddr),
    /// A Unix socket, named by the listening socket's path (a client's own end is unnamed).
    Unix(Rc<str>),
}

impl fmt::Display for Endpoint {
    /// `ip:port`, or `path:0` as Redis shows a Unix socket client's `addr` and `laddr`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Ip(addr) => write!(f, "{addr}"),
            Endpoint::Unix(path) => write!(f, "{path}:0"),
        }
    }
}

/// How a stream's operations name its socket: a slot of the ring's file table, or the
/// descriptor when it has none ([`super::files`]).
#[derive(Clone, Copy, Debug)]
enum File {
    Fixed(u32),
    Raw(i32),
}

/// Builds an operation's entry on a stream's socket. io_uring's opcodes take a slot or a
/// descriptor as two types, so each arm builds its own.
macro_rules! on_file {
    ($file:expr, $target:ident => $entry:expr) => {
        match $file {
            File::Fixed(slot) => {
                let $target = types::Fixed(slot);
                $entry
            }
            File::Raw(fd) => {
                let $target = Fd(fd);
                $entry
            }
        }
    };
}

/// One connection (TCP or Unix), used by one task's reader and writer.
pub struct Stream {
    socket: Socket,
    /// What its operations name.
    file: File,
    uring: Rc<Uring>,
    /// The TLS session over the socket, if the connection has one ([`super::tls`]); boxed so a
    /// plain stream stays small, and checked once per read or send.
    tls: Option<Box<Tls>>,
}

impl Stream {
    /// Wraps a connected socket, with Nagle off when TCP: requests and replies are batched by
    /// the proxy itself and must not wait for the kernel.
    fn new(socket: Socket, uring: Rc<Uring>, tcp: bool) -> Self {
        if tcp {
            // Failure only means a slower socket; not worth dropping the connection.
            let _ = socket.set_nodelay(true);
        }
        let fd = socket.as_raw_fd();
        let file = uring.enter_file(fd).map_or(File::Raw(fd), File::Fixed);
        Stream {
            socket,
            file,
            uring,
            tls: None,
        }
    }

    /// Turns TCP keepalive on (the kernel's probes find a peer that vanished without closing).
    /// A Unix socket has none: nothing to do there.
    pub fn set_keepalive(&self) -> io::Result<()> {
        match self.socket.local_addr()?.as_socket() {
            Some(_) => self.socket.set_keepalive(true),
            None => Ok(()),
        }
    }

    /// Puts a TLS session over the socket: every later read and send goes through it.
    pub(super) fn set_tls(&mut self, tls: Tls) {
        self.tls = Some(Box::new(tls));
    }

    /// The TLS session, if the stream has one.
    pub(super) fn tls(&self) -> Option<&Tls> {
        self.tls.as_deref()
    }

    /// Connects to `target` (an IP address and port, or a Unix socket's path), giving up after
    /// `timeout`.
    pub async fn connect(
        uring: &Rc<Uring>,
        target: SockAddr,
        timeout: Duration,
    ) -> io::Result<Self> {
        let tcp = target.is_ipv4() || target.is_ipv6();
        let protocol = tcp.then_some(Protocol::TCP);
        let socket = Socket::new(target.domain(), Type::STREAM, protocol)?;
        let entry =
            opcode::Connect::new(Fd(socket.as_raw_fd()), target.as_ptr(), target.len()).build();
        // SAFETY: `target` outlives the operation, which is awaited (or dropped) in this scope.
        let connect = unsafe { Op::new(uring, entry) };
        match glommio::timer::timeout(timeout, async { Ok(connect.await) }).await {
            Ok(Ok(_)) => Ok(Stream::new(socket, uring.clone(), tcp)),
            Ok(Err(err)) => Err(err),
            Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out")),
        }
    }

    /// The address of the other end.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.socket.peer_addr().ok()?.as_socket()
    }

    /// The socket's file descriptor (for display; the stream owns it).
    pub fn fd(&self) -> i32 {
        self.socket.as_raw_fd()
    }

    /// The other end and this one, as CLIENT LIST shows them: for a Unix socket both are the
    /// listening socket's path, as Redis shows them.
    pub fn endpoints(&self) -> (Option<Endpoint>, Option<Endpoint>) {
        let local = self.socket.local_addr().ok();
        if let Some(path) = local.as_ref().and_then(SockAddr::as_pathname) {
            let path: Rc<str> = path.to_string_lossy().into();
            return (
                Some(Endpoint::Unix(path.clone())),
                Some(Endpoint::Unix(path)),
            );
        }
        let ip = |addr: SockAddr| addr.as_socket().map(Endpoint::Ip);
        let peer = self.socket.peer_addr().ok().and_then(ip);
        (peer, local.and_then(ip))
    }

    /// Reads what is available into `buf`'s spare room. When that room is under `need` bytes
    /// (or under [`MIN_READ_ROOM`]), `buf` is first grown by `grow.max(need)`. Returns the
    /// number of bytes read; 0 means end of stream. A read dropped while pending leaves `buf`
    /// holding whatever had arrived, and nothing more.
    pub async fn read_into(
        &self,
        buf: &mut BytesMut,
        need: usize,
        grow: usize,
    ) -> io::Result<usize> {
        match &self.tls {
            None => self.recv_into(buf, need, grow).await,
            Some(tls) => tls.read_into(self, buf, need, grow).await,
        }
    }

    /// [`Stream::read_into`] from the socket itself: the bytes on the wire.
    pub(super) async fn recv_into(
        &self,
        buf: &mut BytesMut,
        need: usize,
        grow: usize,
    ) -> io::Result<usize> {
        if buf.capacity() - buf.len() < need.max(MIN_READ_ROOM) {
            buf.reserve(grow.max(need).max(MIN_READ_ROOM));
        }
        let start = buf.len();
        let room = (buf.capacity() - start).min(READ_CHUNK);
        let spare = buf.spare_capacity_mut().as_mut_ptr().cast::<u8>();
        let entry = on_file!(self.file, target => opcode::Recv::new(target, spare, room as u32)
            .ioprio(RECVSEND_POLL_FIRST)
            .build());
        // SAFETY: the receive writes only into `buf`'s spare room, and `buf` stays mutably
        // borrowed by the guard until the operation is complete or cancelled.
        let mut recv = RecvOp {
            op: unsafe { Op::new(&self.uring, entry) },
            buf,
            start,
        };
        let read = (&mut recv.op).await?;
        // SAFETY: the kernel initialised `read` bytes of the spare room.
        unsafe { recv.buf.set_len(start + read) };
        Ok(read)
    }

    /// Sends the buffers `iovecs` point to, in order, in one `sendmsg`; returns the bytes sent,
    /// which may be fewer than all when the socket's buffer fills.
    ///
    /// The caller keeps the memory behind `iovecs` alive and unchanged until this returns
    /// ([`super::WriteBatch`] holds a reference to every frame it points to).
    pub async fn send_iovecs(&self, iovecs: &[libc::iovec]) -> io::Result<usize> {
        if let Some(tls) = &self.tls {
            // SAFETY: this function's contract is the caller's.
            return unsafe { tls.send_iovecs(self, iovecs) }.await;
        }
        if let [single] = iovecs {
            if !single.iov_base.is_null() {
                // One buffer (a reply to a client at -P 1, most often): a plain send, which
                // spares the kernel copying in a message header and importing an iovec array.
                // SAFETY: the caller keeps the buffer alive and unchanged until this returns.
                let data = unsafe {
                    std::slice::from_raw_parts(single.iov_base.cast::<u8>(), single.iov_len)
                };
                return self.send_raw(data).await;
            }
        }
        // SAFETY: an all-zero msghdr is valid (no address, no control data, no iovecs).
        let mut message: libc::msghdr = unsafe { std::mem::zeroed() };
        message.msg_iov = iovecs.as_ptr().cast_mut();
        message.msg_iovlen = iovecs.len();
        let entry = on_file!(self.file, target => opcode::SendMsg::new(target, &message)
            .flags(libc::MSG_NOSIGNAL as u32)
            .build());
        // SAFETY: `message` and `iovecs` outlive the operation, which is awaited (or dropped,
        // which waits for it) in this scope; the buffers behind them are the caller's.
        unsafe { Op::new(&self.uring, entry) }.await
    }

    /// Writes all of `data`.
    pub async fn write_all(&self, mut data: &[u8]) -> io::Result<()> {
        if let Some(tls) = &self.tls {
            return tls.write_all(self, data).await;
        }
        while !data.is_empty() {
            let written = self.send_raw(data).await?;
            if written == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            data = &data[written..];
        }
        Ok(())
    }

    /// Sends what of `data` the socket takes in one send, as it is (no TLS); returns how much.
    pub(super) async fn send_raw(&self, data: &[u8]) -> io::Result<usize> {
        let len = data.len().min(u32::MAX as usize) as u32;
        let entry = on_file!(self.file, target => opcode::Send::new(target, data.as_ptr(), len)
            .flags(libc::MSG_NOSIGNAL)
            .build());
        // SAFETY: `data` outlives the operation, which is awaited (or dropped) here.
        unsafe { Op::new(&self.uring, entry) }.await
    }
}

impl Drop for Stream {
    /// Clears the socket's slot first: the table's reference would keep the connection open
    /// after the descriptor is closed.
    fn drop(&mut self) {
        if let File::Fixed(slot) = self.file {
            self.uring.clear_file(slot);
        }
    }
}

/// A receive into a buffer's spare room; if dropped in flight, keeps what was received.
struct RecvOp<'a, 'b> {
    op: Op<'a>,
    buf: &'b mut BytesMut,
    start: usize,
}

impl Drop for RecvOp<'_, '_> {
    fn drop(&mut self) {
        if let Some(Ok(read)) = self.op.cancel() {
            // SAFETY: the kernel initialised `read` bytes of the spare room before completing.
            unsafe { self.buf.set_len(self.start + read) };
        }
    }
}
