//! Partitions against real TCP and UDP traffic.

use std::collections::BTreeSet;
use std::io::{self, Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use leasehold_nemesis::{
    Nemesis, NemesisError, NodeFacts, Role, Topology, grudge, is_partitioned, partition,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::lab::{Lab, shared};
use crate::need_root;

const SHORT: Duration = Duration::from_millis(300);

/// Sends `msg` on `conn` and expects it echoed within `timeout`.
fn echo(conn: &mut TcpStream, msg: &[u8], timeout: Duration) -> io::Result<()> {
    conn.write_all(msg)?;
    expect(conn, msg, timeout)
}

fn expect(conn: &mut TcpStream, msg: &[u8], timeout: Duration) -> io::Result<()> {
    conn.set_read_timeout(Some(timeout))?;
    let mut buf = vec![0; msg.len()];
    conn.read_exact(&mut buf)?;
    assert_eq!(buf, msg);
    Ok(())
}

/// Every ordered pair (receiver, sender) of which a UDP datagram got through:
/// each node sends one datagram to each other node, then every socket is drained.
fn udp_reach(lab: &Lab, socks: &[UdpSocket]) -> BTreeSet<(usize, usize)> {
    for (from, sock) in socks.iter().enumerate() {
        for to in 0..socks.len() {
            if to != from {
                sock.send_to(&[from as u8], lab.udp_addr(to))
                    .expect("send udp");
            }
        }
    }
    // Plenty for a bridge between namespaces, ARP included.
    std::thread::sleep(Duration::from_millis(150));
    let mut got = BTreeSet::new();
    for (to, sock) in socks.iter().enumerate() {
        sock.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 16];
        while let Ok((n, _)) = sock.recv_from(&mut buf) {
            assert_eq!(n, 1);
            got.insert((to, buf[0] as usize));
        }
    }
    got
}

fn everyone(n: usize) -> BTreeSet<(usize, usize)> {
    (0..n)
        .flat_map(|a| (0..n).filter(move |&b| b != a).map(move |b| (a, b)))
        .collect()
}

#[test]
fn isolating_a_node_cuts_new_and_established_connections_until_healed() {
    need_root!();
    let _g = shared();
    let lab = Lab::new(3);
    let (n1, n2, n3) = (0, 1, 2);
    let mut conn = lab
        .connect(n2, n1, SHORT)
        .expect("connect before the partition");
    echo(&mut conn, b"hello", SHORT).expect("echo before the partition");

    let mut nemesis = Nemesis::new();
    let g = grudge(
        Topology::Isolate,
        &lab.names,
        &["n1".to_owned()],
        None,
        &mut ChaCha8Rng::seed_from_u64(1),
    );
    let effect = nemesis.partition(&g, &lab.facts()).unwrap();
    assert_eq!(effect.f, "partition");
    assert_eq!(effect.nodes, ["n1", "n2", "n3"]);
    assert!(nemesis.partitioned());
    assert!((0..3).all(|i| lab.has_table(i)));

    assert!(
        lab.connect(n2, n1, SHORT).is_err(),
        "n2 reached isolated n1"
    );
    assert!(
        lab.connect(n1, n3, SHORT).is_err(),
        "isolated n1 reached n3"
    );
    let mut c23 = lab
        .connect(n2, n3, SHORT)
        .expect("n2 and n3 still hear each other");
    echo(&mut c23, b"majority", SHORT).unwrap();
    // The established connection is cut too: the rule sits before conntrack.
    let err = echo(&mut conn, b"ping", SHORT).expect_err("data crossed the partition");
    assert!(
        matches!(
            err.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
        ),
        "{err}"
    );

    let effect = nemesis.heal_partition().unwrap();
    assert_eq!((effect.f, effect.nodes.len()), ("heal", 3));
    assert!(!nemesis.partitioned());
    assert!((0..3).all(|i| !lab.has_table(i)));
    let mut fresh = lab
        .connect(n2, n1, Duration::from_secs(2))
        .expect("connect after heal");
    echo(&mut fresh, b"healed", SHORT).unwrap();
    // TCP retransmits the ping that was lost; its echo arrives, then the
    // connection works as before.
    expect(&mut conn, b"ping", Duration::from_secs(3)).expect("old connection after heal");
    echo(&mut conn, b"again", SHORT).unwrap();
}

#[test]
fn one_way_blocks_exactly_one_direction_and_drop_heals_it() {
    need_root!();
    let _g = shared();
    let lab = Lab::new(3);
    let socks: Vec<UdpSocket> = (0..3).map(|i| lab.udp(i)).collect();
    assert_eq!(udp_reach(&lab, &socks), everyone(3), "before the partition");

    let g = grudge(
        Topology::OneWay,
        &lab.names,
        &[],
        None,
        &mut ChaCha8Rng::seed_from_u64(7),
    );
    let deaf = g.keys().next().expect("one node drops the others").clone();
    let a = lab.index(&deaf);
    {
        let mut nemesis = Nemesis::new();
        nemesis.partition(&g, &lab.facts()).unwrap();
        let want: BTreeSet<(usize, usize)> = everyone(3)
            .into_iter()
            .filter(|&(to, from)| !is_partitioned(&g, &lab.names[to], &lab.names[from]))
            .collect();
        let got = udp_reach(&lab, &socks);
        assert_eq!(got, want, "grudge {g:?}");
        // Exactly one direction: A hears neither other node, both hear A.
        for b in (0..3).filter(|&b| b != a) {
            assert!(!got.contains(&(a, b)) && got.contains(&(b, a)), "{got:?}");
        }
        // TCP too: A drops the SYN of a connection from B.
        assert!(lab.connect((a + 1) % 3, a, SHORT).is_err());
        // Dropped here, without an explicit heal.
    }
    assert!((0..3).all(|i| !lab.has_table(i)));
    assert_eq!(
        udp_reach(&lab, &socks),
        everyone(3),
        "after the nemesis was dropped"
    );
}

#[test]
fn a_new_grudge_replaces_the_old_one_and_heal_is_idempotent() {
    need_root!();
    let _g = shared();
    let lab = Lab::new(3);
    let facts = lab.facts();
    let socks: Vec<UdpSocket> = (0..3).map(|i| lab.udp(i)).collect();
    let isolate = |name: &str| {
        grudge(
            Topology::Isolate,
            &lab.names,
            &[name.to_owned()],
            Some(&["n2".to_owned()]),
            &mut ChaCha8Rng::seed_from_u64(0),
        )
    };
    // n1 and n2 cut from each other; n3 untouched, so it gets no table.
    partition::apply(&isolate("n1"), &facts).unwrap();
    assert_eq!(
        (0..3).map(|i| lab.has_table(i)).collect::<Vec<_>>(),
        [true, true, false]
    );
    let cut_12: BTreeSet<_> = [(0, 1), (1, 0)].into();
    let got = udp_reach(&lab, &socks);
    assert_eq!(
        everyone(3)
            .difference(&got)
            .copied()
            .collect::<BTreeSet<_>>(),
        cut_12
    );

    // Now n3 and n2: n1's table must go, not linger.
    partition::apply(&isolate("n3"), &facts).unwrap();
    assert_eq!(
        (0..3).map(|i| lab.has_table(i)).collect::<Vec<_>>(),
        [false, true, true]
    );
    let cut_23: BTreeSet<_> = [(1, 2), (2, 1)].into();
    let got = udp_reach(&lab, &socks);
    assert_eq!(
        everyone(3)
            .difference(&got)
            .copied()
            .collect::<BTreeSet<_>>(),
        cut_23
    );

    partition::heal(&facts).unwrap();
    partition::heal(&facts).unwrap();
    assert!((0..3).all(|i| !lab.has_table(i)));
    assert_eq!(udp_reach(&lab, &socks), everyone(3));

    // heal_all reports the partition it healed, alongside (no) resumed nodes.
    let mut nemesis = Nemesis::new();
    let g = grudge(
        Topology::Bridge,
        &lab.names,
        &[],
        None,
        &mut ChaCha8Rng::seed_from_u64(3),
    );
    let effect = nemesis.partition(&g, &facts).unwrap();
    assert_eq!(effect.nodes.len(), 2, "the bridge drops nobody: {g:?}");
    let (effect, errors) = nemesis.heal_all();
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(effect.f, "heal");
    assert_eq!(effect.nodes.len(), 2);
    assert!((0..3).all(|i| !lab.has_table(i)));
}

#[test]
fn a_node_left_out_of_the_next_partition_is_still_healed() {
    need_root!();
    let _g = shared();
    let lab = Lab::new(3);
    let facts = lab.facts();
    let mut nemesis = Nemesis::new();
    let g = grudge(
        Topology::Halves,
        &lab.names,
        &[],
        None,
        &mut ChaCha8Rng::seed_from_u64(0),
    );
    nemesis.partition(&g, &facts).unwrap();
    assert!((0..3).all(|i| lab.has_table(i)));
    // The caller now only mentions n2 and n3: n1's old table must still go.
    let g = grudge(
        Topology::Isolate,
        &lab.names[1..],
        &["n3".to_owned()],
        None,
        &mut ChaCha8Rng::seed_from_u64(0),
    );
    let effect = nemesis.partition(&g, &facts[1..]).unwrap();
    assert_eq!(effect.nodes, ["n2", "n3"]);
    assert_eq!(
        (0..3).map(|i| lab.has_table(i)).collect::<Vec<_>>(),
        [false, true, true]
    );
    assert_eq!(nemesis.partitioned_nodes(), ["n2", "n3"]);
    nemesis.heal_partition().unwrap();
    assert!((0..3).all(|i| !lab.has_table(i)));
}

#[test]
fn failures_to_enter_a_namespace_name_the_node_and_the_namespace() {
    // A namespace that does not exist cannot be entered, root or not.
    let missing = PathBuf::from(format!(
        "/run/netns/lhtest-{:08x}-missing",
        crate::lab::random_u64() as u32
    ));
    let node = |name: &str, ip: &str, netns: Option<PathBuf>| NodeFacts {
        name: name.into(),
        role: Role::Storage,
        pids: vec![],
        pgid: None,
        netns,
        addr: format!("{ip}:9000"),
    };
    let facts = [
        node("s1", "10.99.0.1", Some(missing.clone())),
        node("s2", "10.99.0.2", None),
    ];
    let g = [("s1".to_owned(), ["s2".to_owned()].into())].into();
    let start = Instant::now();
    let err = partition::apply(&g, &facts).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(&err, NemesisError::Exec { node, .. } if node == "s1"),
        "{msg}"
    );
    assert!(msg.contains("node s1") && msg.contains("missing"), "{msg}");
    assert!(start.elapsed() < Duration::from_secs(5));
    let err = partition::heal(&facts).unwrap_err();
    assert!(err.to_string().contains("node s1"), "{err}");
}
