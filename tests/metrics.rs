//! `--metrics-listen`: `/metrics` scraped after known traffic and parsed by a real Prometheus
//! text parser (the Python `prometheus_client` package's, installed under the target
//! directory on first use) has every core's counters equal to `PROXY INFO`'s, histograms
//! Prometheus accepts, and `/health` says 200 while serving and 503 while draining; bad
//! requests get 4xx.

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use common::{free_port, wait_until, Proxy, RedisCluster, Value};

/// Longest pip may take to install `prometheus_client` (seconds on a fresh machine; this only
/// bounds a registry that stops answering).
const PIP_TIMEOUT: Duration = Duration::from_secs(300);

/// The parser: the samples of a scrape, as `name{labels} value` lines with the labels sorted,
/// printed as JSON (name -> labels -> value).
const PARSE: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = {}
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
        out.setdefault(s.name, {})[labels] = s.value
print(json.dumps(out))
"#;

/// Where `prometheus_client` is installed (a `pip --target` directory), installed once.
fn prometheus_client() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("prometheus-client-py");
        let importable = || {
            Command::new("python3")
                .args(["-c", "import prometheus_client.parser"])
                .env("PYTHONPATH", &dir)
                .status()
                .is_ok_and(|s| s.success())
        };
        if !importable() {
            let mut pip = common::die_with_the_test(Command::new("python3"));
            pip.args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .args(["--no-input", "--upgrade", "--target"])
            .arg(&dir)
            .arg("prometheus_client");
            let mut child = pip
                .spawn()
                .expect("python3 -m pip (install Python 3 with pip)");
            let deadline = std::time::Instant::now() + PIP_TIMEOUT;
            let status = loop {
                if let Some(status) = child.try_wait().expect("wait for pip") {
                    break status;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "pip install timed out"
                );
                std::thread::sleep(Duration::from_millis(100));
            };
            assert!(status.success(), "pip install prometheus_client failed");
            assert!(
                importable(),
                "prometheus_client installed but not importable"
            );
        }
        dir
    })
}

/// One HTTP request to the metrics port; the status code and body.
fn http(port: u16, request: &str) -> (u16, String) {
    try_http(port, request).expect("an HTTP response")
}

/// [`http`], or `None` if there is no complete response (nothing listens, say).
fn try_http(port: u16, request: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    stream.write_all(request.as_bytes()).ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok())?;
    Some((status, body.to_string()))
}

fn get(port: u16, path: &str) -> (u16, String) {
    http(port, &format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n"))
}

/// The scrape's samples, parsed by `prometheus_client`: name -> sorted labels -> value.
fn scrape(port: u16) -> HashMap<String, HashMap<String, f64>> {
    let (status, body) = get(port, "/metrics");
    assert_eq!(status, 200, "{body}");
    let mut child = Command::new("python3")
        .args(["-c", PARSE])
        .env("PYTHONPATH", prometheus_client())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the parser refused the scrape:\n{body}"
    );
    serde_json::from_slice(&out.stdout).expect("the parser's JSON")
}

/// `PROXY INFO`'s figures per core: core -> name -> value.
fn proxy_info(text: &str) -> HashMap<String, HashMap<String, u64>> {
    let mut cores = HashMap::new();
    for line in text.lines() {
        let Some((core, fields)) = line.trim().split_once(':') else {
            continue;
        };
        let Some(index) = core.strip_prefix("core") else {
            continue;
        };
        if index.parse::<u32>().is_err() || !fields.contains("requests=") {
            continue;
        }
        let figures = fields
            .split(',')
            .filter_map(|f| f.split_once('='))
            .filter_map(|(k, v)| Some((k.to_string(), v.parse().ok()?)))
            .collect();
        cores.insert(index.to_string(), figures);
    }
    cores
}

#[test]
fn metrics_match_proxy_info_and_health_is_200_then_503_while_draining() {
    let cluster = RedisCluster::start(3, 0);
    let metrics_port = free_port();
    let listen = format!("127.0.0.1:{metrics_port}");
    let proxy = Proxy::start(
        &cluster,
        &["--metrics-listen", &listen, "--backend-timeout", "4s"],
    );
    wait_until("/health to say 200", Duration::from_secs(10), || {
        get(metrics_port, "/health").0 == 200
    });
    assert_eq!(get(metrics_port, "/health"), (200, "ok\n".into()));

    // Known traffic, over several connections (so both cores get some).
    for round in 0..6 {
        let mut c = proxy.conn();
        for i in 0..50 {
            let key = format!("m:{round}:{i}");
            assert_eq!(c.cmd_str(&format!("SET {key} v")), Value::ok());
            assert_eq!(c.cmd_str(&format!("GET {key}")), Value::bulk("v"));
        }
        let mget = c.cmd_str(&format!(
            "MGET m:{round}:1 m:{round}:2 m:{round}:3 m:{round}:4"
        ));
        assert!(matches!(mget, Value::Array(Some(ref v)) if v.len() == 4));
        assert!(c.cmd_str("AUTH nobody wrong").is_error());
    }
    let mut admin = proxy.conn();
    let info = admin.cmd_str("PROXY INFO").text();
    let cores = proxy_info(&info);
    assert_eq!(cores.len(), 2, "{info}");
    let samples = scrape(metrics_port);

    let value = |name: &str, labels: &str| -> u64 {
        let found = samples.get(name).and_then(|by| by.get(labels));
        let found = found.unwrap_or_else(|| panic!("no {name}{{{labels}}} in {samples:?}"));
        *found as u64
    };
    for (core, figures) in &cores {
        let at = |extra: &str| {
            let mut labels = vec![format!("core={core}"), "pool=default".to_string()];
            labels.extend(extra.split(',').filter(|l| !l.is_empty()).map(String::from));
            labels.sort();
            labels.join(",")
        };
        let pairs = [
            ("percore_requests_total", at(""), "requests"),
            (
                "percore_client_connections_accepted_total",
                at(""),
                "connections_total",
            ),
            ("percore_client_connections", at(""), "clients"),
            ("percore_redirects_total", at("kind=moved"), "moved"),
            ("percore_redirects_total", at("kind=ask"), "asked"),
            ("percore_backend_failures_total", at(""), "backend_failures"),
            ("percore_errors_total", at("kind=auth"), "auth_failures"),
            (
                "percore_errors_total",
                at("kind=lease_refused"),
                "lease_refused",
            ),
            (
                "percore_errors_total",
                at("kind=monitor_dropped"),
                "monitor_dropped",
            ),
            ("percore_leased_connections", at(""), "leased"),
            ("percore_pooled_connections", at(""), "pooled"),
        ];
        for (name, labels, figure) in pairs {
            assert_eq!(
                value(name, &labels),
                figures[figure],
                "{name}{{{labels}}} against PROXY INFO's {figure} on core {core}"
            );
        }
        // Every request's reply was written before the scrape: each is in the histogram.
        let count = value("percore_request_duration_seconds_count", &at(""));
        assert_eq!(count, figures["requests"], "histogram count on core {core}");
        let inf = value("percore_request_duration_seconds_bucket", &at("le=+Inf"));
        assert_eq!(inf, count);
        assert!(samples["percore_request_duration_seconds_sum"][&at("")] >= 0.0);
        assert!(value("percore_client_received_bytes_total", &at("")) > 0);
    }
    // The 600 SETs and GETs took time on whichever cores served them (a core that got only the
    // admin connection answered its PROXY INFO itself, in no time on the ring's clock).
    let seconds: f64 = samples["percore_request_duration_seconds_sum"]
        .values()
        .sum();
    assert!(seconds > 0.0, "no time in the request histogram");
    let total = |name: &str| samples[name].values().sum::<f64>() as u64;
    assert!(total("percore_errors_total") >= 6, "six failed AUTHs");
    assert!(
        total("percore_fragments_total") >= 6,
        "the MGETs were split"
    );
    assert!(total("percore_server_requests_total") >= 600);
    assert_eq!(value("percore_pool_serving", "pool=default"), 1);

    // Bad requests.
    assert_eq!(get(metrics_port, "/nope").0, 404);
    assert_eq!(http(metrics_port, "POST /metrics HTTP/1.1\r\n\r\n").0, 405);
    assert_eq!(http(metrics_port, "\x01\x02 garbage\r\n\r\n").0, 400);
    // 8 KiB and still no end of the headers: refused once read (all of it, so percore's
    // close is not a reset).
    let mut long = String::from("GET /metrics HTTP/1.1\r\nX: ");
    long.push_str(&"a".repeat(8 * 1024 - long.len()));
    assert_eq!(http(metrics_port, &long).0, 400);
    // A request never finished: 408 once the request timeout (5 s) has passed.
    let started = std::time::Instant::now();
    assert_eq!(
        http(metrics_port, "GET /metrics HTTP/1.1\r\nHost: x\r\n").0,
        408
    );
    assert!(
        started.elapsed() >= Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    drop(admin);

    // Draining: a request in flight holds the drain open, and /health says 503 meanwhile.
    // Three seconds of it (within the 5 s --shutdown-timeout; --backend-timeout raised above
    // it): with one, a loaded machine sometimes ended the drain before a probe got through.
    let mut slow = proxy.conn();
    slow.send_raw(&common::encode(&[b"DEBUG", b"SLEEP", b"3"]));
    // Signalled once it is at a backend, not after a fixed pause: a request the proxy has not
    // read yet when the drain starts is not served (the drain stops reading), and a loaded
    // machine can leave it unread for longer than any pause chosen here.
    wait_until(
        "the slow request at a backend",
        Duration::from_secs(2),
        || {
            let (_, body) = get(metrics_port, "/metrics");
            let sum = |name: &str| -> f64 {
                let samples = body.lines().filter(|line| line.starts_with(name));
                let values =
                    samples.filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok());
                values.sum()
            };
            sum("percore_server_requests_total{") > sum("percore_server_responses_total{")
        },
    );
    proxy.signal("-TERM");
    let health = || try_http(metrics_port, "GET /health HTTP/1.1\r\n\r\n");
    // The answer that said 503 is the one checked: a second probe could come after the drain
    // (a CI run on the loaded machine saw the first 503 so late that the next found the port
    // closed).
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut probes = Vec::new();
    while std::time::Instant::now() < deadline {
        let answer = health();
        let found = matches!(answer, Some((503, _)));
        probes.push(answer);
        if found {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        probes.last(),
        Some(&Some((503, "draining\n".into()))),
        "/health while draining answered {probes:?}; percore's log:\n{}",
        proxy.log()
    );
    assert_eq!(
        slow.read_value(),
        Value::ok(),
        "the request in flight is answered"
    );
}
