//! `ExecLockClient` against real processes: the example lock service
//! (examples/exec/reflock.py) with its adapter (reflock_client.py), and
//! adapters that misbehave on purpose. Needs `python3` on PATH; talks to
//! loopback only.

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use leasehold_workloads::{
    AdapterLog, Completion, ExecConfig, ExecError, ExecLockClient, Grant, LockClient,
};
use serde_json::Value;

const TIMEOUT: Duration = Duration::from_secs(3);
const LEASE: Duration = Duration::from_secs(5);

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/exec")
        .join(name)
}

/// A directory removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("leasehold-exec-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// reflock.py as a real process on a free loopback port, killed when dropped.
struct Reflock {
    child: Child,
    addr: SocketAddr,
    data_dir: Option<PathBuf>,
}

impl Reflock {
    fn start(data_dir: Option<&Path>) -> Reflock {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Reflock::start_on(port, data_dir)
    }

    fn start_on(port: u16, data_dir: Option<&Path>) -> Reflock {
        let mut command = Command::new("python3");
        command
            .arg(example("reflock.py"))
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(dir) = data_dir {
            command.arg("--data-dir").arg(dir);
        }
        let child = command.spawn().expect("python3 on PATH");
        let mut server = Reflock {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            data_dir: data_dir.map(Path::to_path_buf),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(server.addr).is_err() {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("reflock.py exited: {status}");
            }
            assert!(Instant::now() < deadline, "reflock.py not listening");
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    fn restart(mut self) -> Reflock {
        let _ = self.child.kill();
        let _ = self.child.wait();
        Reflock::start_on(self.addr.port(), self.data_dir.as_deref())
    }
}

impl Drop for Reflock {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A log sink the test can read.
#[derive(Clone, Default)]
struct SharedLog(Arc<Mutex<Vec<u8>>>);

impl Write for SharedLog {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl SharedLog {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    /// Waits for `needle` (stderr is forwarded by another thread).
    async fn wait_for(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let text = self.text();
            if text.contains(needle) || Instant::now() > deadline {
                return text;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

fn config(command: Vec<String>, node: &str, server: &SocketAddr, timeout: Duration) -> ExecConfig {
    ExecConfig::new(command, node, vec![server.to_string()], timeout)
}

fn reflock_client_command() -> Vec<String> {
    vec![
        "python3".to_owned(),
        example("reflock_client.py").display().to_string(),
    ]
}

async fn reflock_client(server: &Reflock, node: &str) -> ExecLockClient {
    let cfg = config(reflock_client_command(), node, &server.addr, TIMEOUT);
    ExecLockClient::start(cfg, AdapterLog::writer(SharedLog::default()))
        .await
        .expect("reflock_client.py starts")
}

fn granted(c: Completion<Grant>) -> Grant {
    match c {
        Completion::Ok(g) => g,
        other => panic!("expected ok, got {other:?}"),
    }
}

fn failed<T: std::fmt::Debug>(c: Completion<T>) -> String {
    match c {
        Completion::Fail(e) => e,
        other => panic!("expected fail, got {other:?}"),
    }
}

fn unknown<T: std::fmt::Debug>(c: Completion<T>) -> String {
    match c {
        Completion::Info(e) => e,
        other => panic!("expected info, got {other:?}"),
    }
}

#[tokio::test]
async fn acquire_renew_release_against_reflock() {
    let server = Reflock::start(None);
    let mut c = reflock_client(&server, "w1").await;
    assert_eq!(c.service(), "exec");
    let g1 = granted(c.acquire("L", LEASE).await);
    assert_eq!(g1.lease_ms, 5000);
    let r = granted(c.renew("L", g1.token, Duration::from_millis(2500)).await);
    assert_eq!(
        r,
        Grant {
            token: g1.token,
            lease_ms: 2500
        }
    );
    assert_eq!(c.release("L", g1.token).await, Completion::Ok(()));
    assert_eq!(failed(c.release("L", g1.token).await), "not held");
    assert_eq!(failed(c.renew("L", g1.token, LEASE).await), "lease lost");
    let g2 = granted(c.acquire("L", LEASE).await);
    assert!(g2.token > g1.token, "{g2:?} after {g1:?}");
    // Another lock is independent, and takes from the same growing counter.
    let g3 = granted(c.acquire("M", LEASE).await);
    assert!(g3.token > g2.token, "{g3:?} after {g2:?}");
    assert_eq!(c.starts(), 1, "a well-behaved adapter is never restarted");
}

#[tokio::test]
async fn a_held_lock_is_busy_for_others_and_tokens_increase() {
    let server = Reflock::start(None);
    let mut w1 = reflock_client(&server, "w1").await;
    let mut w2 = reflock_client(&server, "w2").await;
    let g1 = granted(w1.acquire("L", LEASE).await);
    assert_eq!(failed(w2.acquire("L", LEASE).await), "busy (holder w1)");
    // A renew or release with someone else's token changes nothing.
    assert_eq!(failed(w2.release("L", g1.token + 1).await), "not held");
    assert_eq!(failed(w2.acquire("L", LEASE).await), "busy (holder w1)");
    assert_eq!(w1.release("L", g1.token).await, Completion::Ok(()));
    let g2 = granted(w2.acquire("L", LEASE).await);
    assert!(g2.token > g1.token);
    assert_eq!(failed(w1.acquire("L", LEASE).await), "busy (holder w2)");
}

#[tokio::test]
async fn an_expired_lease_cannot_be_renewed() {
    let server = Reflock::start(None);
    let mut w1 = reflock_client(&server, "w1").await;
    let mut w2 = reflock_client(&server, "w2").await;
    let g1 = granted(w1.acquire("L", Duration::from_millis(200)).await);
    assert_eq!(failed(w2.acquire("L", LEASE).await), "busy (holder w1)");
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(failed(w1.renew("L", g1.token, LEASE).await), "lease lost");
    let g2 = granted(w2.acquire("L", LEASE).await);
    assert!(g2.token > g1.token);
    assert_eq!(failed(w1.release("L", g1.token).await), "not held");
    assert_eq!(failed(w1.renew("L", g1.token, LEASE).await), "lease lost");
    // The new holder's lease is untouched by the zombie's attempts.
    granted(w2.renew("L", g2.token, LEASE).await);
}

#[tokio::test]
async fn tokens_survive_a_restart_of_reflock_with_a_data_dir() {
    let dir = TempDir::new("data");
    let server = Reflock::start(Some(&dir.0));
    let mut c = reflock_client(&server, "w1").await;
    let g1 = granted(c.acquire("L", Duration::from_millis(600)).await);
    let server = server.restart();
    // The adapter notices its connection died while idle and reconnects, so
    // this is a certain answer; the restarted server waits out the longest
    // lease it ever granted before granting again.
    let e = failed(c.acquire("L", LEASE).await);
    assert!(e.starts_with("recovering"), "{e}");
    tokio::time::sleep(Duration::from_millis(700)).await;
    let g2 = granted(c.acquire("L", LEASE).await);
    assert!(g2.token > g1.token, "{g2:?} after {g1:?}");
    drop(server);
}

#[tokio::test]
async fn an_unreachable_lock_server_is_a_fail() {
    // Nothing listens on this port any more: the adapter cannot connect, so
    // the request was certainly never applied.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let cfg = config(reflock_client_command(), "w1", &port, TIMEOUT);
    let mut c = ExecLockClient::start(cfg, AdapterLog::writer(SharedLog::default()))
        .await
        .unwrap();
    let e = failed(c.acquire("L", LEASE).await);
    assert!(e.starts_with("cannot connect"), "{e}");
    assert_eq!(c.starts(), 1);
}

/// An adapter with several lives, each in a mode given on its command line
/// (the last mode repeats). It counts its lives in a file, appends every
/// request it reads to another, and says on stderr which life it is.
const LIVES: &str = r#"
import json, os, signal, sys, time
counter, requests, real_client, modes = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4].split(",")
life = int(open(counter).read()) + 1 if os.path.exists(counter) else 1
with open(counter, "w") as f:
    f.write(str(life))
mode = modes[min(life, len(modes)) - 1]
print(f"lives: life {life} mode {mode}", file=sys.stderr, flush=True)
if mode == "good":
    os.execv(sys.executable, [sys.executable, real_client])
if mode == "stubborn":
    with open(requests + ".pid", "w") as f:
        f.write(f"{os.getpid()} {os.getpgid(0)}")
    signal.signal(signal.SIGTERM, signal.SIG_IGN)

def send(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()

for line in iter(sys.stdin.readline, ""):
    with open(requests, "a") as f:
        f.write(line)
    req = json.loads(line)
    rid, op = req["id"], req["op"]
    if op == "init":
        if mode == "refuse_init":
            send({"id": rid, "type": "fail", "error": "not today"})
        else:
            send({"id": rid, "type": "ok"})
        continue
    if mode == "garbage":
        print("this is not json", flush=True)
    elif mode == "wrong_id":
        send({"id": rid + 1000, "type": "ok", "token": 1, "lease_ms": 1})
    elif mode == "unknown_type":
        send({"id": rid, "type": "maybe"})
    elif mode == "bad_ok":
        send({"id": rid, "type": "ok", "lease_ms": 1000})
    elif mode == "stray":
        send({"id": 0, "type": "ok"})
        send({"id": rid, "type": "ok", "token": 1, "lease_ms": 1000})
    elif mode == "hang":
        time.sleep(3600)
    elif mode == "exit":
        sys.exit(3)
    else:  # fake, stubborn: grant everything, token = id
        reply = {"id": rid, "type": "ok"}
        if op != "release":
            reply.update(token=rid, lease_ms=req["ttl_ms"])
        send(reply)
if mode == "stubborn":
    time.sleep(3600)
"#;

struct Lives {
    dir: TempDir,
    log: SharedLog,
}

impl Lives {
    fn new() -> Lives {
        let dir = TempDir::new("lives");
        std::fs::write(dir.path("lives.py"), LIVES).unwrap();
        Lives {
            dir,
            log: SharedLog::default(),
        }
    }

    fn command(&self, modes: &str) -> Vec<String> {
        let p = |name: &str| self.dir.path(name).display().to_string();
        vec![
            "python3".to_owned(),
            p("lives.py"),
            p("counter"),
            p("requests"),
            example("reflock_client.py").display().to_string(),
            modes.to_owned(),
        ]
    }

    async fn client(
        &self,
        modes: &str,
        server: &SocketAddr,
        timeout: Duration,
    ) -> Result<ExecLockClient, ExecError> {
        let cfg = config(self.command(modes), "w1", server, timeout);
        ExecLockClient::start(cfg, AdapterLog::writer(self.log.clone())).await
    }

    fn requests(&self) -> Vec<Value> {
        std::fs::read_to_string(self.dir.path("requests"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

/// The first op against an adapter in `mode` ends info with a reason
/// containing `reason`; the adapter is restarted (as the real reflock adapter)
/// and the next op succeeds.
async fn misbehaves_once(mode: &str, reason: &str, timeout: Duration) {
    let server = Reflock::start(None);
    let lives = Lives::new();
    let mut c = lives
        .client(&format!("{mode},good"), &server.addr, timeout)
        .await
        .unwrap();
    let first_pid = c.adapter_pid().unwrap();
    let sent = Instant::now();
    let e = unknown(c.acquire("L", LEASE).await);
    assert!(e.contains(reason), "{mode}: {e:?} lacks {reason:?}");
    if mode == "hang" {
        assert!(sent.elapsed() >= timeout, "{mode}: ended early");
    }
    // Killed at once, not left running until the next op.
    assert_eq!(c.adapter_pid(), None, "{mode}");
    assert_eq!(c.starts(), 1, "{mode}");
    let g = granted(c.acquire("L", LEASE).await);
    assert_eq!(c.starts(), 2, "{mode}");
    assert_ne!(c.adapter_pid(), Some(first_pid));
    assert_eq!(c.release("L", g.token).await, Completion::Ok(()));
    let log = lives
        .log
        .wait_for("reflock_client: w1: using reflock")
        .await;
    assert!(
        log.contains("w1 adapter: lives: life 1 mode"),
        "{mode}: {log}"
    );
    assert!(
        log.contains("w1 adapter: lives: life 2 mode good"),
        "{mode}: {log}"
    );
    assert!(
        log.contains("w1 exec: killing adapter: acquire (id 2)"),
        "{mode}: {log}"
    );
    assert!(log.contains(reason), "{mode}: {log}");
    assert!(log.contains("w1 exec: restarting adapter"), "{mode}: {log}");
    assert!(
        log.contains("w1 adapter: reflock_client: w1: using reflock"),
        "{mode}: {log}"
    );
}

#[tokio::test]
async fn a_garbage_line_ends_the_op_info_and_restarts_the_adapter() {
    misbehaves_once("garbage", "is not JSON", TIMEOUT).await;
}

#[tokio::test]
async fn a_reply_with_another_id_ends_the_op_info() {
    misbehaves_once("wrong_id", "without the request's id 2", TIMEOUT).await;
}

#[tokio::test]
async fn an_unsolicited_line_before_the_reply_ends_the_op_info() {
    misbehaves_once("stray", "without the request's id 2", TIMEOUT).await;
}

#[tokio::test]
async fn an_unknown_reply_type_ends_the_op_info() {
    misbehaves_once("unknown_type", "no known type", TIMEOUT).await;
}

#[tokio::test]
async fn an_ok_without_a_token_ends_the_op_info() {
    misbehaves_once("bad_ok", "ok without an unsigned integer token", TIMEOUT).await;
}

#[tokio::test]
async fn an_adapter_that_hangs_past_the_timeout_ends_the_op_info() {
    misbehaves_once("hang", "timeout", Duration::from_millis(700)).await;
}

#[tokio::test]
async fn an_adapter_that_exits_mid_op_ends_the_op_info() {
    misbehaves_once("exit", "adapter exited (exit status: 3)", TIMEOUT).await;
}

#[tokio::test]
async fn ids_increase_across_restarts_and_requests_have_the_documented_shape() {
    let server = Reflock::start(None);
    let lives = Lives::new();
    let mut c = lives
        .client("garbage,fake", &server.addr, TIMEOUT)
        .await
        .unwrap();
    unknown(c.acquire("L", LEASE).await);
    let g = granted(c.acquire("L", Duration::from_millis(1500)).await);
    assert_eq!(
        g,
        Grant {
            token: 4,
            lease_ms: 1500
        }
    );
    granted(c.renew("L", 4, Duration::from_millis(800)).await);
    assert_eq!(c.release("L", 4).await, Completion::Ok(()));
    let lock_nodes = serde_json::json!([server.addr.to_string()]);
    let init = |id: u64| serde_json::json!({"id": id, "op": "init", "node": "w1", "lock_nodes": lock_nodes, "timeout_ms": 3000});
    let acquire = |id: u64, ttl: u64| serde_json::json!({"id": id, "op": "acquire", "lock": "L", "client": "w1", "ttl_ms": ttl});
    assert_eq!(
        lives.requests(),
        vec![
            init(1),
            acquire(2, 5000),
            init(3),
            acquire(4, 1500),
            serde_json::json!({"id": 5, "op": "renew", "lock": "L", "token": 4, "ttl_ms": 800}),
            serde_json::json!({"id": 6, "op": "release", "lock": "L", "token": 4}),
        ]
    );
}

#[tokio::test]
async fn an_op_that_cannot_be_sent_fails_and_the_next_start_is_tried_again() {
    let server = Reflock::start(None);
    let lives = Lives::new();
    let mut c = lives
        .client("exit,refuse_init,good", &server.addr, TIMEOUT)
        .await
        .unwrap();
    unknown(c.acquire("L", LEASE).await);
    let e = failed(c.acquire("L", LEASE).await);
    assert!(e.contains("acquire not sent"), "{e}");
    assert!(e.contains("init failed: not today"), "{e}");
    assert_eq!(c.starts(), 2);
    granted(c.acquire("L", LEASE).await);
    assert_eq!(c.starts(), 3);
}

#[tokio::test]
async fn an_abandoned_op_restarts_the_adapter_before_the_next() {
    let server = Reflock::start(None);
    let lives = Lives::new();
    let mut c = lives
        .client("hang,good", &server.addr, Duration::from_secs(30))
        .await
        .unwrap();
    // The worker gives up on the op itself (e.g. at shutdown): its reply, if
    // it ever came, must not be taken for the next op's.
    let abandoned = tokio::time::timeout(Duration::from_millis(300), c.acquire("L", LEASE)).await;
    assert!(abandoned.is_err());
    granted(c.acquire("L", LEASE).await);
    assert_eq!(c.starts(), 2);
    assert!(lives.log.text().contains("was abandoned before its reply"));
}

#[tokio::test]
async fn start_errors_are_reported() {
    let addr = SocketAddr::from(([127, 0, 0, 1], 9));
    let log = || AdapterLog::writer(SharedLog::default());
    let empty = ExecLockClient::start(config(vec![], "w1", &addr, TIMEOUT), log()).await;
    assert!(matches!(empty, Err(ExecError::EmptyCommand)), "{empty:?}");
    let missing = vec!["/nonexistent/leasehold-adapter".to_owned()];
    let missing = ExecLockClient::start(config(missing, "w1", &addr, TIMEOUT), log()).await;
    assert!(
        matches!(missing, Err(ExecError::Spawn { .. })),
        "{missing:?}"
    );
    let lives = Lives::new();
    match lives.client("refuse_init", &addr, TIMEOUT).await {
        Err(ExecError::Init { reason, .. }) => assert!(reason.contains("not today"), "{reason}"),
        other => panic!("{other:?}"),
    }
    let lives = Lives::new();
    let silent = vec![
        "python3".to_owned(),
        "-c".to_owned(),
        "print('hello')".to_owned(),
    ];
    let mut cfg = config(silent, "w1", &addr, TIMEOUT);
    cfg.init_timeout = Duration::from_secs(5);
    match ExecLockClient::start(cfg, AdapterLog::writer(lives.log.clone())).await {
        Err(ExecError::Init { reason, .. }) => assert!(reason.contains("is not JSON"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

/// Field 5 of /proc/<pid>/stat: the process group.
fn pgid_of(pid: &str) -> String {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_comm = &stat[stat.rfind(')').unwrap() + 2..];
    after_comm.split(' ').nth(2).unwrap().to_owned()
}

#[tokio::test]
async fn the_adapter_is_in_the_worker_process_group_and_dies_with_the_client() {
    let addr = SocketAddr::from(([127, 0, 0, 1], 9));
    let lives = Lives::new();
    let mut c = lives.client("stubborn", &addr, TIMEOUT).await.unwrap();
    granted(c.acquire("L", LEASE).await);
    let written = std::fs::read_to_string(lives.dir.path("requests.pid")).unwrap();
    let (pid, pgid) = written.split_once(' ').unwrap();
    assert_eq!(c.adapter_pid().map(|p| p.to_string()).as_deref(), Some(pid));
    assert_eq!(
        pgid,
        pgid_of("self"),
        "adapter has a process group of its own"
    );
    // It ignores SIGTERM and outlives EOF on stdin: only a kill ends it.
    drop(c);
    let proc_dir = PathBuf::from(format!("/proc/{pid}"));
    let deadline = Instant::now() + Duration::from_secs(5);
    while proc_dir.exists() {
        assert!(
            Instant::now() < deadline,
            "adapter {pid} still alive after drop"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
