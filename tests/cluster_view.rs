//! percore presents itself as the cluster: CLUSTER SLOTS/SHARDS/NODES/INFO/MYID name percore
//! addresses only (its own, or the live members of a `--proxy-peers` fleet with the slots split
//! among them), in Redis 7.0's exact formats in RESP2 and RESP3; the slot-numbered CLUSTER
//! commands answer as the slot's master does; and any percore serves any key.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{
    encode, free_port, try_cmd, wait_until, Conn, Proxy, RedisCluster, Value, READ_TIMEOUT,
};

/// How long a fleet may take to agree on its members (each PINGs the others every 500 ms).
const AGREE_TIMEOUT: Duration = Duration::from_secs(15);

/// How soon a killed member must have left the others' maps: percore drops a peer 2 s after
/// its last answer, and its last answer came at most a ping interval before the kill.
const LEAVE_WITHIN: Duration = Duration::from_millis(3500);

/// The node id percore gives the percore at `addr`: SHA-1 of `host:port`.
fn node_id(addr: &str) -> String {
    sha1_smol::Sha1::from(addr).digest().to_string()
}

/// The raw reply to `line` on `conn`.
fn raw(conn: &mut Conn, line: &str) -> Vec<u8> {
    let args: Vec<&[u8]> = line.split(' ').map(str::as_bytes).collect();
    conn.send_raw(&encode(&args));
    conn.read_raw_reply()
}

/// A connection that has switched to RESP3.
fn resp3(port: u16) -> Conn {
    let mut conn = Conn::connect(port);
    let hello = raw(&mut conn, "HELLO 3");
    assert!(
        hello.starts_with(b"%"),
        "{}",
        String::from_utf8_lossy(&hello)
    );
    conn
}

/// The CLUSTER INFO text of a cluster of `nodes` members whose every slot is served.
fn info_ok(nodes: usize) -> String {
    format!(
        "cluster_state:ok\r\ncluster_slots_assigned:16384\r\ncluster_slots_ok:16384\r\n\
         cluster_slots_pfail:0\r\ncluster_slots_fail:0\r\ncluster_known_nodes:{nodes}\r\n\
         cluster_size:{nodes}\r\ncluster_current_epoch:0\r\ncluster_my_epoch:0\r\n\
         cluster_stats_messages_sent:0\r\ncluster_stats_messages_received:0\r\n\
         total_cluster_links_buffer_limit_exceeded:0\r\n"
    )
}

/// The exact replies of a percore alone at `host:port`: what Redis 7.0.15 sends for a master
/// alone in its cluster (checked against one), but for the id, the address and the bus port.
fn replies_alone(host: &str, port: u16, resp3: bool) -> Vec<(&'static str, String)> {
    let id = node_id(&format!("{host}:{port}"));
    let (map2, map7, meta) = match resp3 {
        true => ("%2", "%7", "%0"),
        false => ("*4", "*14", "*0"),
    };
    let h = host.len();
    let slots = format!(
        "*1\r\n*3\r\n:0\r\n:16383\r\n*4\r\n${h}\r\n{host}\r\n:{port}\r\n$40\r\n{id}\r\n{meta}\r\n"
    );
    let shards = format!(
        "*1\r\n{map2}\r\n$5\r\nslots\r\n*2\r\n:0\r\n:16383\r\n$5\r\nnodes\r\n*1\r\n{map7}\r\n\
         $2\r\nid\r\n$40\r\n{id}\r\n$4\r\nport\r\n:{port}\r\n$2\r\nip\r\n${h}\r\n{host}\r\n\
         $8\r\nendpoint\r\n${h}\r\n{host}\r\n$4\r\nrole\r\n$6\r\nmaster\r\n\
         $18\r\nreplication-offset\r\n:0\r\n$6\r\nhealth\r\n$6\r\nonline\r\n"
    );
    let nodes = format!("{id} {host}:{port}@0 myself,master - 0 0 0 connected 0-16383\n");
    let text = |t: &str| match resp3 {
        true => format!("={}\r\ntxt:{t}\r\n", t.len() + 4),
        false => format!("${}\r\n{t}\r\n", t.len()),
    };
    vec![
        ("CLUSTER SLOTS", slots),
        ("cluster slots", String::new()),
        ("CLUSTER SHARDS", shards),
        ("CLUSTER NODES", text(&nodes)),
        ("CLUSTER INFO", text(&info_ok(1))),
        ("CLUSTER MYID", format!("$40\r\n{id}\r\n")),
    ]
}

fn assert_replies(conn: &mut Conn, expected: &[(&str, String)]) {
    let mut previous = String::new();
    for (line, reply) in expected {
        // An empty expectation: the same as the line before (another spelling of it).
        let reply = if reply.is_empty() { &previous } else { reply };
        let got = raw(conn, line);
        assert_eq!(String::from_utf8_lossy(&got), *reply, "{line}");
        previous = reply.clone();
    }
}

#[test]
fn one_percore_presents_itself_as_the_whole_cluster() {
    let cluster = RedisCluster::start(3, 0);
    let proxy = Proxy::start(&cluster, &[]);
    let announced = Proxy::start(&cluster, &["--announce", "127.0.0.9:7000"]);
    for resp3_first in [false, true] {
        let mut conn = match resp3_first {
            true => resp3(proxy.port),
            false => proxy.conn(),
        };
        assert_replies(
            &mut conn,
            &replies_alone("127.0.0.1", proxy.port, resp3_first),
        );
        let mut conn = match resp3_first {
            true => resp3(announced.port),
            false => announced.conn(),
        };
        assert_replies(&mut conn, &replies_alone("127.0.0.9", 7000, resp3_first));
    }
    let mut conn = proxy.conn();
    assert_eq!(conn.cmd_str("READONLY"), Value::ok());
    assert_eq!(conn.cmd_str("READWRITE"), Value::ok());
    // redis-py's RedisCluster asks for the command table (bare COMMAND) before anything else.
    let commands = conn.cmd_str("COMMAND");
    assert!(
        matches!(&commands, Value::Array(Some(c)) if c.len() > 200),
        "{commands:?}"
    );
    // Other node-administration subcommands stay refused.
    assert!(conn
        .cmd_str("CLUSTER LINKS")
        .text()
        .contains("not supported"));
}

#[test]
fn cluster_info_fails_while_the_backends_leave_slots_unserved() {
    let cluster = RedisCluster::start(3, 0);
    let proxy = Proxy::start(&cluster, &["--refresh-interval", "100ms"]);
    let owner = cluster.master_for_slot(0);
    let info = || proxy.conn().cmd_str("CLUSTER INFO").text();
    assert!(info().starts_with("cluster_state:ok\r\n"));
    // The owner first: once it stops claiming the slots, the others cannot learn them back
    // from it when they forget them in turn.
    let mut masters = cluster.master_ports();
    masters.sort_by_key(|&port| port != owner);
    for port in masters {
        assert_eq!(
            Conn::connect(port).cmd_str("CLUSTER DELSLOTS 0 1 2"),
            Value::ok()
        );
    }
    wait_until("CLUSTER INFO to say fail", AGREE_TIMEOUT, || {
        info().starts_with("cluster_state:fail\r\n")
    });
    let text = info();
    assert!(text.contains("\r\ncluster_slots_ok:16381\r\n"), "{text}");
    assert!(text.contains("\r\ncluster_slots_fail:3\r\n"), "{text}");
    // percore keeps advertising every slot.
    let slots = proxy.conn().cmd_str("CLUSTER SLOTS");
    assert_eq!(advertised_of(&slots), Some(vec![(0, 16383, proxy.port)]));
    let restored = Conn::connect(owner).cmd_str("CLUSTER ADDSLOTS 0 1 2");
    assert_eq!(restored, Value::ok());
    cluster.wait_ok();
    wait_until("CLUSTER INFO to say ok again", AGREE_TIMEOUT, || {
        info() == info_ok(1)
    });
}

/// (first, last, port) of each range of a CLUSTER SLOTS reply, if it is one.
fn advertised_of(reply: &Value) -> Option<Vec<(i64, i64, u16)>> {
    let Value::Array(Some(ranges)) = reply else {
        return None;
    };
    let mut out = Vec::new();
    for range in ranges {
        let Value::Array(Some(fields)) = range else {
            return None;
        };
        let Value::Array(Some(node)) = fields.get(2)? else {
            return None;
        };
        assert_eq!(node.len(), 4, "{node:?}");
        assert_eq!(node[0].text(), "127.0.0.1");
        let port = node[1].as_int()? as u16;
        assert_eq!(node[2].text(), node_id(&format!("127.0.0.1:{port}")));
        out.push((fields[0].as_int()?, fields[1].as_int()?, port));
    }
    Some(out)
}

/// What percore on `port` advertises, if it answers.
fn advertised(port: u16) -> Option<Vec<(i64, i64, u16)>> {
    advertised_of(&try_cmd(port, "CLUSTER SLOTS")?)
}

/// The map a fleet of these members advertises: sorted by address, slots split evenly.
fn fleet_map(ports: &[u16]) -> Vec<(i64, i64, u16)> {
    let mut addrs: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    addrs.sort();
    let ranges: &[(i64, i64)] = match ports.len() {
        1 => &[(0, 16383)],
        2 => &[(0, 8191), (8192, 16383)],
        3 => &[(0, 5460), (5461, 10922), (10923, 16383)],
        n => panic!("no split written down for {n} members"),
    };
    addrs
        .iter()
        .zip(ranges)
        .map(|(addr, &(first, last))| (first, last, addr[10..].parse().unwrap()))
        .collect()
}

/// Waits until every proxy on `watching` advertises exactly the members `members`.
fn wait_for_fleet(watching: &[u16], members: &[u16]) {
    let expected = fleet_map(members);
    wait_until(
        &format!("{watching:?} to advertise {members:?}"),
        AGREE_TIMEOUT,
        || {
            watching
                .iter()
                .all(|&p| advertised(p).as_ref() == Some(&expected))
        },
    );
}

/// `count` different free ports.
fn free_ports(count: usize) -> Vec<u16> {
    let mut ports: Vec<u16> = Vec::new();
    while ports.len() < count {
        let port = free_port();
        if !ports.contains(&port) {
            ports.push(port);
        }
    }
    ports
}

/// Starts member `index` of a fleet on `ports`, and waits until it serves the cluster. The
/// first member's peer list names itself too; the others' do not.
fn start_member(cluster: &RedisCluster, ports: &[u16], index: usize) -> Proxy {
    let peers: Vec<String> = ports
        .iter()
        .enumerate()
        .filter(|&(i, _)| i == 0 || i != index)
        .map(|(_, p)| format!("127.0.0.1:{p}"))
        .collect();
    let proxy = Proxy::start_on(
        ports[index],
        &cluster.seeds(),
        &["--proxy-peers", &peers.join(",")],
    );
    wait_until("percore to serve the cluster", AGREE_TIMEOUT, || {
        try_cmd(proxy.port, "SET percore:ready 1") == Some(Value::ok())
    });
    proxy
}

#[test]
fn a_fleet_advertises_its_live_members_with_one_split() {
    let cluster = RedisCluster::start(3, 0);
    let ports = free_ports(3);
    // Two of three running: they advertise each other only.
    let mut proxies = vec![
        start_member(&cluster, &ports, 0),
        start_member(&cluster, &ports, 1),
    ];
    wait_for_fleet(&ports[..2], &ports[..2]);
    proxies.push(start_member(&cluster, &ports, 2));
    wait_for_fleet(&ports, &ports);
    for (index, &port) in ports.iter().enumerate() {
        let mut conn = Conn::connect(port);
        let me = format!("127.0.0.1:{port}");
        assert_eq!(conn.cmd_str("CLUSTER MYID").text(), node_id(&me));
        let nodes = conn.cmd_str("CLUSTER NODES").text();
        assert_eq!(nodes.lines().count(), 3, "{nodes}");
        let myself: Vec<&str> = nodes.lines().filter(|l| l.contains("myself")).collect();
        assert_eq!(myself.len(), 1, "{nodes}");
        assert!(myself[0].starts_with(&format!("{} {me}@0 myself,master", node_id(&me))));
        assert_eq!(conn.cmd_str("CLUSTER INFO").text(), info_ok(3));
        let shards = conn.cmd_str("CLUSTER SHARDS");
        let Value::Array(Some(shards)) = shards else {
            panic!("CLUSTER SHARDS: {shards:?}")
        };
        assert_eq!(shards.len(), 3);
        // Any proxy serves any key, whichever member the key's slot is advertised on.
        for key in 0..20 {
            let key = format!("fleet:{index}:{key}");
            assert_eq!(conn.cmd(&[b"SET", key.as_bytes(), b"v"]), Value::ok());
            let next = ports[(index + 1) % ports.len()];
            assert_eq!(
                Conn::connect(next).cmd(&[b"GET", key.as_bytes()]),
                Value::bulk("v")
            );
        }
    }

    // A member killed leaves the others' maps within LEAVE_WITHIN ...
    drop(proxies.remove(1));
    let killed = Instant::now();
    let left = [ports[0], ports[2]];
    wait_for_fleet(&left, &left);
    let took = killed.elapsed();
    assert!(took < LEAVE_WITHIN, "the killed member left after {took:?}");
    // ... and comes back when it runs again on its address.
    proxies.insert(1, start_member(&cluster, &ports, 1));
    wait_for_fleet(&ports, &ports);
}

#[test]
fn redis_cli_in_cluster_mode_works_through_percore() {
    let cluster = RedisCluster::start(3, 0);
    let proxy = Proxy::start(&cluster, &[]);
    let cli = |args: &[&str]| {
        let output = Command::new("redis-cli")
            .args(["-c", "-p", &proxy.port.to_string()])
            .args(args)
            .stderr(Stdio::inherit())
            .output()
            .expect("run redis-cli");
        assert!(output.status.success());
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    };
    for (port, key) in common::key_on_each_master(&cluster, "cli:") {
        assert_eq!(cli(&["SET", &key, &port.to_string()]), "OK");
        assert_eq!(cli(&["GET", &key]), port.to_string());
    }
}

#[test]
fn slot_numbered_commands_answer_as_the_slots_master() {
    let cluster = RedisCluster::start(3, 0);
    let proxy = Proxy::start(&cluster, &[]);
    let mut conn = proxy.conn();
    for (_, key) in common::key_on_each_master(&cluster, "slotted:") {
        for i in 0..5 {
            let key = format!("{{{key}}}:{i}");
            assert_eq!(conn.cmd(&[b"SET", key.as_bytes(), b"v"]), Value::ok());
        }
        let slot = common::slot_of(&key);
        let mut master = Conn::connect(cluster.master_for_slot(slot));
        for line in [
            format!("CLUSTER COUNTKEYSINSLOT {slot}"),
            format!("CLUSTER GETKEYSINSLOT {slot} 3"),
            format!("CLUSTER GETKEYSINSLOT {slot} 100"),
            format!("CLUSTER GETKEYSINSLOT {slot} -1"),
            format!("CLUSTER GETKEYSINSLOT {slot} x"),
        ] {
            let direct = raw(&mut master, &line);
            assert_eq!(raw(&mut conn, &line), direct, "{line}");
        }
        let count = conn.cmd_str(&format!("CLUSTER COUNTKEYSINSLOT {slot}"));
        assert_eq!(count, Value::Int(5));
    }
    // Slots Redis refuses get its words (compared with a node's own).
    let mut node = Conn::connect(cluster.nodes[0].port);
    for line in [
        "CLUSTER COUNTKEYSINSLOT 16384",
        "CLUSTER COUNTKEYSINSLOT -1",
        "CLUSTER COUNTKEYSINSLOT 01",
        "CLUSTER COUNTKEYSINSLOT x",
        "CLUSTER GETKEYSINSLOT 16384 1",
        "CLUSTER GETKEYSINSLOT 16384 x",
        "CLUSTER GETKEYSINSLOT x 1",
        "CLUSTER COUNTKEYSINSLOT 1 2",
    ] {
        let direct = raw(&mut node, line);
        assert!(direct.starts_with(b"-ERR"), "{line}");
        assert_eq!(raw(&mut conn, line), direct, "{line}");
    }
}

#[test]
fn listening_on_every_address_needs_announce() {
    for listen in ["0.0.0.0:6390", "[::]:6390"] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_percore"))
            .args(["--listen", listen, "--cluster", "127.0.0.1:1"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start percore");
        let deadline = Instant::now() + READ_TIMEOUT;
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("percore --listen {listen} did not refuse to start");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!status.success(), "{listen}");
        assert!(stderr.contains("give --announce host:port"), "{stderr}");
    }
}
