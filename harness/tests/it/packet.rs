//! Packet faults (`fault: packet`): the mechanism measured on real traffic
//! between two network namespaces (a TCP exchange for the delay, UDP counts
//! for loss, duplication, jitter and reordering), the delayed-write example
//! and its fenced twin with two seeds each, the heal at the end, on SIGTERM,
//! after a restart and by `leasehold cleanup` after a SIGKILL, and the
//! one-line refusal when the tools are missing. Everything needs root.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::Stdio;
use std::time::{Duration, Instant};

use leasehold_nemesis::packet::{self, Holder, PacketJob, PacketRule, Percent, Shape};

use crate::*;

/// Two network namespaces joined by a veth pair: `a` at 10.250.<n>.1, `b`
/// at 10.250.<n>.2. Removed when dropped. Their names do not look like a
/// run's, so no run's cleanup takes them.
struct Pair {
    a: String,
    b: String,
    n: u8,
}

impl Pair {
    fn new(n: u8) -> Pair {
        let tag = format!("lhpkt{}x{n}", std::process::id());
        let pair = Pair {
            a: format!("{tag}a"),
            b: format!("{tag}b"),
            n,
        };
        let ip = |args: &[&str]| {
            let out = Command::new("ip").args(args).output().unwrap();
            assert!(out.status.success(), "ip {args:?}: {out:?}");
        };
        ip(&["netns", "add", &pair.a]);
        ip(&["netns", "add", &pair.b]);
        let (va, vb) = (
            format!("va{n}p{}", std::process::id() % 10000),
            format!("vb{n}p{}", std::process::id() % 10000),
        );
        ip(&[
            "link", "add", &va, "netns", &pair.a, "type", "veth", "peer", "name", &vb, "netns",
            &pair.b,
        ]);
        for (ns, dev, addr) in [(&pair.a, &va, pair.addr_a()), (&pair.b, &vb, pair.addr_b())] {
            ip(&["-n", ns, "addr", "add", &format!("{addr}/24"), "dev", dev]);
            ip(&["-n", ns, "link", "set", dev, "up"]);
            ip(&["-n", ns, "link", "set", "lo", "up"]);
        }
        pair
    }

    fn addr_a(&self) -> String {
        format!("10.250.{}.1", self.n)
    }

    fn addr_b(&self) -> String {
        format!("10.250.{}.2", self.n)
    }

    fn path(ns: &str) -> PathBuf {
        PathBuf::from(format!("/run/netns/{ns}"))
    }

    /// Shapes what `b` receives from `a`; returns the holder, if any.
    fn shape_b(&self, run_id: &str, shape: Shape, old: Option<Holder>) -> Option<Holder> {
        let rule = PacketRule {
            shape,
            from: [self.addr_a().parse::<IpAddr>().unwrap()].into(),
            own: self.addr_b().parse().unwrap(),
            seed: 7,
        };
        let netns = Pair::path(&self.b);
        let exe = PathBuf::from(assert_cmd::cargo::cargo_bin!("leasehold"));
        let job = PacketJob {
            node: "b",
            netns: &netns,
            run_id,
            rule: Some(&rule),
            holder: &exe,
            log: None,
        };
        packet::apply(&job, old).unwrap()
    }

    fn heal_b(&self, run_id: &str, old: Option<Holder>) {
        let netns = Pair::path(&self.b);
        let exe = PathBuf::from(assert_cmd::cargo::cargo_bin!("leasehold"));
        let job = PacketJob {
            node: "b",
            netns: &netns,
            run_id,
            rule: None,
            holder: &exe,
            log: None,
        };
        assert!(packet::apply(&job, old).unwrap().is_none());
        // Nothing of the fault is left in the namespace.
        let rules = |cmd: &[&str]| {
            let out = Command::new("ip")
                .args(["netns", "exec", &self.b])
                .args(cmd)
                .output()
                .unwrap();
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        let nft = rules(&["nft", "list", "ruleset"]);
        assert!(!nft.contains(&packet::table_name(run_id)), "{nft}");
        let ipt = rules(&["iptables-save"]);
        assert!(!ipt.contains(&packet::chain_name(run_id)), "{ipt}");
    }
}

/// Registers this test process as the controller of run `run_id`, as a run
/// registers itself, so that the cleanup every run starts with leaves the
/// holders of these tests alone (it kills those of dead runs). Unregistered
/// when dropped.
struct Registered(PathBuf);

impl Registered {
    fn new(run_id: &str) -> Registered {
        let dir = std::env::temp_dir()
            .join(format!("leasehold-{}", nix::unistd::getuid()))
            .join("runs");
        std::fs::create_dir_all(&dir).unwrap();
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
        let start: u64 = stat
            .rsplit_once(')')
            .unwrap()
            .1
            .split_whitespace()
            .nth(19)
            .unwrap()
            .parse()
            .unwrap();
        let reg = serde_json::json!({
            "run_id": run_id,
            "controller_pid": std::process::id(),
            "controller_start": start,
            "run_dir": std::env::temp_dir(),
            "images": [],
        });
        let path = dir.join(format!("{run_id}.json"));
        let tmp = dir.join(format!(".{run_id}.json.tmp"));
        std::fs::write(&tmp, reg.to_string()).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        Registered(path)
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        for ns in [&self.a, &self.b] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// Runs `f` on a thread inside namespace `ns` (sockets it makes live there).
fn in_ns<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> std::thread::JoinHandle<T> {
    let file = std::fs::File::open(Pair::path(ns)).unwrap();
    std::thread::spawn(move || {
        nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        f()
    })
}

/// The median of `samples`, in ms.
fn median_ms(mut samples: Vec<Duration>) -> f64 {
    samples.sort();
    samples[samples.len() / 2].as_secs_f64() * 1e3
}

/// Echo round trips from `a` to a TCP echo server in `b`: a connect and
/// `count` one-byte exchanges on it.
fn tcp_round_trips(pair: &Pair, count: usize) -> (Duration, Vec<Duration>) {
    let b_addr: SocketAddr = format!("{}:7777", pair.addr_b()).parse().unwrap();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let server = in_ns(&pair.b, move || {
        let l = TcpListener::bind(b_addr).unwrap();
        ready_tx.send(()).unwrap();
        let (mut s, _) = l.accept().unwrap();
        s.set_nodelay(true).unwrap();
        let mut buf = [0u8; 1];
        while s.read_exact(&mut buf).is_ok() {
            if s.write_all(&buf).is_err() {
                break;
            }
        }
    });
    ready_rx.recv().unwrap();
    let client = in_ns(&pair.a, move || {
        let start = Instant::now();
        let mut s = TcpStream::connect_timeout(&b_addr, Duration::from_secs(10)).unwrap();
        let connect = start.elapsed();
        s.set_nodelay(true).unwrap();
        let mut rtts = Vec::new();
        let mut buf = [0u8; 1];
        for i in 0..count {
            let t = Instant::now();
            s.write_all(&[i as u8]).unwrap();
            s.read_exact(&mut buf).unwrap();
            rtts.push(t.elapsed());
        }
        (connect, rtts)
    });
    let got = client.join().unwrap();
    server.join().unwrap();
    got
}

/// Sends `count` numbered UDP datagrams from `a` to `b`, `gap` apart; returns
/// what `b` received: each datagram's number and its one-way latency.
fn udp_burst(pair: &Pair, count: u32, gap: Duration) -> Vec<(u32, Duration)> {
    let b_addr: SocketAddr = format!("{}:7778", pair.addr_b()).parse().unwrap();
    let base = Instant::now();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let server = in_ns(&pair.b, move || {
        let s = UdpSocket::bind(b_addr).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(800)))
            .unwrap();
        ready_tx.send(()).unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 16];
        while let Ok(n) = s.recv(&mut buf) {
            assert_eq!(n, 12);
            let seq = u32::from_le_bytes(buf[..4].try_into().unwrap());
            let sent = Duration::from_nanos(u64::from_le_bytes(buf[4..12].try_into().unwrap()));
            got.push((seq, base.elapsed().saturating_sub(sent)));
        }
        got
    });
    ready_rx.recv().unwrap();
    in_ns(&pair.a, move || {
        let s = UdpSocket::bind("0.0.0.0:0").unwrap();
        for seq in 0..count {
            let mut msg = seq.to_le_bytes().to_vec();
            msg.extend((base.elapsed().as_nanos() as u64).to_le_bytes());
            s.send_to(&msg, b_addr).unwrap();
            std::thread::sleep(gap);
        }
    })
    .join()
    .unwrap();
    server.join().unwrap()
}

fn shape(delay_ms: u64) -> Shape {
    Shape {
        delay: Duration::from_millis(delay_ms),
        ..Shape::default()
    }
}

#[test]
fn packet_delay_is_measured_on_a_real_tcp_exchange_and_gone_after_heal() {
    if !require_root() {
        return;
    }
    let pair = Pair::new(1);
    let run_id = "pk000001";
    let _registered = Registered::new(run_id);
    let (_, before) = tcp_round_trips(&pair, 5);
    assert!(median_ms(before) < 50.0, "an unshaped link is fast");

    let holder = pair.shape_b(run_id, shape(300), None);
    assert!(holder.is_some(), "a delay has a holder");
    let (connect, during) = tcp_round_trips(&pair, 5);
    let m = median_ms(during.clone());
    // The SYN and each request are held on the way into b: one delay per
    // round trip (b's replies are not shaped).
    assert!(
        (240.0..=360.0).contains(&m),
        "median round trip {m:.1} ms, not 300 ms ± 20 %: {during:?}"
    );
    let c = connect.as_secs_f64() * 1e3;
    assert!((240.0..=360.0).contains(&c), "connect took {c:.1} ms");
    eprintln!("delay 300 ms: median echo round trip {m:.1} ms, connect {c:.1} ms");

    pair.heal_b(run_id, holder);
    let (_, after) = tcp_round_trips(&pair, 5);
    let m = median_ms(after.clone());
    assert!(m < 50.0, "the delay is gone after the heal: {after:?}");
}

#[test]
fn packet_loss_and_duplicates_take_their_share() {
    if !require_root() {
        return;
    }
    let pair = Pair::new(2);
    let run_id = "pk000002";
    let _registered = Registered::new(run_id);
    let sent = 2000;
    let lossy = Shape {
        loss: Percent::new(20).unwrap(),
        ..Shape::default()
    };
    assert!(
        pair.shape_b(run_id, lossy, None).is_none(),
        "loss needs no holder"
    );
    let got = udp_burst(&pair, sent, Duration::from_micros(100)).len();
    assert!(
        (1450..=1750).contains(&got),
        "20% loss: {got} of {sent} arrived"
    );

    let doubled = Shape {
        duplicate: Percent::new(30).unwrap(),
        ..Shape::default()
    };
    // Replaces the loss.
    assert!(pair.shape_b(run_id, doubled, None).is_none());
    let got = udp_burst(&pair, sent, Duration::from_micros(100));
    let distinct: BTreeSet<u32> = got.iter().map(|(s, _)| *s).collect();
    assert_eq!(distinct.len(), sent as usize, "nothing lost");
    assert!(
        (2450..=2750).contains(&got.len()),
        "30% duplicated: {} arrived for {sent} sent",
        got.len()
    );

    pair.heal_b(run_id, None);
    assert_eq!(udp_burst(&pair, 500, Duration::from_micros(100)).len(), 500);
}

#[test]
fn packet_jitter_spreads_the_delays_and_reorder_lets_a_share_overtake() {
    if !require_root() {
        return;
    }
    let pair = Pair::new(3);
    let run_id = "pk000003";
    let _registered = Registered::new(run_id);
    let jittery = Shape {
        delay: Duration::from_millis(100),
        jitter: Duration::from_millis(50),
        ..Shape::default()
    };
    let holder = pair.shape_b(run_id, jittery, None);
    let got = udp_burst(&pair, 200, Duration::from_millis(1));
    assert_eq!(got.len(), 200, "a delay loses nothing");
    let ms: Vec<f64> = got.iter().map(|(_, d)| d.as_secs_f64() * 1e3).collect();
    let (lo, hi) = ms
        .iter()
        .fold((f64::MAX, 0f64), |(lo, hi), m| (lo.min(*m), hi.max(*m)));
    assert!(
        lo >= 45.0 && hi <= 175.0,
        "delays within 100 ms ± 50 ms: {lo:.1}..{hi:.1}"
    );
    assert!(hi - lo >= 40.0, "jitter spreads them: {lo:.1}..{hi:.1}");

    let reordering = Shape {
        delay: Duration::from_millis(100),
        reorder: Percent::new(50).unwrap(),
        ..Shape::default()
    };
    let holder = pair.shape_b(run_id, reordering, holder);
    let got = udp_burst(&pair, 200, Duration::from_millis(1));
    assert_eq!(got.len(), 200);
    let at_once = got
        .iter()
        .filter(|(_, d)| *d < Duration::from_millis(50))
        .count();
    assert!(
        (60..=140).contains(&at_once),
        "{at_once} of 200 let through at once"
    );
    let inversions = got.windows(2).filter(|w| w[0].0 > w[1].0).count();
    assert!(
        inversions > 0,
        "the ones let through overtake the held ones"
    );

    pair.heal_b(run_id, holder);
}

/// A run's result and the packet faults of its history: (f, value).
fn packet_events(dir: &Path) -> Vec<(String, serde_json::Value)> {
    std::fs::read_to_string(dir.join("history.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["process"] == "nemesis")
        .filter(|e| {
            matches!(e["f"].as_str(), Some("packet" | "unpacket"))
                || e["value"]["reapplied"] == "packet"
        })
        .map(|e| (e["f"].as_str().unwrap().to_owned(), e["value"].clone()))
        .collect()
}

/// Every packet fault of the run was applied to the holder and storage,
/// with its shape and latency, and healed.
fn assert_packets_applied_and_healed(dir: &Path) {
    let events = packet_events(dir);
    let applied = events.iter().filter(|(f, _)| f == "packet").count();
    let healed = events.iter().filter(|(f, _)| f == "unpacket").count();
    assert!(applied >= 1, "{events:?}");
    assert_eq!(applied, healed, "every packet fault healed: {events:?}");
    for (_, v) in &events {
        assert_eq!(v["shape"]["delay"], "3s", "{v}");
        assert!(v["latency_us"].as_u64().is_some(), "{v}");
        let nodes = v["nodes"].as_array().unwrap();
        assert!(nodes.iter().any(|n| n == "store1"), "{v}");
    }
    let results = read_json(&dir.join("results.json"));
    let run_id = results["run_id"].as_str().unwrap();
    assert_eq!(namespaces_of_run(run_id), Vec::<String>::new());
    assert_eq!(processes_of_run(run_id), Vec::new(), "no holder left");
}

#[test]
fn delayed_write_unfenced_accepts_the_late_write_for_two_seeds() {
    if !require_root() {
        return;
    }
    for seed in [1, 2] {
        let store = tempfile::tempdir().unwrap();
        let (out, dir) = run_example_in(store.path(), "delayed-write.yaml", seed, &[]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let results = read_json(&dir.join("results.json"));
        assert_unfenced_invalid(out.status.code().unwrap(), &stdout, &results, seed);
        assert!(stdout.contains("packet holder -> store1, w"), "{stdout}");
        assert_packets_applied_and_healed(&dir);
        // The story of the stale write tells of the held packets.
        let report = std::fs::read_to_string(dir.join("report.html")).unwrap();
        assert!(
            report.contains("the nemesis holds every packet between"),
            "the report tells the packet fault"
        );
    }
}

#[test]
fn delayed_write_fenced_rejects_the_late_write_for_two_seeds() {
    if !require_root() {
        return;
    }
    for seed in [1, 2] {
        let store = tempfile::tempdir().unwrap();
        let (out, dir) = run_example_in(store.path(), "delayed-write-fenced.yaml", seed, &[]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let results = read_json(&dir.join("results.json"));
        assert_fenced_valid(out.status.code().unwrap(), &stdout, &results, seed);
        assert_packets_applied_and_healed(&dir);
    }
}

/// A config of the delayed-write example with its nemesis replaced, lasting
/// `duration`.
fn config_with(dir: &Path, duration: &str, nemesis: &str) -> PathBuf {
    let text = std::fs::read_to_string(example("delayed-write.yaml")).unwrap();
    let head = text[..text.find("nemesis:").unwrap()]
        .replace("duration: 17s", &format!("duration: {duration}"));
    let path = dir.join("packet.yaml");
    std::fs::write(&path, format!("{head}nemesis:\n{nemesis}")).unwrap();
    path
}

#[test]
fn packet_rules_come_back_after_a_restart_and_go_at_the_end() {
    if !require_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = config_with(
        dir.path(),
        "7s",
        "  timeline:\n    - { at: 1s, packet: store1, from: worker, delay: 1500ms, for: 4s }\n    - { at: 2s, kill: store1, for: 1s }\n",
    );
    let store = dir.path().join("store");
    let out = run_in(&repo(), &store, &config, 3, &[]);
    let code = out.status.code().unwrap();
    assert!(
        (0..=2).contains(&code),
        "{out:?}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = run_dir_of(&store);
    let events = packet_events(&run);
    let kinds: Vec<&str> = events
        .iter()
        .map(|(f, v)| {
            if v["reapplied"] == "packet" {
                "reapply"
            } else {
                f.as_str()
            }
        })
        .collect();
    assert_eq!(kinds, ["packet", "reapply", "unpacket"], "{events:?}");
    assert_eq!(events[1].1["nodes"], serde_json::json!(["store1"]));
    let results = read_json(&run.join("results.json"));
    let run_id = results["run_id"].as_str().unwrap();
    assert_eq!(processes_of_run(run_id), Vec::new(), "no holder left");
}

#[test]
fn packet_faults_are_healed_on_sigterm() {
    if !require_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (mut child, run_id, store) = start_shaped_run(dir.path(), 4, "loss: 10%");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(143));
    let events = packet_events(&run_dir_of(&store));
    let kinds: Vec<&str> = events.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(kinds, ["packet", "unpacket"], "{events:?}");
    assert_eq!(processes_of_run(&run_id), Vec::new());
    assert_eq!(namespaces_of_run(&run_id), Vec::<String>::new());
}

/// Starts a minute's run whose workers' packets to store1 are held 300 ms
/// (and `more`, a share lost or duplicated) from 1 s on; returns once the
/// holder runs, with the controller, the run id and the store.
fn start_shaped_run(
    dir: &Path,
    seed: u64,
    more: &str,
) -> (std::process::Child, String, std::path::PathBuf) {
    let config = config_with(
        dir,
        "60s",
        &format!(
            "  timeline:\n    - {{ at: 1s, packet: store1, from: worker, delay: 300ms, {more}, for: 50s }}\n"
        ),
    );
    let store = dir.join("store");
    let child = leasehold()
        .current_dir(repo())
        .args(["run", "--no-progress", "--duration", "60s", "--seed"])
        .arg(seed.to_string())
        .arg("--store")
        .arg(&store)
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut run_id = None;
    wait_until(Duration::from_secs(20), "the run to register", || {
        run_id = registered_run_of(child.id());
        run_id.is_some()
    });
    let run_id = run_id.unwrap();
    wait_until(Duration::from_secs(20), "the holder", || {
        holders_of(&run_id) > 0
    });
    (child, run_id, store)
}

/// How many packet holders of run `run_id` run.
fn holders_of(run_id: &str) -> usize {
    processes_of_run(run_id)
        .into_iter()
        .filter(|(pid, _)| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| c.split(|b| *b == 0).any(|a| a == b"packet-queue"))
        })
        .count()
}

#[test]
fn packet_faults_are_healed_by_cleanup_after_a_sigkill() {
    if !require_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (mut child, run_id, _store) = start_shaped_run(dir.path(), 5, "duplicate: 10%");
    let store_ns = format!("lh-{run_id}-store1");
    let table = packet::table_name(&run_id);
    let tables = || {
        let listed = Command::new("ip")
            .args(["netns", "exec", &store_ns, "nft", "list", "tables"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&listed.stdout).into_owned()
    };
    // The holder starts first, the table of duplicates goes in last.
    wait_until(
        Duration::from_secs(10),
        "the fault's table in store1",
        || tables().contains(&table),
    );

    child.kill().unwrap(); // SIGKILL: nothing is healed.
    child.wait().unwrap();
    assert!(
        namespaces_of_run(&run_id).contains(&store_ns),
        "the killed controller left store1's namespace"
    );
    assert!(tables().contains(&table), "and the fault's rules in it");
    let out = leasehold().arg("cleanup").output().unwrap();
    assert!(out.status.success(), "{out:?}");
    wait_until(Duration::from_secs(5), "the run's processes to go", || {
        processes_of_run(&run_id).is_empty()
    });
    assert_eq!(holders_of(&run_id), 0);
    assert_eq!(namespaces_of_run(&run_id), Vec::<String>::new());
}

#[test]
fn packet_faults_without_iptables_stop_before_anything_starts() {
    if !require_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    // A PATH with everything but the packet tools: /usr/sbin is not on it.
    let out = leasehold()
        .env("PATH", "/usr/bin:/bin")
        .current_dir(repo())
        .args(["run", "--no-progress", "--seed", "1", "--store"])
        .arg(&store)
        .arg(example("delayed-write.yaml"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {stderr}");
    assert!(
        lines[0].contains("iptables-restore not found: apt-get install iptables"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
    assert!(!store.exists(), "no run folder");
}

#[test]
fn delayed_write_in_docker_containers_shapes_the_containers_namespaces() {
    if !require_docker() || !require_root() {
        return;
    }
    let store = tempfile::tempdir().unwrap();
    let (out, dir) = run_example_in(
        store.path(),
        "delayed-write.yaml",
        1,
        &["--runtime", "docker"],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let results = read_json(&dir.join("results.json"));
    assert_eq!(results["runtime"], "docker");
    assert_unfenced_invalid(out.status.code().unwrap(), &stdout, &results, 1);
    assert_packets_applied_and_healed(&dir);
    let run_id = results["run_id"].as_str().unwrap();
    assert_eq!(
        crate::docker::docker_leftovers(run_id),
        (vec![], vec![]),
        "no container or network left"
    );
}
