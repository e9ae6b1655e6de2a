//! The JVM (ZooKeeper's) under the shim: wall clock moved, and its sleeps,
//! which wait on CLOCK_MONOTONIC condition variables, last as long as meant.

mod common;

use common::{output, preloaded, real_now};
use leasehold_clock::ControlFile;
use std::time::Instant;

const S: i64 = 1_000_000_000;

const SOURCE: &str =
    "public class ClockProbe { public static void main(String[] a) throws Exception {
  long wall = System.currentTimeMillis(); long mono = System.nanoTime();
  Thread.sleep(500);
  System.out.println(wall / 1e3 + \" \" + (System.nanoTime() - mono) / 1e9);
}}";

#[test]
fn jvm_reads_the_moved_clock_and_sleeps_as_long_as_meant() {
    // CI installs a JVM for ZooKeeper; elsewhere a missing one skips.
    let Some(java) = common::installed("/usr/bin/java") else {
        return;
    };
    let java = java.as_path();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("ClockProbe.java");
    std::fs::write(&src, SOURCE).unwrap();
    let path = dir.path().join("clock");
    let mut cf = ControlFile::create(&path).unwrap();
    cf.set(100 * S, 30 * S, 1.0).unwrap();
    let started = Instant::now();
    let out = output(preloaded(java, &path).arg(&src));
    let took = started.elapsed().as_secs_f64();
    let now = real_now();
    let v: Vec<f64> = out.split_whitespace().map(|w| w.parse().unwrap()).collect();
    assert_eq!(v.len(), 2, "{out}");
    let ahead = v[0] - now;
    eprintln!(
        "jvm: wall clock {ahead:.2} s ahead, sleep(500) {:.3} s, run {took:.2} s",
        v[1]
    );
    // The wall reading was taken before the run ended: allow its length.
    assert!(
        ahead > 100.0 - took - 1.0 && ahead < 101.0,
        "currentTimeMillis {ahead} s ahead"
    );
    assert!(
        (0.49..2.0).contains(&v[1]),
        "Thread.sleep(500) took {} s by nanoTime",
        v[1]
    );
    assert!(
        took < 25.0,
        "the JVM run took {took} s under a +30 s monotonic offset"
    );
}
