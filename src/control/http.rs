//! Just enough HTTP/1.1 for the admin endpoints (`/metrics`, `/health`): read one request,
//! bounded in size and time, and write one response, then close.
//!
//! Requests are parsed by `httparse` (hyper's parser, used on its own): request lines and
//! headers are where hand-written HTTP goes wrong (partial reads, odd whitespace, overlong
//! fields), and it is small, has no dependencies and allocates nothing. One request per
//! connection (`Connection: close`) keeps the server a loop with nothing to keep alive;
//! Prometheus and load balancers open a connection per scrape or probe anyway.

use std::time::Duration;

use bytes::BytesMut;

use crate::net::Stream;

/// Most bytes of a request (line and headers). A scrape or a probe sends a few hundred; past
/// this the client is not one of them, and gets 400 Bad Request.
pub const MAX_REQUEST: usize = 8 * 1024;

/// Longest a client may take to send its request; then it gets 408 Request Timeout. A scraper
/// sends its request at once; this bounds what a connection that sends nothing can hold.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Most headers parsed. Scrapers send a handful; more is a 400.
const MAX_HEADERS: usize = 32;

/// Bytes asked for per read.
const READ_SIZE: usize = 1024;

/// A response status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// 200.
    Ok,
    /// 400: not a valid request, or over [`MAX_REQUEST`].
    BadRequest,
    /// 404: no such path.
    NotFound,
    /// 405: a method other than GET or HEAD.
    MethodNotAllowed,
    /// 408: the request took longer than [`REQUEST_TIMEOUT`].
    RequestTimeout,
    /// 503: not serving (starting or draining).
    Unavailable,
}

impl Status {
    /// The status line's code and reason.
    fn line(self) -> &'static str {
        match self {
            Status::Ok => "200 OK",
            Status::BadRequest => "400 Bad Request",
            Status::NotFound => "404 Not Found",
            Status::MethodNotAllowed => "405 Method Not Allowed",
            Status::RequestTimeout => "408 Request Timeout",
            Status::Unavailable => "503 Service Unavailable",
        }
    }
}

/// A request that parsed: its path (without the query) and whether only the head is wanted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The path, `/metrics`.
    pub path: String,
    /// HEAD rather than GET: the response has no body.
    pub head: bool,
}

/// What the bytes so far are.
#[derive(Debug, PartialEq, Eq)]
enum Parsed {
    /// A complete request.
    Done(Request),
    /// Not complete yet.
    Partial,
    /// Never a request we serve: answer with this status.
    Refused(Status),
}

/// Reads one request from `stream`; `Err` is the status to answer with instead.
pub async fn read_request(stream: &Stream) -> Result<Request, Status> {
    let mut buf = BytesMut::new();
    let read = async {
        loop {
            match stream.read_into(&mut buf, 0, READ_SIZE).await {
                Ok(0) | Err(_) => return Err(Status::BadRequest),
                Ok(_) => {}
            }
            match parse(&buf) {
                Parsed::Done(request) => return Ok(request),
                Parsed::Refused(status) => return Err(status),
                Parsed::Partial => {}
            }
        }
    };
    glommio::timer::timeout(REQUEST_TIMEOUT, async { Ok(read.await) })
        .await
        .unwrap_or(Err(Status::RequestTimeout))
}

/// Parses the request in `bytes`.
fn parse(bytes: &[u8]) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(bytes) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) if bytes.len() < MAX_REQUEST => return Parsed::Partial,
        Ok(httparse::Status::Partial) | Err(_) => return Parsed::Refused(Status::BadRequest),
    }
    if bytes.len() > MAX_REQUEST {
        return Parsed::Refused(Status::BadRequest);
    }
    let head = match request.method {
        Some("GET") => false,
        Some("HEAD") => true,
        _ => return Parsed::Refused(Status::MethodNotAllowed),
    };
    let path = request.path.unwrap_or("/");
    let path = path.split_once('?').map_or(path, |(path, _)| path);
    Parsed::Done(Request {
        path: path.to_string(),
        head,
    })
}

/// Writes a response with `body` (left out for HEAD) and closes nothing: the caller drops
/// the stream.
pub async fn respond(stream: &Stream, status: Status, content_type: &str, body: &[u8], head: bool) {
    let header = format!(
        "HTTP/1.1 {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        status.line(),
        body.len()
    );
    if stream.write_all(header.as_bytes()).await.is_ok() && !head {
        let _ = stream.write_all(body).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(path: &str, head: bool) -> Parsed {
        Parsed::Done(Request {
            path: path.into(),
            head,
        })
    }

    #[test]
    fn requests() {
        let cases: &[(&[u8], Parsed)] = &[
            (
                b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
                done("/metrics", false),
            ),
            (b"GET /health?x=1 HTTP/1.0\r\n\r\n", done("/health", false)),
            (b"HEAD /health HTTP/1.1\r\n\r\n", done("/health", true)),
            (b"GET /metrics HTTP/1.1\r\nHost:", Parsed::Partial),
            (
                b"POST /metrics HTTP/1.1\r\n\r\n",
                Parsed::Refused(Status::MethodNotAllowed),
            ),
            (
                b"GET\x01 / HTTP/1.1\r\n\r\n",
                Parsed::Refused(Status::BadRequest),
            ),
            (b"hello\r\n\r\n", Parsed::Refused(Status::BadRequest)),
        ];
        for (bytes, expected) in cases {
            assert_eq!(
                &parse(bytes),
                expected,
                "{:?}",
                String::from_utf8_lossy(bytes)
            );
        }
    }

    #[test]
    fn a_request_over_the_limit_is_refused() {
        let mut long = b"GET /metrics HTTP/1.1\r\nX: ".to_vec();
        long.resize(MAX_REQUEST + 1, b'a');
        assert_eq!(parse(&long), Parsed::Refused(Status::BadRequest));
        long.extend_from_slice(b"\r\n\r\n");
        assert_eq!(parse(&long), Parsed::Refused(Status::BadRequest));
    }

    #[test]
    fn every_byte_split_is_partial_until_complete() {
        let request = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
        for end in 0..request.len() {
            assert_eq!(parse(&request[..end]), Parsed::Partial, "at {end}");
        }
    }
}
