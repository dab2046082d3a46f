//! redis-rs's session features against percore, with the library's default settings: the
//! `sessions` and `cluster-sessions` suites of redis_rs.rs.
//!
//! - sessions: `redis::pipe().atomic()` in one slot, one aborted at queue time and one across
//!   slots, neither of which may change anything; a plain pipeline across masters; WATCH with
//!   another client's write making EXEC nil, UNWATCH, and the `transaction()` helper retrying
//!   once; BLPOP woken by another client's push, timing out, and BLMOVE; `as_pubsub()` with
//!   subscribe, psubscribe, `get_message` and the unsubscribes, and in RESP3 a connection with a
//!   push sender, subscribed (sharded too) while it goes on serving commands; RESET, which ends
//!   a WATCH, the name and RESP3.
//! - cluster-sessions: `ClusterClient`: an atomic pipeline in one slot (hash tags), which the
//!   sync cluster connection of redis-rs 1.x refuses itself, and BLPOP.

use std::collections::HashMap;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use redis::cluster::ClusterClient;
use redis::{Commands, ConnectionLike, Direction, PushInfo, PushKind, RedisResult, Value};

use super::{connect, error, Log, Step, Target, TIMEOUT};

/// When another client pushes to the list a BLPOP waits on, and the shortest wait that shows
/// the BLPOP did block (a little under PUSH_AFTER: timers are not exact).
const PUSH_AFTER: Duration = Duration::from_millis(300);
const BLOCKED_AT_LEAST: Duration = Duration::from_millis(250);
/// The longest a woken BLPOP may take.
const BLOCKED_AT_MOST: Duration = Duration::from_secs(4);
/// The timeout of the BLPOP that must time out (seconds, as the command takes it), and how
/// late its nil may come.
const POP_TIMEOUT: f64 = 0.3;
const POP_TIMEOUT_LATE: Duration = Duration::from_secs(2);
/// How long a message may take to arrive once published.
const MESSAGE_WAIT: Duration = Duration::from_secs(5);
/// What redis-rs's sync cluster connection answers a pipeline, atomic or not, itself.
const CLUSTER_PIPELINES_REFUSED: &str = "This connection does not support pipelining";
/// How long to wait for a message that must not come.
const QUIET: Duration = Duration::from_millis(200);

fn bulk(text: &str) -> Value {
    Value::BulkString(text.as_bytes().to_vec())
}

fn between(log: &mut Log, what: &str, got: Duration, low: Duration, high: Duration) -> Step {
    if got < low || got > high {
        return Err(format!(
            "MISMATCH {what}: {got:?}, want {low:?} to {high:?}"
        ));
    }
    log.0.push(format!("ok {what} ({got:?})"));
    Ok(())
}

fn refused<T: std::fmt::Debug>(log: &mut Log, what: &str, got: RedisResult<T>, text: &str) -> Step {
    match got {
        Err(e) if e.to_string().contains(text) => {
            log.0.push(format!("ok {what} (refused: {e})"));
            Ok(())
        }
        Err(e) => Err(format!("MISMATCH {what}: error {e}, want {text}")),
        Ok(got) => Err(format!("MISMATCH {what}: expected an error, got {got:?}")),
    }
}

/// Deletes keys one by one: a cluster node refuses keys of several slots in one DEL (percore
/// would split them), and the suites run against Redis too.
fn clear(con: &mut impl ConnectionLike, keys: &[&str]) -> Step {
    for key in keys {
        redis::cmd("DEL").arg(key).exec(con).map_err(error("DEL"))?;
    }
    Ok(())
}

pub fn sessions(log: &mut Log, target: &Target) -> Step {
    let mut con = connect(target, target.login).map_err(error("connect"))?;
    let mut other = connect(target, target.login).map_err(error("connect"))?;
    let p = target.prefix;
    transactions(log, &mut con, &mut other, p)?;
    plain_pipeline(log, &mut con, &mut other, p)?;
    watch(log, &mut con, &mut other, p)?;
    blocking(log, &mut con, target)?;
    pubsub(log, &mut other, target)?;
    if target.protocol == Some(3) {
        resp3_pushes(log, &mut other, target)?;
    }
    reset(log, &mut other, target)
}

fn transactions(
    log: &mut Log,
    con: &mut redis::Connection,
    other: &mut redis::Connection,
    p: &str,
) -> Step {
    let (a, n, b) = (
        format!("{{{p}:tx}}:a"),
        format!("{{{p}:tx}}:n"),
        format!("{{{p}:elsewhere}}:b"),
    );
    clear(other, &[&a, &n, &b])?;
    let tx = redis::pipe()
        .atomic()
        .set(&a, 1)
        .incr(&n, 1)
        .incr(&n, 1)
        .get(&a)
        .query(con);
    let want = vec![Value::Okay, Value::Int(1), Value::Int(2), bulk("1")];
    log.expect("pipe().atomic() is MULTI/EXEC", tx, want)?;
    // Replies of every type inside EXEC (a map and a double in RESP3).
    let (h, z) = (format!("{{{p}:tx}}:h"), format!("{{{p}:tx}}:z"));
    let typed = redis::pipe()
        .atomic()
        .hset(&h, "f", "v")
        .hgetall(&h)
        .zadd(&z, "m", 1.5)
        .zscore(&z, "m")
        .del(&[&h, &z])
        .query(con);
    let map = HashMap::from([("f".to_string(), "v".to_string())]);
    let what = "pipe().atomic() with a hash and a sorted set";
    log.expect(what, typed, (1i64, map, 1i64, 1.5f64, 2i64))?;

    let aborted = redis::pipe()
        .atomic()
        .set(&a, "aborted")
        .cmd("NO-SUCH-COMMAND")
        .arg(&a)
        .query::<Value>(con);
    let what = "atomic pipe with an unknown command";
    refused(log, what, aborted, "unknown command")?;
    let what = "nothing of the aborted transaction ran";
    log.expect(what, other.get(&a), "1".to_string())?;
    let cross = redis::pipe()
        .atomic()
        .set(&a, "cross")
        .set(&b, "cross")
        .query::<Value>(con);
    // EXEC answers -CROSSSLOT (as a cluster node owning every slot does), which redis-rs
    // reports as a reply it cannot parse, against Redis too.
    let text = "Invalid response when parsing multi response";
    refused(log, "atomic pipe across slots", cross, text)?;
    let what = "nothing of the cross-slot transaction ran";
    log.expect(what, other.get(&a), "1".to_string())?;
    log.expect(what, other.get(&b), None::<String>)?;
    clear(other, &[&a, &n])
}

/// A pipeline that is not a transaction, across masters.
fn plain_pipeline(
    log: &mut Log,
    con: &mut redis::Connection,
    other: &mut redis::Connection,
    p: &str,
) -> Step {
    let keys: Vec<String> = (0..6).map(|i| format!("{p}:np:{i}")).collect();
    let mut pipe = redis::pipe();
    for (i, key) in keys.iter().enumerate() {
        pipe.set(key, i);
    }
    for key in &keys {
        pipe.incr(key, 1);
    }
    let mut want = vec![Value::Okay; keys.len()];
    want.extend((1..=keys.len() as i64).map(Value::Int));
    log.expect("pipe() across masters", pipe.query(con), want)?;
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    clear(other, &keys)
}

fn watch(
    log: &mut Log,
    con: &mut redis::Connection,
    other: &mut redis::Connection,
    p: &str,
) -> Step {
    let k = format!("{{{p}:w}}:balance");
    let _: () = other.set(&k, 10).map_err(error("SET"))?;
    redis::cmd("WATCH")
        .arg(&k)
        .exec(con)
        .map_err(error("WATCH"))?;
    let balance: i64 = con.get(&k).map_err(error("GET"))?;
    let _: () = other.set(&k, 100).map_err(error("SET"))?;
    let got = redis::pipe().atomic().set(&k, balance - 1).query(con);
    let what = "EXEC after another client changed the watched key: nil";
    log.expect(what, got, None::<Vec<Value>>)?;
    log.expect("the other client's write stands", other.get(&k), 100i64)?;

    redis::cmd("WATCH")
        .arg(&k)
        .exec(con)
        .map_err(error("WATCH"))?;
    let unwatch = redis::cmd("UNWATCH").query(con);
    log.expect("UNWATCH", unwatch, "OK".to_string())?;
    let _: () = other.set(&k, 50).map_err(error("SET"))?;
    let got = redis::pipe().atomic().incr(&k, 1).query(con);
    log.expect("EXEC after UNWATCH", got, Some(vec![Value::Int(51)]))?;

    let mut attempts = 0;
    let result = redis::transaction(con, &[&k], |con, pipe| {
        attempts += 1;
        let balance: i64 = con.get(&k)?;
        if attempts == 1 {
            // A concurrent change: this attempt must fail and be retried.
            let _: i64 = other.incr(&k, 1)?;
        }
        pipe.set(&k, balance - 1).query::<Option<Vec<Value>>>(con)
    });
    log.expect("transaction() with one conflict", result, vec![Value::Okay])?;
    log.expect("transaction() attempts", Ok(attempts), 2)?;
    let what = "transaction() applied once, on the fresh value";
    log.expect(what, other.get(&k), 51i64)?;
    clear(other, &[&k])
}

/// Pops with `pop` on `con` while `pusher` (another connection) pushes `element` onto `key`
/// after [`PUSH_AFTER`]; the pop's result and how long it took.
fn pop_while_pushed<C: ConnectionLike, P: ConnectionLike + Send + 'static, T>(
    con: &mut C,
    mut pusher: P,
    key: &str,
    element: &'static str,
    pop: impl FnOnce(&mut C) -> RedisResult<T>,
) -> Result<(RedisResult<T>, Duration), String> {
    let pushed_key = key.to_string();
    let push = thread::spawn(move || {
        thread::sleep(PUSH_AFTER);
        redis::cmd("RPUSH")
            .arg(pushed_key)
            .arg(element)
            .exec(&mut pusher)
    });
    let start = Instant::now();
    let got = pop(con);
    let waited = start.elapsed();
    match push.join() {
        Ok(Ok(())) => Ok((got, waited)),
        Ok(Err(e)) => Err(format!("ERROR from redis-rs at the RPUSH: {e}")),
        Err(_) => Err("the pushing thread panicked".into()),
    }
}

fn blocking(log: &mut Log, con: &mut redis::Connection, target: &Target) -> Step {
    let p = target.prefix;
    let (q, dst) = (format!("{{{p}:q}}:jobs"), format!("{{{p}:q}}:done"));
    clear(con, &[&q, &dst])?;
    let pusher = connect(target, target.login).map_err(error("connect"))?;
    let (got, waited) = pop_while_pushed(con, pusher, &q, "job-1", |con| {
        // 0: wait for ever, as job queues do.
        redis::cmd("BLPOP")
            .arg(&q)
            .arg(0)
            .query::<Option<[String; 2]>>(con)
    })?;
    let want = Some([q.clone(), "job-1".to_string()]);
    log.expect("BLPOP woken by another client's RPUSH", got, want)?;
    let what = "BLPOP waited for the push";
    between(log, what, waited, BLOCKED_AT_LEAST, BLOCKED_AT_MOST)?;

    let start = Instant::now();
    log.expect(
        "BLPOP timing out",
        con.blpop(&q, POP_TIMEOUT),
        None::<[String; 2]>,
    )?;
    let (low, high) = (
        Duration::from_secs_f64(POP_TIMEOUT) - QUIET / 4,
        POP_TIMEOUT_LATE,
    );
    between(log, "BLPOP's timeout", start.elapsed(), low, high)?;
    let _: usize = con.rpush(&q, &["a", "b"]).map_err(error("RPUSH"))?;
    let want = Some([q.clone(), "a".to_string()]);
    log.expect("BLPOP with an element there", con.blpop(&q, 1.0), want)?;
    let moved = con.blmove(&q, &dst, Direction::Left, Direction::Right, 1.0);
    log.expect("BLMOVE", moved, Some("b".to_string()))?;
    let got = con.lrange(&dst, 0, -1);
    log.expect("BLMOVE's destination", got, vec!["b".to_string()])?;
    clear(con, &[&q, &dst])
}

/// A message as (kind, pattern, channel, payload).
type Message = (&'static str, Option<String>, String, String);

fn message(msg: RedisResult<redis::Msg>) -> RedisResult<Message> {
    let msg = msg?;
    let pattern = if msg.from_pattern() {
        Some(msg.get_pattern()?)
    } else {
        None
    };
    let kind = if pattern.is_some() {
        "pmessage"
    } else {
        "message"
    };
    Ok((
        kind,
        pattern,
        msg.get_channel_name().into(),
        msg.get_payload()?,
    ))
}

fn pubsub(log: &mut Log, other: &mut redis::Connection, target: &Target) -> Step {
    let p = target.prefix;
    let (ch, pat) = (format!("{p}:news"), format!("{p}:ne*"));
    let mut sub = connect(target, target.login).map_err(error("connect"))?;
    let mut ps = sub.as_pubsub();
    ps.subscribe(&ch).map_err(error("subscribe"))?;
    ps.psubscribe(&pat).map_err(error("psubscribe"))?;
    ps.set_read_timeout(Some(MESSAGE_WAIT))
        .map_err(error("timeout"))?;
    let numsub = redis::cmd("PUBSUB").arg("NUMSUB").arg(&ch).query(other);
    log.expect("PUBSUB NUMSUB", numsub, HashMap::from([(ch.clone(), 1i64)]))?;
    let what = "PUBLISH counts the channel and the pattern";
    log.expect(what, other.publish(&ch, "hello"), 2usize)?;
    let want = ("message", None, ch.clone(), "hello".to_string());
    log.expect("message", message(ps.get_message()), want)?;
    let want = (
        "pmessage",
        Some(pat.clone()),
        ch.clone(),
        "hello".to_string(),
    );
    log.expect("pmessage", message(ps.get_message()), want)?;

    ps.unsubscribe(&ch).map_err(error("unsubscribe"))?;
    ps.punsubscribe(&pat).map_err(error("punsubscribe"))?;
    let what = "PUBLISH after the unsubscribes";
    log.expect(what, other.publish(&ch, "unheard"), 0usize)?;
    ps.set_read_timeout(Some(QUIET)).map_err(error("timeout"))?;
    match ps.get_message() {
        Err(e) if e.is_timeout() => log.0.push("ok nothing more".into()),
        got => return Err(format!("MISMATCH nothing more: got {:?}", message(got))),
    }
    drop(ps);
    sub.set_read_timeout(Some(TIMEOUT))
        .map_err(error("timeout"))?;
    let pong = redis::cmd("PING").query(&mut sub);
    log.expect(
        "the connection goes on after pub/sub",
        pong,
        "PONG".to_string(),
    )
}

/// RESP3: a connection with a push sender subscribes (a channel, a pattern, a sharded channel)
/// and goes on serving commands while the confirmations and messages come as pushes.
fn resp3_pushes(log: &mut Log, other: &mut redis::Connection, target: &Target) -> Step {
    let p = target.prefix;
    let (ch, pat, sch) = (
        format!("{p}:pushed"),
        format!("{p}:push*"),
        format!("{p}:sharded"),
    );
    let (sender, pushes) = mpsc::channel::<PushInfo>();
    let mut con = connect(target, target.login).map_err(error("connect"))?;
    con.set_push_sender(sender);
    con.subscribe_resp3(&ch).map_err(error("subscribe_resp3"))?;
    con.psubscribe_resp3(&pat)
        .map_err(error("psubscribe_resp3"))?;
    redis::cmd("SSUBSCRIBE")
        .arg(&sch)
        .set_no_response(true)
        .exec(&mut con)
        .map_err(error("SSUBSCRIBE"))?;
    let got = con.get(format!("{p}:missing"));
    log.expect(
        "RESP3: GET on the subscribed connection",
        got,
        None::<String>,
    )?;
    log.expect("RESP3: PUBLISH", other.publish(&ch, "hello"), 2usize)?;
    log.expect("RESP3: SPUBLISH", other.spublish(&sch, "sharded"), 1usize)?;
    let mut got = Vec::new();
    let deadline = Instant::now() + MESSAGE_WAIT;
    // Pushes are read along with replies: PING until the six have come.
    while got.len() < 6 && Instant::now() < deadline {
        let _: String = redis::cmd("PING").query(&mut con).map_err(error("PING"))?;
        got.extend(pushes.try_iter().map(|push| (push.kind, push.data)));
    }
    let want = vec![
        (PushKind::Subscribe, vec![bulk(&ch), Value::Int(1)]),
        (PushKind::PSubscribe, vec![bulk(&pat), Value::Int(2)]),
        (PushKind::SSubscribe, vec![bulk(&sch), Value::Int(1)]),
        (PushKind::Message, vec![bulk(&ch), bulk("hello")]),
        (
            PushKind::PMessage,
            vec![bulk(&pat), bulk(&ch), bulk("hello")],
        ),
        (PushKind::SMessage, vec![bulk(&sch), bulk("sharded")]),
    ];
    log.expect("RESP3: the pushes, in order", Ok(got), want)
}

fn reset(log: &mut Log, other: &mut redis::Connection, target: &Target) -> Step {
    let k = format!("{{{}:reset}}:k", target.prefix);
    clear(other, &[&k])?;
    let mut s = connect(target, target.login).map_err(error("connect"))?;
    redis::cmd("CLIENT")
        .arg("SETNAME")
        .arg("before-reset")
        .exec(&mut s)
        .map_err(error("CLIENT SETNAME"))?;
    redis::cmd("WATCH")
        .arg(&k)
        .exec(&mut s)
        .map_err(error("WATCH"))?;
    let _: () = other
        .set(&k, "changed while watched")
        .map_err(error("SET"))?;
    log.expect(
        "RESET",
        redis::cmd("RESET").query(&mut s),
        "RESET".to_string(),
    )?;
    let name = redis::cmd("CLIENT").arg("GETNAME").query(&mut s);
    log.expect("RESET drops the name", name, None::<String>)?;
    let info: String = redis::cmd("CLIENT")
        .arg("INFO")
        .query(&mut s)
        .map_err(error("CLIENT INFO"))?;
    log.expect(
        "RESET goes back to RESP2",
        Ok(info.contains(" resp=2")),
        true,
    )?;
    let got = redis::pipe().atomic().set(&k, "after reset").query(&mut s);
    log.expect(
        "RESET ended the WATCH: EXEC applies",
        got,
        Some(vec![Value::Okay]),
    )?;
    log.expect(
        "the write after RESET",
        other.get(&k),
        "after reset".to_string(),
    )?;
    clear(other, &[&k])
}

pub fn cluster_sessions(log: &mut Log, target: &Target) -> Step {
    let mut builder = ClusterClient::builder([target.url(None)]);
    if let Some((password, user)) = target.login {
        builder = builder.password(password);
        if let Some(user) = user {
            builder = builder.username(user);
        }
    }
    let client = builder.build().map_err(error("ClusterClient"))?;
    let connect = || -> RedisResult<redis::cluster::ClusterConnection> {
        let con = client.get_connection()?;
        con.set_read_timeout(Some(TIMEOUT))?;
        Ok(con)
    };
    let mut con = connect().map_err(error("cluster connect"))?;
    let pusher = connect().map_err(error("cluster connect"))?;
    let p = target.prefix;
    let (a, n, q) = (
        format!("{{{p}:ctx}}:a"),
        format!("{{{p}:ctx}}:n"),
        format!("{{{p}:ctx}}:q"),
    );
    clear(&mut con, &[&a, &n, &q])?;
    let tx = redis::pipe()
        .atomic()
        .set(&a, 1)
        .incr(&n, 1)
        .get(&a)
        .query(&mut con);
    let want = vec![Value::Okay, Value::Int(1), bulk("1")];
    match tx {
        // The sync ClusterConnection refuses every pipeline before sending anything (against
        // Redis too); should a release send them, the transaction is checked.
        Err(e) if e.to_string().contains(CLUSTER_PIPELINES_REFUSED) => log.0.push(format!(
            "(cluster pipe().atomic(): refused by redis-rs: {e})"
        )),
        tx => log.expect("cluster pipe().atomic() in one slot", tx, want)?,
    }
    let (got, waited) = pop_while_pushed(&mut con, pusher, &q, "job", |con| {
        redis::cmd("BLPOP")
            .arg(&q)
            .arg(5)
            .query::<Option<[String; 2]>>(con)
    })?;
    let want = Some([q.clone(), "job".to_string()]);
    log.expect("cluster BLPOP woken by another client", got, want)?;
    let what = "cluster BLPOP waited for the push";
    between(log, what, waited, BLOCKED_AT_LEAST, BLOCKED_AT_MOST)?;
    let timed_out = con.blpop(&q, POP_TIMEOUT);
    log.expect("cluster BLPOP timing out", timed_out, None::<[String; 2]>)?;
    clear(&mut con, &[&a, &n, &q])
}
