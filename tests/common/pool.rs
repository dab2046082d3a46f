//! Helpers for static-pool tests: where keys are, read from the standalone servers
//! themselves, and writing keys through a proxy.

use std::collections::HashMap;

use super::{Conn, RedisServer, Value};

/// Where each key is: server index by key, read from the servers themselves (over TCP, even
/// for a pool that reaches them by their Unix sockets). A key on two servers fails the test.
pub fn placement(servers: &[RedisServer]) -> HashMap<String, usize> {
    let mut found = HashMap::new();
    for (index, server) in servers.iter().enumerate() {
        let Value::Array(Some(keys)) = server.conn().cmd_str("KEYS *") else {
            panic!("KEYS")
        };
        for key in keys {
            assert!(
                found.insert(key.text(), index).is_none(),
                "a key on two servers"
            );
        }
    }
    found
}

/// Empties every server.
pub fn flush(servers: &[RedisServer]) {
    for server in servers {
        assert_eq!(server.conn().cmd_str("FLUSHALL"), Value::ok());
    }
}

/// SETs `keys` (to "v") through the proxy at `port`, pipelined; every reply must be OK.
pub fn set_all(port: u16, keys: &[String]) {
    let mut c = Conn::connect(port);
    let commands: Vec<Vec<Vec<u8>>> = keys
        .iter()
        .map(|k| vec![b"SET".to_vec(), k.clone().into_bytes(), b"v".to_vec()])
        .collect();
    for reply in c.pipeline(&commands) {
        assert_eq!(reply, Value::ok());
    }
}
