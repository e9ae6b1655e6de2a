//! The packet mechanism: delay, jitter, loss, duplication and reordering of
//! the packets a node receives from some other nodes, inside its own network
//! namespace.
//!
//! # Why not `tc netem`
//!
//! netem is what one would reach for, and the design asked for it, but the
//! kernels leasehold runs on need not have it: the one it was built on has
//! neither `sch_netem` nor `sch_prio` (nor modules to load). What such a
//! kernel does have is netfilter, so everything here is built on it:
//!
//! - **delay, jitter, reorder**: iptables (`iptables-nft`) sends the link's
//!   packets to an NFQUEUE (`-j NFQUEUE --queue-num N --queue-bypass`), and a
//!   userspace *holder* (`leasehold node packet-queue`, started inside the
//!   node's namespace) issues each packet's ACCEPT verdict `delay ± jitter`
//!   after it arrived, drawn from a seeded generator ([`Delays`]). `reorder:
//!   P%` is, as in netem, the share of packets let through at once instead
//!   of held, so they overtake the held ones. `--queue-bypass` (and the
//!   queue's fail-open flag) means that if the holder dies, or its queue
//!   fills, packets pass instead of being dropped. nftables' own `queue`
//!   expression is not in every kernel either (not in this one); the iptables
//!   target is.
//! - **loss**: `numgen random mod 100 < N drop` in an nftables table of
//!   leasehold's own.
//! - **duplicate**: nftables `dup to <the node's own address>` for that share
//!   of packets: the copy is routed to the node itself and arrives a second
//!   time through `lo` (which is why every rule skips `iifname lo`, and the
//!   copy is delayed like the original, as netem delays duplicates too).
//!
//! # Placement
//!
//! On the **receiving** side, by source address, as partitions are (see
//! [`crate::partition`]): one node's rules shape what it receives from the
//! nodes named, nothing is installed on the host or a shared bridge, and the
//! same code serves local namespaces (`/run/netns/…`) and containers
//! (`/proc/<pid>/ns/net`). Loss and duplication sit at input priority -250
//! (after a partition's drops at -300, before conntrack's -200 and the
//! queue, which iptables puts at the filter priority 0), so a lost packet is
//! never held first.
//!
//! # Names
//!
//! Everything carries the run id: the nftables table `lh_packet_<id>` (family
//! `ip`: `dup to` needs one), the iptables chain `LHPKT_<id>` jumped to from
//! `INPUT` by a rule commented `leasehold-<id>`, the queue number
//! ([`queue_num`]) and the holder process (`--run-id <id>` on its command
//! line, where `leasehold cleanup` finds it). Healing removes the jump, the
//! chain and the table, and stops the holder, which first lets every packet it
//! still holds through.
//!
//! IPv4 only: the nodes of a run have IPv4 addresses, and `dup to` takes one
//! family.

use std::collections::BTreeSet;
use std::fmt;
use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::time::{Duration, Instant};

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::NemesisError;

/// The longest a packet may be held: `delay` + `jitter` of a config are
/// checked against it.
pub const MAX_HOLD: Duration = Duration::from_secs(60);

/// How long the holder may take to bind its queue and say so.
const READY_LIMIT: Duration = Duration::from_secs(5);

/// A share of packets, 0–100 %, written `20%` (or a bare number).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Percent(u8);

impl Percent {
    /// `n` %; `None` above 100.
    pub fn new(n: u8) -> Option<Self> {
        (n <= 100).then_some(Percent(n))
    }

    /// The number of percent.
    pub fn get(self) -> u8 {
        self.0
    }

    /// Whether it is 0 %.
    pub fn is_zero(self) -> bool {
        self.0 == 0
    }
}

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}%", self.0)
    }
}

impl FromStr for Percent {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let digits = s.trim().strip_suffix('%').unwrap_or(s.trim()).trim();
        let n: u32 = digits
            .parse()
            .map_err(|_| format!("{s:?} is not a share of packets such as `20%`"))?;
        u8::try_from(n)
            .ok()
            .and_then(Percent::new)
            .ok_or_else(|| format!("{s:?}: a share of packets is at most 100%"))
    }
}

impl Serialize for Percent {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Percent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // A visitor, not an untagged enum: the error then keeps the value's
        // place in the file.
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Percent;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a share of packets such as `20%`")
            }

            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Percent, E> {
                u8::try_from(n)
                    .ok()
                    .and_then(Percent::new)
                    .ok_or_else(|| E::custom(format!("{n}: a share of packets is at most 100%")))
            }

            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Percent, E> {
                u64::try_from(n)
                    .map_err(|_| E::custom(format!("{n}: a share of packets is at least 0%")))
                    .and_then(|n| self.visit_u64(n))
            }

            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Percent, E> {
                s.parse().map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// What a packet fault does to each packet of the link.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Shape {
    /// How long each packet is held.
    #[serde(default, with = "humantime_serde")]
    pub delay: Duration,
    /// Each packet's delay is drawn uniformly from `delay ± jitter` (never
    /// below zero).
    #[serde(default, with = "humantime_serde")]
    pub jitter: Duration,
    /// The share of packets dropped.
    #[serde(default)]
    pub loss: Percent,
    /// The share of packets delivered twice.
    #[serde(default)]
    pub duplicate: Percent,
    /// The share of packets let through at once instead of held, so they
    /// overtake the held ones (netem's `reorder`).
    #[serde(default)]
    pub reorder: Percent,
}

impl Shape {
    /// Whether packets go through the holder (a delay or a jitter).
    pub fn holds(&self) -> bool {
        !self.delay.is_zero() || !self.jitter.is_zero()
    }

    /// Whether it changes anything at all.
    pub fn is_noop(&self) -> bool {
        !self.holds() && self.loss.is_zero() && self.duplicate.is_zero()
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |d: Duration| humantime::format_duration(d).to_string();
        let mut parts = Vec::new();
        if self.holds() {
            let mut d = format!("delay {}", show(self.delay));
            if !self.jitter.is_zero() {
                d += &format!(" ± {}", show(self.jitter));
            }
            parts.push(d);
        }
        for (name, p) in [
            ("loss", self.loss),
            ("duplicate", self.duplicate),
            ("reorder", self.reorder),
        ] {
            if !p.is_zero() {
                parts.push(format!("{name} {p}"));
            }
        }
        if parts.is_empty() {
            parts.push("nothing".into());
        }
        f.write_str(&parts.join(", "))
    }
}

/// The delay of each packet, in the order they arrive: `delay ± jitter`,
/// uniformly, or zero for the `reorder` share. The same seed gives the same
/// delays.
pub struct Delays {
    shape: Shape,
    rng: ChaCha8Rng,
}

impl Delays {
    /// The delays of `shape`, drawn from `seed`.
    pub fn new(shape: Shape, seed: u64) -> Self {
        Delays {
            shape,
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    /// How long to hold the next packet.
    pub fn next_delay(&mut self) -> Duration {
        let reorder = self.shape.reorder.get();
        if reorder > 0 && self.rng.random_range(0..100u8) < reorder {
            return Duration::ZERO;
        }
        let jitter = self.shape.jitter.as_micros() as i64;
        let offset = if jitter > 0 {
            self.rng.random_range(-jitter..=jitter)
        } else {
            0
        };
        let us = (self.shape.delay.as_micros() as i64 + offset).max(0);
        Duration::from_micros(us as u64)
    }
}

/// The nftables table of run `run_id` (family `ip`).
pub fn table_name(run_id: &str) -> String {
    format!("lh_packet_{run_id}")
}

/// The iptables chain of run `run_id`.
pub fn chain_name(run_id: &str) -> String {
    format!("LHPKT_{run_id}")
}

/// The comment on the `INPUT` rule that jumps to [`chain_name`].
pub fn comment(run_id: &str) -> String {
    format!("leasehold-{run_id}")
}

/// The NFQUEUE number of run `run_id`, in every namespace of the run: drawn
/// from the id, so two runs never share one even in one namespace, and never
/// 0 (the number anything else would take first).
pub fn queue_num(run_id: &str) -> u16 {
    let h = run_id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    (h % 65_000) as u16 + 100
}

/// One node's packet rules: the packets it receives from `from` get `shape`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PacketRule {
    /// What happens to each packet.
    pub shape: Shape,
    /// The addresses whose packets are shaped.
    pub from: BTreeSet<IpAddr>,
    /// The node's own address (duplicates are sent to it).
    pub own: IpAddr,
    /// The seed of the holder's delays.
    pub seed: u64,
}

/// A node's packet rules put in force, where to put them, and the holder's
/// command line.
pub struct PacketJob<'a> {
    /// The node's name (`store1`), for errors.
    pub node: &'a str,
    /// Its network namespace.
    pub netns: &'a Path,
    /// The run id that names the table, chain and queue.
    pub run_id: &'a str,
    /// The rules; `None` heals the node.
    pub rule: Option<&'a PacketRule>,
    /// The holder's program and its first arguments (`leasehold node
    /// packet-queue`); the rest is added here.
    pub holder: &'a Path,
    /// Where the holder's stderr goes (the node's log), appended.
    pub log: Option<&'a Path>,
}

/// A running holder process: stopped (its packets let through) by
/// [`Holder::stop`], killed when dropped.
pub struct Holder {
    child: Child,
}

impl Holder {
    /// The holder's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Asks the holder to let every packet it holds through and exit
    /// (SIGTERM), and kills it if it has not within a second.
    pub fn stop(mut self) {
        stop_child(&mut self.child);
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn stop_child(child: &mut Child) {
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(1) {
        if !matches!(child.try_wait(), Ok(None)) {
            return;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Puts `job`'s rules in force in its namespace (healing whatever packet
/// rules of the run were there first), or heals it when it has none. Returns
/// the holder started for a delay. `old` is the node's previous holder,
/// stopped once its rules are gone.
///
/// In order: the old rules go and the old holder stops; a new holder starts
/// and binds its queue (it says `ready`); the iptables chain that feeds it
/// goes in; then the nftables table of loss and duplication. Each step is
/// one atomic transaction of its tool. An error heals what was put in place.
pub fn apply(job: &PacketJob<'_>, old: Option<Holder>) -> Result<Option<Holder>, NemesisError> {
    heal_rules(job)?;
    if let Some(old) = old {
        old.stop();
    }
    let Some(rule) = job.rule else {
        return Ok(None);
    };
    let put = || -> Result<Option<Holder>, NemesisError> {
        let holder = if rule.shape.holds() {
            let holder = start_holder(job, rule)?;
            run_in(
                job,
                "iptables-restore",
                &["--noflush"],
                &iptables_script(job.run_id, &rule.from)?,
            )?;
            Some(holder)
        } else {
            None
        };
        if !rule.shape.loss.is_zero() || !rule.shape.duplicate.is_zero() {
            run_in(job, "nft", &["-f", "-"], &nft_script(job.run_id, rule)?)?;
        }
        Ok(holder)
    };
    match put() {
        Ok(h) => Ok(h),
        Err(e) => {
            if let Err(again) = heal_rules(job) {
                tracing::warn!(error = %again, "packet: healing after a failed apply failed too");
            }
            Err(e)
        }
    }
}

/// Removes the run's packet rules from the job's namespace: the `INPUT` jump,
/// the chain, the table. Idempotent.
fn heal_rules(job: &PacketJob<'_>) -> Result<(), NemesisError> {
    let chain = chain_name(job.run_id);
    // Listing first: deleting what is not there fails the whole restore.
    let listed = output_in(job, "iptables-save", &["-t", "filter"])?;
    let jump = format!(
        "-A INPUT -m comment --comment {} -j {chain}",
        comment(job.run_id)
    );
    let mut script = String::new();
    for line in listed.lines() {
        if line == jump {
            script += &format!("-D{}\n", &line[2..]);
        }
    }
    if listed.lines().any(|l| l.starts_with(&format!(":{chain} "))) {
        script += &format!("-F {chain}\n-X {chain}\n");
    }
    if !script.is_empty() {
        run_in(
            job,
            "iptables-restore",
            &["--noflush"],
            &format!("*filter\n{script}COMMIT\n"),
        )?;
    }
    let table = table_name(job.run_id);
    run_in(
        job,
        "nft",
        &["-f", "-"],
        &format!("table ip {table}\ndelete table ip {table}\n"),
    )
}

fn v4(from: &BTreeSet<IpAddr>) -> Result<Vec<Ipv4Addr>, NemesisError> {
    from.iter()
        .map(|ip| match ip {
            IpAddr::V4(v4) => Ok(*v4),
            IpAddr::V6(_) => Err(NemesisError::PacketV6 { addr: *ip }),
        })
        .collect()
}

/// The iptables-restore script that queues the packets from `from` to the
/// holder: a chain of the run's own, jumped to first thing in `INPUT`.
pub fn iptables_script(run_id: &str, from: &BTreeSet<IpAddr>) -> Result<String, NemesisError> {
    let chain = chain_name(run_id);
    let q = queue_num(run_id);
    let mut s = format!("*filter\n:{chain} - [0:0]\n");
    for ip in v4(from)? {
        s += &format!("-A {chain} -s {ip}/32 -j NFQUEUE --queue-num {q} --queue-bypass\n");
    }
    s += &format!(
        "-I INPUT 1 -m comment --comment {} -j {chain}\nCOMMIT\n",
        comment(run_id)
    );
    Ok(s)
}

/// The nftables script of loss and duplication: one table of the run's own,
/// replaced in one transaction.
pub fn nft_script(run_id: &str, rule: &PacketRule) -> Result<String, NemesisError> {
    let table = table_name(run_id);
    let from = v4(&rule.from)?;
    let own = match rule.own {
        IpAddr::V4(v4) => v4,
        ip @ IpAddr::V6(_) => return Err(NemesisError::PacketV6 { addr: ip }),
    };
    let set = from
        .iter()
        .map(Ipv4Addr::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let mut rules = String::new();
    if !rule.shape.loss.is_zero() {
        rules += &format!(
            "    iifname != \"lo\" ip saddr {{ {set} }} numgen random mod 100 < {} drop\n",
            rule.shape.loss.get()
        );
    }
    if !rule.shape.duplicate.is_zero() {
        rules += &format!(
            "    iifname != \"lo\" ip saddr {{ {set} }} numgen random mod 100 < {} dup to {own}\n",
            rule.shape.duplicate.get()
        );
    }
    Ok(format!(
        "table ip {table}\ndelete table ip {table}\ntable ip {table} {{\n  chain input {{\n    \
         type filter hook input priority -250; policy accept;\n{rules}  }}\n}}\n"
    ))
}

/// A command that runs inside the job's namespace.
fn command_in(job: &PacketJob<'_>, program: &Path) -> Result<Command, NemesisError> {
    let ns = std::fs::File::open(job.netns).map_err(|source| exec_err(job, program, source))?;
    let mut cmd = Command::new(program);
    // SAFETY: between fork and exec the closure makes one system call (setns)
    // and allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET)?;
            Ok(())
        });
    }
    Ok(cmd)
}

fn exec_err(job: &PacketJob<'_>, program: &Path, source: std::io::Error) -> NemesisError {
    NemesisError::PacketExec {
        node: job.node.to_owned(),
        netns: job.netns.display().to_string(),
        program: program.display().to_string(),
        source,
    }
}

/// Runs `program args` in the namespace with `input` on its stdin; its stdout.
fn output_with(
    job: &PacketJob<'_>,
    program: &str,
    args: &[&str],
    input: Option<&str>,
) -> Result<String, NemesisError> {
    let path = Path::new(program);
    let mut cmd = command_in(job, path)?;
    cmd.args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| exec_err(job, path, e))?;
    if let (Some(mut stdin), Some(input)) = (child.stdin.take(), input) {
        // A write error (the tool died early) shows in its status and stderr.
        let _ = stdin.write_all(input.as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|e| exec_err(job, path, e))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(NemesisError::PacketTool {
            node: job.node.to_owned(),
            netns: job.netns.display().to_string(),
            program: program.to_owned(),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}

fn run_in(
    job: &PacketJob<'_>,
    program: &str,
    args: &[&str],
    input: &str,
) -> Result<(), NemesisError> {
    output_with(job, program, args, Some(input)).map(drop)
}

fn output_in(job: &PacketJob<'_>, program: &str, args: &[&str]) -> Result<String, NemesisError> {
    output_with(job, program, args, None)
}

/// Starts the holder in the namespace and waits until it has bound its
/// queue.
fn start_holder(job: &PacketJob<'_>, rule: &PacketRule) -> Result<Holder, NemesisError> {
    let mut cmd = command_in(job, job.holder)?;
    let stderr = match job.log {
        Some(log) => std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map(Stdio::from)
            .unwrap_or_else(|_| Stdio::null()),
        None => Stdio::null(),
    };
    let us = |d: Duration| d.as_micros().to_string();
    cmd.args([
        "node",
        "packet-queue",
        "--name",
        job.node,
        "--run-id",
        job.run_id,
        "--queue",
        &queue_num(job.run_id).to_string(),
        "--delay-us",
        &us(rule.shape.delay),
        "--jitter-us",
        &us(rule.shape.jitter),
        "--reorder",
        &rule.shape.reorder.get().to_string(),
        "--seed",
        &rule.seed.to_string(),
    ])
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(stderr)
    // A group of its own, as every node has: Ctrl-C in the terminal reaches
    // the controller, which heals, and not the holder behind its back.
    .process_group(0);
    let mut child = cmd.spawn().map_err(|e| exec_err(job, job.holder, e))?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let not_ready = |why: String| NemesisError::HolderNotReady {
        node: job.node.to_owned(),
        why,
    };
    match rx.recv_timeout(READY_LIMIT) {
        Ok(line) if line.trim() == "ready" => Ok(Holder { child }),
        Ok(line) => {
            let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
            Err(not_ready(format!(
                "it said {:?} and exited ({status}); its log is the node's",
                line.trim()
            )))
        }
        Err(_) => {
            stop_child(&mut child);
            Err(not_ready(format!("not ready within {READY_LIMIT:?}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ips(list: &[&str]) -> BTreeSet<IpAddr> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn percents_parse_with_or_without_the_sign_and_stop_at_100() {
        assert_eq!("20%".parse::<Percent>().unwrap().get(), 20);
        assert_eq!(" 5 % ".parse::<Percent>().unwrap().get(), 5);
        assert_eq!("100".parse::<Percent>().unwrap().get(), 100);
        assert!("101%".parse::<Percent>().is_err());
        assert!("lots".parse::<Percent>().is_err());
        let p: Percent = serde_json::from_str("30").unwrap();
        assert_eq!(serde_json::to_string(&p).unwrap(), "\"30%\"");
        assert!(serde_json::from_str::<Percent>("300").is_err());
    }

    #[test]
    fn shapes_read_back_what_they_write() {
        let shape = Shape {
            delay: Duration::from_millis(300),
            jitter: Duration::from_millis(50),
            loss: Percent(20),
            duplicate: Percent(0),
            reorder: Percent(25),
        };
        let json = serde_json::to_string(&shape).unwrap();
        assert_eq!(serde_json::from_str::<Shape>(&json).unwrap(), shape);
        assert_eq!(
            shape.to_string(),
            "delay 300ms ± 50ms, loss 20%, reorder 25%"
        );
        assert!(Shape::default().is_noop());
    }

    #[test]
    fn delays_stay_within_the_jitter_repeat_with_the_seed_and_reorder_their_share() {
        let shape = Shape {
            delay: Duration::from_millis(300),
            jitter: Duration::from_millis(50),
            reorder: Percent(25),
            ..Shape::default()
        };
        let draw = |seed| {
            let mut d = Delays::new(shape, seed);
            (0..4000).map(|_| d.next_delay()).collect::<Vec<_>>()
        };
        let a = draw(1);
        assert_eq!(a, draw(1));
        assert_ne!(a, draw(2));
        let at_once = a.iter().filter(|d| d.is_zero()).count();
        assert!((800..1200).contains(&at_once), "{at_once} of 4000 not held");
        assert!(
            a.iter()
                .filter(|d| !d.is_zero())
                .all(|d| (250..=350).contains(&d.as_millis()))
        );
        let spread: BTreeSet<u128> = a.iter().map(|d| d.as_millis() / 10).collect();
        assert!(spread.len() > 5, "jitter spreads the delays: {spread:?}");
        // No jitter, no reorder: every packet gets the delay.
        let mut fixed = Delays::new(
            Shape {
                delay: Duration::from_millis(7),
                ..Shape::default()
            },
            3,
        );
        assert!((0..100).all(|_| fixed.next_delay() == Duration::from_millis(7)));
    }

    #[test]
    fn the_scripts_carry_the_run_id_and_shape_only_the_link() {
        let rule = PacketRule {
            shape: Shape {
                loss: Percent(20),
                duplicate: Percent(5),
                ..Shape::default()
            },
            from: ips(&["10.0.0.2", "10.0.0.1"]),
            own: "10.0.0.9".parse().unwrap(),
            seed: 1,
        };
        assert_eq!(
            nft_script("ab12", &rule).unwrap(),
            "table ip lh_packet_ab12\ndelete table ip lh_packet_ab12\n\
             table ip lh_packet_ab12 {\n  chain input {\n    \
             type filter hook input priority -250; policy accept;\n    \
             iifname != \"lo\" ip saddr { 10.0.0.1, 10.0.0.2 } numgen random mod 100 < 20 drop\n    \
             iifname != \"lo\" ip saddr { 10.0.0.1, 10.0.0.2 } numgen random mod 100 < 5 dup to 10.0.0.9\n  \
             }\n}\n"
        );
        let q = queue_num("ab12");
        assert_eq!(
            iptables_script("ab12", &rule.from).unwrap(),
            format!(
                "*filter\n:LHPKT_ab12 - [0:0]\n\
                 -A LHPKT_ab12 -s 10.0.0.1/32 -j NFQUEUE --queue-num {q} --queue-bypass\n\
                 -A LHPKT_ab12 -s 10.0.0.2/32 -j NFQUEUE --queue-num {q} --queue-bypass\n\
                 -I INPUT 1 -m comment --comment leasehold-ab12 -j LHPKT_ab12\nCOMMIT\n"
            )
        );
        assert!(matches!(
            iptables_script("x", &ips(&["fd00::1"])),
            Err(NemesisError::PacketV6 { .. })
        ));
    }

    #[test]
    fn queue_numbers_come_from_the_run_id() {
        assert_eq!(queue_num("0000abcd"), queue_num("0000abcd"));
        assert_ne!(queue_num("0000abcd"), queue_num("0000abce"));
        for id in ["0", "ffffffff", "12345678"] {
            assert!(queue_num(id) >= 100);
        }
    }
}
