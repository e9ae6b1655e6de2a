//! Real processes under the preloaded shim: date and python.

mod common;

use common::{output, preloaded, python, real_mono, real_now};
use leasehold_clock::ControlFile;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const S: i64 = 1_000_000_000;

fn date_secs(cmd: &mut Command) -> f64 {
    output(cmd.arg("+%s")).trim().parse().expect("date +%s")
}

#[test]
fn date_jumps_by_the_realtime_offset() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clock");
    let mut cf = ControlFile::create(&path).unwrap();
    cf.set(3600 * S, 0, 1.0).unwrap();

    let shown = date_secs(&mut preloaded("date", &path));
    let ahead = shown - real_now();
    assert!(
        (ahead - 3600.0).abs() <= 2.0,
        "date is {ahead} s ahead, expected 3600"
    );

    // No control file, or no variable at all: the real time.
    let missing = dir.path().join("absent");
    let shown = date_secs(&mut preloaded("date", &missing));
    assert!(
        (shown - real_now()).abs() <= 2.0,
        "missing file moved the clock"
    );
    let mut plain = Command::new("date");
    plain.env("LD_PRELOAD", common::shim());
    assert!((date_secs(&mut plain) - real_now()).abs() <= 2.0);

    // Healed: real time again.
    cf.clear();
    let shown = date_secs(&mut preloaded("date", &path));
    assert!((shown - real_now()).abs() <= 2.0, "clear did not heal");

    // The test process's own clock (which links the exports through the rlib)
    // never moved.
    let own = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!((own - real_now()).abs() < 0.5, "the test's own clock moved");
}

const READ_CLOCKS: &str = r#"
import ctypes, time
libc = ctypes.CDLL(None)
class Timeval(ctypes.Structure):
    _fields_ = [("sec", ctypes.c_long), ("usec", ctypes.c_long)]
tv = Timeval()
assert libc.gettimeofday(ctypes.byref(tv), None) == 0
libc.time.restype = ctypes.c_long
print(time.time(), time.monotonic(), tv.sec + tv.usec / 1e6, libc.time(None))
"#;

#[test]
fn python_sees_realtime_and_monotonic_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clock");
    let mut cf = ControlFile::create(&path).unwrap();
    cf.set(100 * S, -50 * S, 1.0).unwrap();
    let out = output(preloaded(python(), &path).args(["-c", READ_CLOCKS]));
    let (now, mono) = (real_now(), real_mono());
    let v: Vec<f64> = out.split_whitespace().map(|w| w.parse().unwrap()).collect();
    assert_eq!(v.len(), 4, "{out}");
    assert!(
        (v[0] - now - 100.0).abs() < 1.5,
        "time.time() off: {out} vs {now}"
    );
    assert!(
        (v[1] - mono + 50.0).abs() < 1.5,
        "monotonic off: {out} vs {mono}"
    );
    assert!((v[2] - now - 100.0).abs() < 1.5, "gettimeofday off: {out}");
    assert!((v[3] - now - 100.0).abs() < 2.0, "time() off: {out}");
}

#[test]
fn rate_two_shows_two_seconds_per_real_second() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clock");
    let mut cf = ControlFile::create(&path).unwrap();
    cf.set(0, 0, 2.0).unwrap();
    let script = "import time\nt, m = time.time(), time.monotonic()\ntime.sleep(1)\n\
                  print(time.time() - t, time.monotonic() - m)";
    let started = Instant::now();
    let out = output(preloaded(python(), &path).args(["-c", script]));
    let real = started.elapsed().as_secs_f64();
    let v: Vec<f64> = out.split_whitespace().map(|w| w.parse().unwrap()).collect();
    eprintln!(
        "rate 2.0: 1 s sleep read as realtime {} s, monotonic {} s (real {real:.3} s)",
        v[0], v[1]
    );
    for shown in &v {
        assert!(
            (1.6..=2.4).contains(shown),
            "1 s of sleep read as {shown} s: {out}"
        );
    }
    assert!(real >= 1.0, "the sleep itself was shortened: {real} s");
}

#[test]
fn absolute_sleeps_last_as_long_as_meant_under_monotonic_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clock");
    let mut cf = ControlFile::create(&path).unwrap();
    // python's time.sleep waits with clock_nanosleep(CLOCK_MONOTONIC,
    // TIMER_ABSTIME) on a deadline taken from the (moved) monotonic clock.
    for offset in [30 * S, -30 * S] {
        cf.set(0, offset, 1.0).unwrap();
        let started = Instant::now();
        output(preloaded(python(), &path).args(["-c", "import time; time.sleep(0.5)"]));
        let real = started.elapsed();
        assert!(
            real >= Duration::from_millis(500) && real < Duration::from_secs(5),
            "sleep(0.5) under a monotonic offset of {offset} ns took {real:?}"
        );
    }
}

#[test]
fn changes_take_effect_in_a_running_process() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clock");
    let mut cf = ControlFile::create(&path).unwrap();
    let script = "import time, sys\nfor _ in range(300):\n    print(time.time(), flush=True)\n    time.sleep(0.05)";
    let mut child = preloaded(python(), &path)
        .args(["-c", script])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut next = move || -> f64 { lines.next().unwrap().unwrap().trim().parse().unwrap() };
    assert!((next() - real_now()).abs() < 1.0);
    cf.set(1000 * S, 0, 1.0).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        assert!(
            Instant::now() < deadline,
            "offset never reached the running process"
        );
        if (next() - real_now() - 1000.0).abs() < 1.0 {
            break;
        }
    }
    cf.clear();
    loop {
        assert!(
            Instant::now() < deadline,
            "clear never reached the running process"
        );
        if (next() - real_now()).abs() < 1.0 {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

/// Eight threads read the node's and the raw time in a loop while the test
/// flips the offset; every reading must match one of the offsets set, and
/// readings under one offset must not go back.
const THREADS: &str = r#"
import ctypes, threading, time, sys
libc = ctypes.CDLL(None, use_errno=True)
class Ts(ctypes.Structure):
    _fields_ = [("sec", ctypes.c_long), ("nsec", ctypes.c_long)]
SYS_clock_gettime = 228
def raw():
    ts = Ts()
    assert libc.syscall(SYS_clock_gettime, 0, ctypes.byref(ts)) == 0
    return ts.sec + ts.nsec / 1e9
offsets = [float(x) for x in sys.argv[1:]]
seen, bad = {}, []
def work(i):
    last = {}
    for _ in range(20000):
        before = raw()
        v = time.time()
        after = raw()
        hit = [o for o in offsets if before + o - 0.01 <= v <= after + o + 0.01]
        if len(hit) != 1:
            bad.append((v, before, after))
            continue
        o = hit[0]
        if v < last.get(o, 0.0):
            bad.append(("back", o, v, last[o]))
        last[o] = v
        seen[o] = seen.get(o, 0) + 1
ts = [threading.Thread(target=work, args=(i,)) for i in range(8)]
print("ready", flush=True)
[t.start() for t in ts]
[t.join() for t in ts]
print(len(bad), " ".join("%g:%d" % kv for kv in sorted(seen.items())), bad[:3])
"#;

#[test]
fn threads_read_consistent_values_while_the_file_changes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clock");
    let mut cf = ControlFile::create(&path).unwrap();
    let mut child = preloaded(python(), &path)
        .args(["-c", THREADS, "0", "1000", "-7"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready");
    let mut flips = 0;
    while child.try_wait().unwrap().is_none() {
        let offset = [0, 1000 * S, -7 * S][flips % 3];
        cf.set(offset, 0, 1.0).unwrap();
        flips += 1;
        std::thread::sleep(Duration::from_millis(2));
    }
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "threads crashed: {status}");
    eprintln!("{flips} flips; bad, per offset readings: {}", rest.trim());
    let mut words = rest.split_whitespace();
    assert_eq!(words.next(), Some("0"), "inconsistent readings: {rest}");
    // Each offset was seen by the readers (the flips did reach them).
    let seen = words.take_while(|w| w.contains(':')).count();
    assert_eq!(seen, 3, "not every offset was observed: {rest}");
}

/// python's GIL hands over through `pthread_cond_timedwait` on a
/// CLOCK_MONOTONIC condition variable, with a 5 ms deadline taken from the
/// (moved) monotonic clock. Untranslated, a +30 s monotonic offset would make
/// a waiting thread sleep 30 s before asking for the GIL, starving it behind a
/// busy thread.
const GIL: &str = r#"
import threading, time
start = time.monotonic()
first = []
def busy():
    end = time.monotonic() + 1.5
    while time.monotonic() < end:
        pass
def waiter():
    time.sleep(0.05)
    sum(range(1000))
    first.append(time.monotonic() - start)
b = threading.Thread(target=busy); w = threading.Thread(target=waiter)
b.start(); w.start(); b.join(); w.join()
print(first[0])
"#;

#[test]
fn condition_variable_waits_last_as_long_as_meant() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clock");
    let mut cf = ControlFile::create(&path).unwrap();
    for offset in [30 * S, -30 * S, 0] {
        cf.set(0, offset, 1.0).unwrap();
        let out = output(preloaded(python(), &path).args(["-c", GIL]));
        let waited: f64 = out.trim().parse().unwrap();
        eprintln!(
            "monotonic offset {} s: waiter ran after {waited:.3} s",
            offset / S
        );
        assert!(
            waited < 0.75,
            "the waiting thread starved for {waited} s under a monotonic offset of {offset} ns"
        );
    }
}
