//! A client's input: every complete request in its read buffer, parsed and handed to
//! dispatch in order, until the buffer holds no complete request, or a CLIENT PAUSE holds the
//! next one, or the client is held (a blocking command of its own, or the end of a WATCH, is
//! in flight), or the next one must wait for the client's background writes. What is not
//! dispatched stays in the buffer, unparsed, for the next call.

use std::rc::Rc;

use bytes::{Buf, BytesMut};

use crate::error::ProtocolError;
use crate::resp::parse::{Frame, RequestParser};

use super::client::ClientState;
use super::dispatch::{dispatch, Control};
use super::sidecar::background;
use super::Shard;
use crate::command::keys::FrameArgs;

/// Why [`parse_and_dispatch`] stopped.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// Everything complete in the buffer was dispatched.
    All,
    /// A CLIENT PAUSE holds the request at the front of the buffer (left there, unparsed).
    Paused,
    /// The client is held ([`ClientState::hold`]); what is left waits in the buffer.
    Held,
    /// The request at the front of the buffer must wait until the client's background writes
    /// are answered (left there, unparsed).
    Behind,
}

/// Dispatches every complete request in `buf`, up to one a CLIENT PAUSE holds.
pub fn parse_and_dispatch(
    shard: &Rc<Shard>,
    state: &Rc<ClientState>,
    parser: &mut RequestParser,
    buf: &mut BytesMut,
) -> Result<Parsed, ProtocolError> {
    while !state.is_closing() {
        if state.is_held() {
            return Ok(Parsed::Held);
        }
        let control = match parser.parse(buf)? {
            None => return Ok(Parsed::All),
            Some(Frame::Multibulk { len }) => {
                if parser.args().is_empty() {
                    buf.advance(len);
                    continue;
                }
                let view = FrameArgs {
                    frame: &buf[..len],
                    args: parser.args(),
                };
                if shard.pause_holds(state, &view) {
                    // Parsed again once the pause is over; the parser starts afresh anyway.
                    return Ok(Parsed::Paused);
                }
                if state.writes.behind() && background::must_wait(shard, state, &view) {
                    return Ok(Parsed::Behind);
                }
                let frame = buf.split_to(len).freeze();
                dispatch(shard, state, frame, parser.args())
            }
            Some(Frame::Inline { len, encoded }) => {
                if encoded.is_empty() {
                    buf.advance(len);
                    continue;
                }
                let mut inline = RequestParser::new(shard.config().limits);
                match inline.parse(&encoded)? {
                    Some(Frame::Multibulk { .. }) => {
                        let view = FrameArgs {
                            frame: &encoded,
                            args: inline.args(),
                        };
                        if shard.pause_holds(state, &view) {
                            return Ok(Parsed::Paused);
                        }
                        if state.writes.behind() && background::must_wait(shard, state, &view) {
                            return Ok(Parsed::Behind);
                        }
                        buf.advance(len);
                        dispatch(shard, state, encoded.freeze(), inline.args())
                    }
                    _ => {
                        buf.advance(len);
                        continue;
                    }
                }
            }
        };
        if control == Control::Close {
            state.close_after_replies();
        }
    }
    Ok(Parsed::All)
}
