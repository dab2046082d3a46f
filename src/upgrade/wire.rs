//! The handover's messages on the upgrade socket: one line of text each, in a
//! `SOCK_SEQPACKET` message of its own, a listening socket's descriptor riding along
//! (`SCM_RIGHTS`) with the message that says what it is for.
//!
//! Why `SOCK_SEQPACKET`: each message arrives whole and alone, with exactly its own descriptor,
//! so the reader needs no framing and cannot mistake which description goes with which socket
//! (a stream socket may merge texts and split them anywhere). Why the address is not in the
//! text: the receiver reads it from the socket itself (`getsockname`), so what it matches on
//! is what the socket is bound to, not what the sender says.

use std::fmt;
use std::io;
use std::mem;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::str::FromStr;

use socket2::Socket;

/// The handover protocol's version; both sides say theirs first, and a mismatch ends the
/// handover before any socket moves.
pub const VERSION: u32 = 1;

/// Longest message text read. The longest message is a listener's description with a pool
/// name; names are short words, so this bounds a confused peer, not a real message.
const MAX_MESSAGE: usize = 4096;

/// Control room for a received message: one descriptor is all any message carries; room for
/// a few more means a peer that sends too many has them received (and closed), not
/// truncated out of sight.
const CONTROL_WORDS: usize = 8;

/// What a listening socket handed over is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// A pool's listener on one core: its own TCP socket, or its share of the pool's Unix
    /// socket.
    Pool {
        /// The core that accepts from it.
        core: usize,
        /// The pool's name (for the logs: the socket's address is what is matched).
        pool: String,
    },
    /// An admin port: nutcracker's stats port or `/metrics`.
    Admin,
    /// The upgrade socket itself: the next process serves the next upgrade on it.
    Endpoint,
}

/// One message of the handover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Each side's first: the protocol version and the sender's process id.
    Hello {
        /// [`VERSION`] of the sender.
        version: u32,
        /// The sender's process id.
        pid: u32,
    },
    /// Old to new: one listening socket, whose descriptor comes with the message.
    Listener(Role),
    /// Old to new, after the last listener: how many were sent.
    End(usize),
    /// New to old: every core of every pool accepts clients.
    Ready,
    /// Old to new: the old process stops accepting and drains; the sockets are the new
    /// process's now.
    Stopping,
    /// Either side: the handover is off, and why.
    No(String),
}

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Message::Hello { version, pid } => write!(f, "hello {version} {pid}"),
            Message::Listener(Role::Pool { core, pool }) => {
                write!(f, "listener pool {core} {pool}")
            }
            Message::Listener(Role::Admin) => f.write_str("listener admin"),
            Message::Listener(Role::Endpoint) => f.write_str("listener endpoint"),
            Message::End(count) => write!(f, "end {count}"),
            Message::Ready => f.write_str("ready"),
            Message::Stopping => f.write_str("stopping"),
            Message::No(reason) => write!(f, "no {reason}"),
        }
    }
}

impl FromStr for Message {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || format!("not a handover message: {text:?}");
        let (word, rest) = text.split_once(' ').unwrap_or((text, ""));
        let number = |s: &str| s.parse::<u64>().map_err(|_| bad());
        Ok(match (word, rest) {
            ("hello", rest) => {
                let (version, pid) = rest.split_once(' ').ok_or_else(bad)?;
                Message::Hello {
                    version: u32::try_from(number(version)?).map_err(|_| bad())?,
                    pid: u32::try_from(number(pid)?).map_err(|_| bad())?,
                }
            }
            ("listener", "admin") => Message::Listener(Role::Admin),
            ("listener", "endpoint") => Message::Listener(Role::Endpoint),
            ("listener", rest) => {
                let pool = rest.strip_prefix("pool ").ok_or_else(bad)?;
                let (core, pool) = pool.split_once(' ').ok_or_else(bad)?;
                Message::Listener(Role::Pool {
                    core: number(core)? as usize,
                    pool: pool.to_string(),
                })
            }
            ("end", count) => Message::End(number(count)? as usize),
            ("ready", "") => Message::Ready,
            ("stopping", "") => Message::Stopping,
            ("no", reason) => Message::No(reason.to_string()),
            _ => return Err(bad()),
        })
    }
}

/// Sends `message`, with `fd` (a descriptor this process keeps too: the receiver gets its
/// own) if given.
pub fn send(socket: &Socket, message: &Message, fd: Option<RawFd>) -> io::Result<()> {
    let text = message.to_string();
    let mut iov = libc::iovec {
        iov_base: text.as_ptr().cast_mut().cast(),
        iov_len: text.len(),
    };
    let mut control = [0u64; CONTROL_WORDS];
    // SAFETY: an all-zero msghdr is valid (no address, no iovecs, no control data).
    let mut header: libc::msghdr = unsafe { mem::zeroed() };
    header.msg_iov = &mut iov;
    header.msg_iovlen = 1;
    if let Some(fd) = fd {
        // SAFETY: the control buffer is u64-aligned and larger than CMSG_SPACE of one
        // descriptor, so CMSG_FIRSTHDR is non-null and every write stays inside it.
        unsafe {
            header.msg_control = control.as_mut_ptr().cast();
            header.msg_controllen = libc::CMSG_SPACE(FD_SIZE) as usize;
            let cmsg = libc::CMSG_FIRSTHDR(&header);
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN(FD_SIZE) as usize;
            std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>(), fd);
        }
    }
    // SAFETY: the header points to `iov` (over `text`) and `control`, alive for the call.
    let sent = unsafe { libc::sendmsg(socket.as_raw_fd(), &header, libc::MSG_NOSIGNAL) };
    match usize::try_from(sent) {
        Ok(n) if n == text.len() => Ok(()),
        Ok(_) => Err(io::Error::other("message sent in part")),
        Err(_) => Err(io::Error::last_os_error()),
    }
}

/// The size of a descriptor in control data.
const FD_SIZE: u32 = mem::size_of::<RawFd>() as u32;

/// The next message and the descriptor that came with it; `None` once the peer has closed.
/// Descriptors arrive close-on-exec.
pub fn recv(socket: &Socket) -> io::Result<Option<(Message, Option<OwnedFd>)>> {
    let mut buf = [0u8; MAX_MESSAGE];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let mut control = [0u64; CONTROL_WORDS];
    // SAFETY: as in `send`.
    let mut header: libc::msghdr = unsafe { mem::zeroed() };
    header.msg_iov = &mut iov;
    header.msg_iovlen = 1;
    header.msg_control = control.as_mut_ptr().cast();
    header.msg_controllen = mem::size_of_val(&control);
    // SAFETY: the header points to `buf` and `control`, alive for the call.
    let read = unsafe { libc::recvmsg(socket.as_raw_fd(), &mut header, libc::MSG_CMSG_CLOEXEC) };
    let read = usize::try_from(read).map_err(|_| io::Error::last_os_error())?;
    // Every descriptor received is owned (and so closed) before anything can fail.
    let fds = received_fds(&header);
    if header.msg_flags & (libc::MSG_TRUNC | libc::MSG_CTRUNC) != 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "message cut short",
        ));
    }
    if read == 0 {
        return Ok(None);
    }
    let text = std::str::from_utf8(&buf[..read])
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "message not UTF-8"))?;
    let message = text
        .parse()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    let mut fds = fds.into_iter();
    match (fds.next(), fds.next()) {
        (fd, None) => Ok(Some((message, fd))),
        (_, Some(_)) => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "more than one descriptor with a message",
        )),
    }
}

/// The descriptors in a received message's control data.
fn received_fds(header: &libc::msghdr) -> Vec<OwnedFd> {
    let mut fds = Vec::new();
    // SAFETY: the kernel filled the control data and set msg_controllen; the CMSG macros walk
    // only within it, and each SCM_RIGHTS entry holds descriptors now owned by this process.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(header);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(cmsg).cast::<RawFd>();
                let bytes = (*cmsg).cmsg_len as usize - libc::CMSG_LEN(0) as usize;
                for i in 0..bytes / FD_SIZE as usize {
                    fds.push(OwnedFd::from_raw_fd(std::ptr::read_unaligned(data.add(i))));
                }
            }
            cmsg = libc::CMSG_NXTHDR(header, cmsg);
        }
    }
    fds
}

/// The process id and user id of the process at the other end.
pub fn peer(socket: &Socket) -> io::Result<(u32, u32)> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: SO_PEERCRED writes one ucred into `cred`, whose size is passed.
    let result = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if result != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((cred.pid as u32, cred.uid))
}

#[cfg(test)]
mod tests {
    use super::*;
    use socket2::{Domain, Type};
    use std::os::fd::AsFd;

    #[test]
    fn messages_read_back_as_written() {
        let pool = |core, pool: &str| {
            Message::Listener(Role::Pool {
                core,
                pool: pool.into(),
            })
        };
        let cases = [
            (
                "hello 1 4242",
                Message::Hello {
                    version: 1,
                    pid: 4242,
                },
            ),
            (
                "listener pool 3 beta with spaces",
                pool(3, "beta with spaces"),
            ),
            ("listener admin", Message::Listener(Role::Admin)),
            ("listener endpoint", Message::Listener(Role::Endpoint)),
            ("end 7", Message::End(7)),
            ("ready", Message::Ready),
            ("stopping", Message::Stopping),
            (
                "no this process is stopping",
                Message::No("this process is stopping".into()),
            ),
        ];
        for (text, message) in cases {
            assert_eq!(message.to_string(), text);
            assert_eq!(text.parse::<Message>(), Ok(message), "{text}");
        }
        for bad in [
            "",
            "hello",
            "hello x 1",
            "listener pool x p",
            "end",
            "ready now",
            "what",
        ] {
            assert!(bad.parse::<Message>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_descriptor_rides_with_its_message_and_eof_reads_as_none() {
        let (a, b) = Socket::pair(Domain::UNIX, Type::SEQPACKET, None).unwrap();
        let (kept, other) = Socket::pair(Domain::UNIX, Type::STREAM, None).unwrap();
        send(&a, &Message::Ready, None).unwrap();
        send(&a, &Message::Listener(Role::Admin), Some(kept.as_raw_fd())).unwrap();
        send(&a, &Message::End(1), None).unwrap();
        assert_eq!(
            recv(&b).unwrap().map(|(m, fd)| (m, fd.is_some())),
            Some((Message::Ready, false))
        );
        let (message, fd) = recv(&b).unwrap().unwrap();
        assert_eq!(message, Message::Listener(Role::Admin));
        let fd = fd.expect("a descriptor");
        assert_ne!(
            fd.as_raw_fd(),
            kept.as_raw_fd(),
            "the receiver's own descriptor"
        );
        // The same socket: what is written at the other end of the pair reads from it.
        let received = Socket::from(fd);
        std::io::Write::write_all(&mut &other, b"x").unwrap();
        let mut byte = [std::mem::MaybeUninit::new(0u8)];
        assert_eq!(received.recv(&mut byte).unwrap(), 1);
        // SAFETY: recv initialised the byte.
        assert_eq!(unsafe { byte[0].assume_init() }, b'x');
        // SAFETY: F_GETFD only reads the descriptor's flags.
        let flags = unsafe { libc::fcntl(received.as_fd().as_raw_fd(), libc::F_GETFD) };
        assert_ne!(flags & libc::FD_CLOEXEC, 0, "close-on-exec");
        assert_eq!(recv(&b).unwrap().map(|(m, _)| m), Some(Message::End(1)));
        drop(a);
        assert!(recv(&b).unwrap().is_none());
    }

    #[test]
    fn the_peer_is_this_process() {
        let (a, _b) = Socket::pair(Domain::UNIX, Type::SEQPACKET, None).unwrap();
        // SAFETY: geteuid only returns a number.
        let uid = unsafe { libc::geteuid() };
        assert_eq!(peer(&a).unwrap(), (std::process::id(), uid));
    }
}
