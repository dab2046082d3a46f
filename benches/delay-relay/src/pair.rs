//! One relayed connection: the client's socket, the server's, and what is on its way between
//! them (see main.rs for what the relay does with them).

use std::collections::VecDeque;
use std::io::{self, ErrorKind, Write};
use std::net::TcpStream;
use std::time::Instant;

use crate::MAX_QUEUED;

/// One client connection and its connection to the server.
pub struct Pair {
    pub client: TcpStream,
    pub upstream: TcpStream,
    /// Nothing goes to the server before this: the accept plus two delays.
    pub not_before: Instant,
    /// Chunks read from the client, each with the time it may go on, oldest first.
    pub delayed: VecDeque<(Instant, Vec<u8>)>,
    pub delayed_bytes: usize,
    /// Bytes due to the server that its socket has not taken yet, from `to_server_at` on.
    pub to_server: Vec<u8>,
    pub to_server_at: usize,
    /// Reply bytes the client's socket has not taken yet, from `to_client_at` on.
    pub to_client: Vec<u8>,
    pub to_client_at: usize,
    pub client_eof: bool,
    pub upstream_eof: bool,
    /// The client's end-of-input has been passed on (shutdown of the server socket's writes).
    pub shut_upstream: bool,
    /// The epoll interest registered for each socket, to change it only when it changes.
    pub client_events: u32,
    pub upstream_events: u32,
}

impl Pair {
    pub fn to_server_pending(&self) -> bool {
        self.to_server_at < self.to_server.len()
    }

    pub fn to_client_pending(&self) -> bool {
        self.to_client_at < self.to_client.len()
    }

    pub fn wanted_client_events(&self) -> u32 {
        let mut events = 0;
        if !self.client_eof && self.delayed_bytes < MAX_QUEUED {
            events |= libc::EPOLLIN as u32;
        }
        if self.to_client_pending() {
            events |= libc::EPOLLOUT as u32;
        }
        events
    }

    pub fn wanted_upstream_events(&self) -> u32 {
        let mut events = 0;
        if !self.upstream_eof && !self.to_client_pending() {
            events |= libc::EPOLLIN as u32;
        }
        if self.to_server_pending() {
            events |= libc::EPOLLOUT as u32;
        }
        events
    }
}

/// Writes what `buffer` holds from `at` on until the socket takes no more; `Err` only for a
/// socket that failed (a full one is `Ok`, with the rest left for EPOLLOUT).
pub fn flush(socket: &mut TcpStream, buffer: &mut Vec<u8>, at: &mut usize) -> io::Result<()> {
    while *at < buffer.len() {
        match socket.write(&buffer[*at..]) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(n) => *at += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buffer.clear();
    *at = 0;
    Ok(())
}
