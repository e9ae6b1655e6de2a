//! A throwaway network: `n` node namespaces, each with one veth into a bridge
//! that lives in a hub namespace, addresses in a random 10.99.x.0/24 that exists
//! only inside these namespaces. Nothing touches the host's own network. Each
//! node runs a TCP echo server on port 7000. Dropping the [`Lab`] (also while
//! unwinding from a failed assertion) stops the servers and deletes every
//! namespace, which deletes the veths and the bridge with them.

use std::fs::File;
use std::hash::{BuildHasher, RandomState};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use leasehold_nemesis::{NodeFacts, Role};

pub const ECHO_PORT: u16 = 7000;
pub const UDP_PORT: u16 = 7001;

/// Latency measurements take this exclusively, every other test shares it, so
/// that the numbers are not skewed by namespaces being built next to them.
pub static EXCLUSIVE: RwLock<()> = RwLock::new(());

pub fn shared() -> RwLockReadGuard<'static, ()> {
    EXCLUSIVE.read().unwrap_or_else(|p| p.into_inner())
}

/// Whether we may build namespaces. Skipping needs saying out loud, and is not
/// allowed on CI.
pub fn privileged() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|u| u.parse::<u32>().ok());
    if euid == Some(0) {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("the partition tests need root (network namespaces, nftables), and CI=true");
    }
    eprintln!("skipping: the partition tests need root (network namespaces, nftables)");
    false
}

/// Returns from the test when it cannot run (see [`privileged`]).
#[macro_export]
macro_rules! need_root {
    () => {
        if !$crate::lab::privileged() {
            return;
        }
    };
}

pub fn random_u64() -> u64 {
    RandomState::new().hash_one(std::process::id())
}

pub struct Lab {
    /// `lhtest-<hex>-`: every namespace of this lab starts with it.
    pub prefix: String,
    /// The third octet of this lab's 10.99.x.0/24.
    pub subnet: u8,
    /// Node names, `n1`…: node `i` (0-based) has address 10.99.x.(i+1).
    pub names: Vec<String>,
    /// Namespaces created so far, deleted on drop.
    created: Vec<String>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Lab {
    pub fn new(n: usize) -> Lab {
        let r = random_u64();
        let mut lab = Lab {
            prefix: format!("lhtest-{:08x}-", r as u32),
            subnet: (r >> 32) as u8,
            names: (1..=n).map(|i| format!("n{i}")).collect(),
            created: Vec::new(),
            stop: Arc::new(AtomicBool::new(false)),
            threads: Vec::new(),
        };
        let hub = lab.ns("hub");
        let all: Vec<String> = std::iter::once(hub.clone())
            .chain(lab.names.iter().map(|m| lab.ns(m)))
            .collect();
        // Remember first: a failure half-way must still be cleaned up.
        lab.created = all.clone();
        ip(
            None,
            &all.iter()
                .map(|ns| format!("netns add {ns}"))
                .collect::<Vec<_>>(),
        );
        let mut hub_cmds = vec![
            "link add br0 type bridge".to_owned(),
            "link set br0 up".to_owned(),
        ];
        for (i, name) in lab.names.iter().enumerate() {
            hub_cmds.push(format!(
                "link add vh{i} type veth peer name eth0 netns {}",
                lab.ns(name)
            ));
            hub_cmds.push(format!("link set vh{i} master br0 up"));
        }
        ip(Some(&hub), &hub_cmds);
        for i in 0..n {
            ip(
                Some(&lab.ns(&lab.names[i])),
                &[
                    format!("addr add {}/24 dev eth0", lab.ip(i)),
                    "link set eth0 up".to_owned(),
                    "link set lo up".to_owned(),
                ],
            );
        }
        for i in 0..n {
            let addr = lab.tcp_addr(i);
            let listener = lab
                .in_ns(i, move || TcpListener::bind(addr))
                .expect("bind echo server");
            let stop = lab.stop.clone();
            lab.threads
                .push(std::thread::spawn(move || echo_server(listener, stop)));
        }
        lab
    }

    /// The namespace name of `node`.
    pub fn ns(&self, node: &str) -> String {
        format!("{}{node}", self.prefix)
    }

    pub fn netns_path(&self, i: usize) -> PathBuf {
        PathBuf::from("/run/netns").join(self.ns(&self.names[i]))
    }

    pub fn ip(&self, i: usize) -> String {
        format!("10.99.{}.{}", self.subnet, i + 1)
    }

    pub fn tcp_addr(&self, i: usize) -> SocketAddr {
        format!("{}:{ECHO_PORT}", self.ip(i)).parse().unwrap()
    }

    pub fn udp_addr(&self, i: usize) -> SocketAddr {
        format!("{}:{UDP_PORT}", self.ip(i)).parse().unwrap()
    }

    pub fn index(&self, name: &str) -> usize {
        self.names
            .iter()
            .position(|n| n == name)
            .expect("a node of the lab")
    }

    /// What the nemesis is told about the nodes.
    pub fn facts(&self) -> Vec<NodeFacts> {
        (0..self.names.len())
            .map(|i| NodeFacts {
                name: self.names[i].clone(),
                role: Role::Lock,
                pids: vec![],
                pgid: None,
                netns: Some(self.netns_path(i)),
                addr: self.tcp_addr(i).to_string(),
            })
            .collect()
    }

    /// Runs `f` on a thread that entered node `i`'s network namespace. Sockets
    /// belong to the namespace they were created in, so sockets made by `f` stay
    /// in node `i`'s network when used from any thread afterwards.
    pub fn in_ns<T: Send + 'static>(&self, i: usize, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = self.netns_path(i);
        std::thread::spawn(move || {
            let ns = File::open(&path).expect("open the namespace");
            // SAFETY: setns only changes this thread's network namespace; the
            // fd is valid for the duration of the call.
            let rc = unsafe { nix::libc::setns(ns.as_raw_fd(), nix::libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns: {}", io::Error::last_os_error());
            f()
        })
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
    }

    /// Opens a TCP connection from node `from` to node `to`'s echo server.
    pub fn connect(&self, from: usize, to: usize, timeout: Duration) -> io::Result<TcpStream> {
        let addr = self.tcp_addr(to);
        self.in_ns(from, move || TcpStream::connect_timeout(&addr, timeout))
    }

    /// A UDP socket bound to node `i`'s address.
    pub fn udp(&self, i: usize) -> UdpSocket {
        let addr = self.udp_addr(i);
        self.in_ns(i, move || UdpSocket::bind(addr))
            .expect("bind udp")
    }

    /// Whether leasehold's nftables table exists in node `i`'s namespace.
    pub fn has_table(&self, i: usize) -> bool {
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.ns(&self.names[i]),
                "nft",
                "list",
                "tables",
            ])
            .output()
            .expect("run nft list tables");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .any(|l| l.trim() == format!("table inet {}", leasehold_nemesis::partition::TABLE))
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        let dels: Vec<String> = self
            .created
            .iter()
            .map(|ns| format!("netns del {ns}"))
            .collect();
        // `-force` keeps going past a namespace that was never made.
        let _ = run_ip(&["-force".to_owned()], None, &dels);
    }
}

/// Runs `ip [-n ns] -batch -` with `cmds`, panicking on failure.
fn ip(ns: Option<&str>, cmds: &[String]) {
    if let Err(e) = run_ip(&[], ns, cmds) {
        panic!("{e}");
    }
}

fn run_ip(flags: &[String], ns: Option<&str>, cmds: &[String]) -> Result<(), String> {
    let mut cmd = Command::new("ip");
    cmd.args(flags);
    if let Some(ns) = ns {
        cmd.args(["-n", ns]);
    }
    let mut child = cmd
        .args(["-batch", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("run ip: {e}"))?;
    let script = cmds.join("\n") + "\n";
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .map_err(|e| e.to_string())?;
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {ns:?} {cmds:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn echo_server(listener: TcpListener, stop: Arc<AtomicBool>) {
    listener.set_nonblocking(true).unwrap();
    let mut conns = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, _)) => {
                let stop = stop.clone();
                conns.push(std::thread::spawn(move || echo(stream, stop)));
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(_) => break,
        }
    }
    for c in conns {
        let _ = c.join();
    }
}

fn echo(mut stream: TcpStream, stop: Arc<AtomicBool>) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(50)));
    let mut buf = [0u8; 4096];
    while !stop.load(Ordering::Relaxed) {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if stream.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break,
        }
    }
}
