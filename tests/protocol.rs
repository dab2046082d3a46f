//! Protocol behaviour through the proxy, byte for byte: the proxy's own replies, inline
//! commands, split requests, and protocol errors answered exactly as redis-server answers
//! the same bytes (then the connection is closed, and other clients carry on).

mod common;

use common::{Conn, Proxy, RedisCluster, Value};

#[test]
fn replies_and_protocol_errors_match_redis() {
    let cluster = RedisCluster::start(3, 0);
    let proxy = Proxy::start(&cluster, &[]);
    let mut c = proxy.conn();

    let exact: &[(&[u8], &[u8])] = &[
        (b"*1\r\n$4\r\nPING\r\n", b"+PONG\r\n"),
        (b"*2\r\n$4\r\nPING\r\n$2\r\nhi\r\n", b"$2\r\nhi\r\n"),
        (b"*2\r\n$4\r\nECHO\r\n$3\r\na\0b\r\n", b"$3\r\na\0b\r\n"),
        (b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n", b"+OK\r\n"),
        (
            b"*1\r\n$3\r\nGET\r\n",
            b"-ERR wrong number of arguments for 'get' command\r\n",
        ),
        (
            b"*3\r\n$3\r\nfoo\r\n$1\r\na\r\n$1\r\nb\r\n",
            b"-ERR unknown command 'foo', with args beginning with: 'a' 'b' \r\n",
        ),
        (b"PING\r\n", b"+PONG\r\n"),
        (b"SET inline:k \"a b\"\r\n", b"+OK\r\n"),
        (b"GET inline:k\r\n", b"$3\r\na b\r\n"),
    ];
    for (request, reply) in exact {
        c.send_raw(request);
        assert_eq!(
            c.read_raw_reply(),
            reply.to_vec(),
            "request {:?}",
            String::from_utf8_lossy(request)
        );
    }

    // A request written one byte at a time parses the same.
    for byte in b"*3\r\n$3\r\nSET\r\n$5\r\nsplit\r\n$2\r\nok\r\n" {
        c.send_raw(&[*byte]);
    }
    assert_eq!(c.read_raw_reply(), b"+OK\r\n");
    assert_eq!(c.cmd_str("GET split"), Value::bulk("ok"));

    // QUIT answers OK, then closes.
    c.send_raw(b"*1\r\n$4\r\nQUIT\r\n");
    assert_eq!(c.read_raw_reply(), b"+OK\r\n");
    c.expect_closed();

    // Each malformed input gets the bytes redis-server itself sends, then the connection
    // closes; a client connected meanwhile is unaffected.
    let bad: &[&[u8]] = &[
        b"*abc\r\n",
        b"*3000000000\r\n",
        b"*1\r\nfoo\r\n",
        b"*1\r\n$-10\r\n",
        b"*1\r\n$blabla\r\n",
        b"*1\r\n$2000000000\r\n",
        b"SET k \"unbalanced\r\n",
    ];
    let mut bystander = proxy.conn();
    let node_port = cluster.master_ports()[0];
    for input in bad {
        let mut direct = Conn::connect(node_port);
        direct.send_raw(input);
        let expected = direct.read_raw_reply();
        direct.expect_closed();

        let mut through = proxy.conn();
        through.send_raw(input);
        assert_eq!(
            String::from_utf8_lossy(&through.read_raw_reply()),
            String::from_utf8_lossy(&expected),
            "input {:?}",
            String::from_utf8_lossy(input)
        );
        through.expect_closed();
        assert_eq!(bystander.cmd_str("PING"), Value::Simple("PONG".into()));
    }

    // Garbage with no newline past the inline limit is refused like Redis does.
    let mut flood = proxy.conn();
    flood.send_raw(&vec![b'x'; 70 * 1024]);
    assert_eq!(
        flood.read_raw_reply(),
        b"-ERR Protocol error: too big inline request\r\n"
    );
    flood.expect_closed();
    assert_eq!(bystander.cmd_str("PING"), Value::Simple("PONG".into()));
}
