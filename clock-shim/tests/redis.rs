//! Debian's redis-server (jemalloc, which reads the clock while it starts)
//! under the shim: the case libfaketime cannot start.

mod common;

use common::{installed, preloaded, real_now};
use leasehold_clock::ControlFile;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

const S: i64 = 1_000_000_000;

/// Kills the server when the test ends, however it ends.
struct Server(Child);
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Sends one command as RESP and returns the raw reply (enough for TIME's
/// two-bulk array and INFO's one bulk string).
fn command(sock: &Path, args: &[&str]) -> String {
    let mut s = UnixStream::connect(sock).expect("connect to redis");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut req = format!("*{}\r\n", args.len());
    for a in args {
        req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    s.write_all(req.as_bytes()).unwrap();
    let mut r = BufReader::new(s);
    let mut head = String::new();
    r.read_line(&mut head).unwrap();
    let mut reply = head.clone();
    let bulks = match head.as_bytes().first() {
        Some(b'*') => head[1..].trim().parse::<usize>().unwrap(),
        Some(b'$') => {
            let n: usize = head[1..].trim().parse().unwrap();
            let mut body = vec![0; n + 2];
            r.read_exact(&mut body).unwrap();
            reply.push_str(&String::from_utf8_lossy(&body));
            0
        }
        _ => 0,
    };
    for _ in 0..bulks {
        let mut len = String::new();
        r.read_line(&mut len).unwrap();
        let mut val = String::new();
        r.read_line(&mut val).unwrap();
        reply.push_str(&val);
    }
    reply
}

/// redis' TIME in seconds.
fn redis_time(sock: &Path) -> f64 {
    let reply = command(sock, &["TIME"]);
    let lines: Vec<&str> = reply.lines().collect();
    assert!(
        lines.len() == 3 && lines[0] == "*2",
        "TIME reply: {reply:?}"
    );
    let secs: f64 = lines[1].parse().unwrap();
    let micros: f64 = lines[2].parse().unwrap();
    secs + micros / 1e6
}

#[test]
fn redis_server_starts_and_reads_the_moved_clock() {
    let Some(redis) = installed("/usr/bin/redis-server") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clock");
    let sock = dir.path().join("r.sock");
    let mut cf = ControlFile::create(&path).unwrap();
    cf.set(2 * S, 0, 1.0).unwrap();
    let log = dir.path().join("redis.log");
    let child = preloaded(&redis, &path)
        .args(["--port", "0", "--unixsocket"])
        .arg(&sock)
        .args(["--save", "", "--appendonly", "no", "--logfile"])
        .arg(&log)
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut server = Server(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while UnixStream::connect(&sock).is_err() {
        if let Some(status) = server.0.try_wait().unwrap() {
            let mut err = String::new();
            server
                .0
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            panic!("redis-server exited under the shim: {status}\n{err}\n{log}");
        }
        assert!(
            Instant::now() < deadline,
            "redis-server did not open its socket"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let info = command(&sock, &["INFO", "memory"]);
    assert!(
        info.contains("mem_allocator:jemalloc"),
        "not jemalloc: {info}"
    );

    let ahead = redis_time(&sock) - real_now();
    eprintln!("redis TIME is {ahead:.3} s ahead under a +2 s jump");
    assert!((ahead - 2.0).abs() < 0.5, "redis TIME is {ahead} s ahead");

    // A live change; redis refreshes its cached clock at least every cron
    // tick (100 ms at the default hz).
    cf.set(-30 * S, 0, 1.0).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let ahead = redis_time(&sock) - real_now();
    assert!(
        (ahead + 30.0).abs() < 0.5,
        "after -30 s redis is {ahead} s ahead"
    );

    cf.clear();
    std::thread::sleep(Duration::from_millis(300));
    assert!((redis_time(&sock) - real_now()).abs() < 0.5);

    // Which clock redis 7 expires keys (lock leases) by: a key with 20 s to
    // live survives a +30 s monotonic jump and expires on a +30 s realtime one.
    assert!(command(&sock, &["SET", "lease", "x", "PX", "20000"]).starts_with("+OK"));
    cf.set(0, 30 * S, 1.0).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        command(&sock, &["EXISTS", "lease"]),
        ":1\r\n",
        "monotonic moved expiry"
    );
    cf.set(30 * S, 30 * S, 1.0).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        command(&sock, &["EXISTS", "lease"]),
        ":0\r\n",
        "realtime did not expire"
    );
    assert!(server.0.try_wait().unwrap().is_none(), "redis-server died");
}
