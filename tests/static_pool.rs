//! Static (twemproxy) pools served by percore, from a nutcracker YAML file run unchanged, over
//! real standalone redis-servers: every key lands on the server the real nutcracker puts it
//! on, multi-key commands split per server and merge, and one file serves two pools at once
//! (`tcpkeepalive` and `backlog` on one of them).

mod common;

use std::collections::HashSet;

use common::nutcracker::{free_ports, Nutcracker};
use common::pool::{flush, placement, set_all};
use common::{Conn, Proxy, RedisServer, Value};

fn pool_yaml(name: &str, port: u16, hash: &str, distribution: &str, servers: &[String]) -> String {
    let list: String = servers.iter().map(|s| format!("   - {s}\n")).collect();
    format!(
        "{name}:\n  listen: 127.0.0.1:{port}\n  hash: {hash}\n  distribution: {distribution}\n  \
         hash_tag: \"{{}}\"\n  redis: true\n  servers:\n{list}"
    )
}

#[test]
fn keys_land_where_nutcracker_puts_them_and_split_commands_merge() {
    let servers: Vec<RedisServer> = (0..3).map(|_| RedisServer::start()).collect();
    let lines: Vec<String> = servers
        .iter()
        .enumerate()
        .map(|(i, s)| match i {
            1 => format!("127.0.0.1:{}:2 second", s.port),
            _ => format!("127.0.0.1:{}:1", s.port),
        })
        .collect();
    let keys: Vec<String> = (0..600).map(|i| format!("key:{i}")).collect();
    let taken: HashSet<u16> = servers.iter().map(|s| s.port).collect();
    for (hash, distribution) in [
        ("fnv1a_64", "ketama"),
        ("murmur", "modula"),
        ("md5", "ketama"),
    ] {
        let [percore_port, nut_port]: [u16; 2] =
            free_ports(2, &taken).try_into().expect("two ports");
        let dir = tempfile::TempDir::new().unwrap();
        let file = dir.path().join("pool.yml");
        std::fs::write(
            &file,
            pool_yaml("p", percore_port, hash, distribution, &lines),
        )
        .unwrap();
        let proxy = Proxy::start_with_args(
            percore_port,
            &["-c", file.to_str().unwrap(), "--log-level", "debug"],
        );
        let nutcracker = Nutcracker::start(
            &pool_yaml("p", nut_port, hash, distribution, &lines),
            &[nut_port],
        )
        .expect("nutcracker");

        flush(&servers);
        set_all(percore_port, &keys);
        let through_percore = placement(&servers);
        flush(&servers);
        set_all(nut_port, &keys);
        let through_nutcracker = placement(&servers);
        assert_eq!(through_percore.len(), keys.len(), "{hash}/{distribution}");
        assert_eq!(through_percore, through_nutcracker, "{hash}/{distribution}");
        drop(nutcracker);

        // Split per server and merged, in key order.
        let mut c = proxy.conn();
        let some: Vec<&[u8]> = keys[..20].iter().map(|k| k.as_bytes()).collect();
        let mut mget: Vec<&[u8]> = vec![b"MGET"];
        mget.extend(&some);
        mget.push(b"missing");
        let Value::Array(Some(values)) = c.cmd(&mget) else {
            panic!("MGET")
        };
        assert_eq!(values.len(), 21);
        assert!(values[..20].iter().all(|v| *v == Value::bulk("v")));
        assert_eq!(values[20], Value::Bulk(None));
        assert_eq!(c.cmd_str("DBSIZE"), Value::Int(keys.len() as i64));
        let mut del: Vec<&[u8]> = vec![b"DEL"];
        del.extend(&some);
        assert_eq!(c.cmd(&del), Value::Int(20));
        // Hash tags keep keys on one server: a transaction over them runs there.
        assert_eq!(c.cmd_str("MULTI"), Value::ok());
        assert_eq!(c.cmd_str("INCR {t}a"), Value::Simple("QUEUED".into()));
        assert_eq!(c.cmd_str("INCR {t}b"), Value::Simple("QUEUED".into()));
        assert_eq!(
            c.cmd_str("EXEC"),
            Value::Array(Some(vec![Value::Int(1), Value::Int(1)]))
        );
        assert!(
            proxy.log().contains("starting percore pool"),
            "{}",
            proxy.log()
        );
    }
}

#[test]
fn one_file_serves_two_pools() {
    let servers: Vec<RedisServer> = (0..2).map(|_| RedisServer::start()).collect();
    let taken: HashSet<u16> = servers.iter().map(|s| s.port).collect();
    let [a, b]: [u16; 2] = free_ports(2, &taken).try_into().expect("two ports");
    let yaml = format!(
        "percore:\n  threads: 2\n\n{}\n{}",
        pool_yaml(
            "alpha",
            a,
            "fnv1a_64",
            "ketama",
            &[format!("127.0.0.1:{}:1", servers[0].port)]
        )
        .replace(
            "  redis: true\n",
            "  redis: true\n  tcpkeepalive: true\n  backlog: 77\n"
        ),
        pool_yaml(
            "beta",
            b,
            "crc32a",
            "modula",
            &[format!("127.0.0.1:{}:1", servers[1].port)]
        ),
    );
    let dir = tempfile::TempDir::new().unwrap();
    let file = dir.path().join("two.yml");
    std::fs::write(&file, yaml).unwrap();
    let _proxy = Proxy::start_with_args(a, &["-c", file.to_str().unwrap()]);
    common::wait_until("the second pool", common::READ_TIMEOUT, || {
        std::net::TcpStream::connect(("127.0.0.1", b)).is_ok()
    });
    assert_eq!(Conn::connect(a).cmd_str("SET in:alpha 1"), Value::ok());
    assert_eq!(Conn::connect(b).cmd_str("SET in:beta 2"), Value::ok());
    assert_eq!(servers[0].conn().cmd_str("GET in:alpha"), Value::bulk("1"));
    assert_eq!(servers[1].conn().cmd_str("GET in:beta"), Value::bulk("2"));
    assert_eq!(servers[0].conn().cmd_str("EXISTS in:beta"), Value::Int(0));
    // Each pool answers for its own servers.
    assert_eq!(Conn::connect(a).cmd_str("DBSIZE"), Value::Int(1));
    // `tcpkeepalive: true` (alpha's only): the kernel keeps a keepalive timer on the
    // proxy's end of alpha's clients, none on beta's.
    for (port, keepalive) in [(a, true), (b, false)] {
        let client = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let mine = client.local_addr().unwrap().port();
        common::wait_until(
            "the proxy's end of the client",
            common::READ_TIMEOUT,
            || keepalive_timer(port, mine).is_some(),
        );
        assert_eq!(
            keepalive_timer(port, mine),
            Some(keepalive),
            "pool on {port}"
        );
    }
    // `backlog: 77` (alpha's): each core's listener queues 77; beta's nutcracker's 512.
    assert_eq!(listen_backlogs(a), [77, 77]);
    assert_eq!(listen_backlogs(b), [512, 512]);
}

/// The backlog of every socket listening on 127.0.0.1:`port` (`ss -ltn`'s Send-Q).
fn listen_backlogs(port: u16) -> Vec<u32> {
    let out = std::process::Command::new("ss")
        .args(["-Hltn", &format!("sport = :{port}")])
        .output()
        .expect("ss (iproute2) runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let backlogs = text
        .lines()
        .filter_map(|line| line.split_whitespace().nth(2)?.parse().ok());
    backlogs.collect()
}

/// Whether the established socket from local port `local` to remote port `remote` on
/// 127.0.0.1 has its keepalive timer running (`/proc/net/tcp`'s `tr` 2); `None` if no such
/// socket is listed.
fn keepalive_timer(local: u16, remote: u16) -> Option<bool> {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let ends = (
        format!("0100007F:{local:04X}"),
        format!("0100007F:{remote:04X}"),
    );
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let established = fields.get(3) == Some(&"01");
        let ours =
            fields.get(1) == Some(&ends.0.as_str()) && fields.get(2) == Some(&ends.1.as_str());
        (established && ours).then(|| fields[5].starts_with("02:"))
    })
}
