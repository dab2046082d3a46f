//! A backend that misbehaves in ways no real Redis does: it sends garbage, or closes the
//! connection in the middle of a reply. The proxy must drop that connection, give the
//! waiting requests an error naming the node, reconnect, and carry on. A real redis-server
//! cannot be made to do this, so a small scripted node stands in for one.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{wait_until, Proxy, Value};

/// A scripted node on a free port: CLUSTER SLOTS claims every slot for itself; `GET garbage`
/// answers with a bad type byte, `GET cut` with half a bulk and a close; anything else +OK.
fn scripted_node(stop: Arc<AtomicBool>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            match listener.accept() {
                Ok((stream, _)) => {
                    std::thread::spawn(move || serve(stream, port));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    });
    port
}

fn serve(mut stream: TcpStream, port: u16) {
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut buf = [0u8; 4096];
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let request = String::from_utf8_lossy(&buf[..n]).to_lowercase();
        let reply: Vec<u8> = if request.contains("slots") {
            format!("*1\r\n*3\r\n:0\r\n:16383\r\n*3\r\n$9\r\n127.0.0.1\r\n:{port}\r\n$2\r\nid\r\n")
                .into_bytes()
        } else if request.contains("garbage") {
            b"?what is this\r\n".to_vec()
        } else if request.contains("cut") {
            let _ = stream.write_all(b"$10\r\nabc");
            return;
        } else {
            b"+OK\r\n".to_vec()
        };
        if stream.write_all(&reply).is_err() {
            return;
        }
    }
}

#[test]
fn garbage_or_a_cut_reply_drops_the_connection_and_recovers() {
    let stop = Arc::new(AtomicBool::new(false));
    let node = scripted_node(stop.clone());
    let proxy = Proxy::start_with_seeds(&format!("127.0.0.1:{node}"), &["--backend-timeout", "1s"]);
    let port = proxy.port;
    wait_until(
        "the proxy to use the scripted node",
        Duration::from_secs(10),
        || common::try_cmd(port, "SET k v") == Some(Value::ok()),
    );
    let mut c = proxy.conn();
    for bad in ["GET garbage", "GET cut"] {
        let reply = c.cmd_str(bad);
        assert!(reply.is_error(), "{bad}: {reply:?}");
        assert!(
            reply.text().contains(&format!("127.0.0.1:{node}")),
            "{bad}: {reply:?}"
        );
        // The same client connection is served again once its core has reconnected.
        wait_until("the proxy to reconnect", Duration::from_secs(10), || {
            c.cmd_str("SET k v") == Value::ok()
        });
    }
    assert!(proxy.log().contains("bad reply"), "the garbage was logged");
    stop.store(true, Ordering::Relaxed);
}
