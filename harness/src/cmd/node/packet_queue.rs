//! `leasehold node packet-queue`: the holder of a packet fault, run inside
//! the receiving node's network namespace (see `leasehold_nemesis::packet`
//! for why this and not netem).
//!
//! It binds the run's NFQUEUE, to which iptables sends the packets of the
//! shaped link, and issues each packet's ACCEPT verdict once its delay
//! (`delay ± jitter`, or none for the `reorder` share, drawn from `--seed`)
//! has passed. It says `ready` on stdout once bound. On SIGTERM or SIGINT, or
//! when its controller is gone, it lets every packet it still holds through,
//! at once, and exits. The queue is fail-open and the rule that feeds it
//! `--queue-bypass`, so packets pass rather than drop when it is gone or
//! full.
//!
//! The netlink side is the `nfq` crate (pure Rust, no C library). It has no
//! way to wait on its socket with a timeout, so the socket is non-blocking and
//! the loop wakes every [`TICK`]: that is the resolution of every delay.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use leasehold_nemesis::packet::{Delays, Percent, Shape};
use nfq::{Queue, Verdict};

/// How often the loop looks for packets and due verdicts.
const TICK: Duration = Duration::from_micros(500);
/// Packets the kernel may hold for the queue before it lets them pass.
const QUEUE_LEN: u32 = 65_536;

#[derive(Debug, Args)]
pub struct PacketQueueArgs {
    /// The node whose packets it holds, for its log.
    #[arg(long)]
    name: String,
    /// Run id: marks the process as the run's, so `leasehold cleanup` finds it.
    #[arg(long)]
    run_id: String,
    /// The NFQUEUE number to bind.
    #[arg(long)]
    queue: u16,
    #[arg(long)]
    delay_us: u64,
    #[arg(long, default_value_t = 0)]
    jitter_us: u64,
    /// Percent of packets let through at once.
    #[arg(long, default_value_t = 0)]
    reorder: u8,
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: std::ffi::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

pub fn run(args: PacketQueueArgs) -> anyhow::Result<std::process::ExitCode> {
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
    let action = SigAction::new(
        SigHandler::Handler(on_signal),
        SaFlags::empty(),
        SigSet::empty(),
    );
    for s in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        // SAFETY: the handler only stores to an atomic.
        unsafe { sigaction(s, &action) }.context("install the signal handlers")?;
    }
    let shape = Shape {
        delay: Duration::from_micros(args.delay_us),
        jitter: Duration::from_micros(args.jitter_us),
        reorder: Percent::new(args.reorder).context("--reorder is at most 100")?,
        ..Shape::default()
    };
    let q = args.queue;
    let mut queue = Queue::open().context("open a netfilter queue socket")?;
    queue.bind(q).with_context(|| format!("bind queue {q}"))?;
    queue
        .set_fail_open(q, true)
        .context("set the queue fail-open")?;
    queue
        .set_queue_max_len(q, QUEUE_LEN)
        .context("set the queue's length")?;
    // The verdict is all it sends back: the packet itself stays in the kernel.
    queue.set_copy_range(q, 0).context("set the copy range")?;
    queue.set_nonblocking(true);
    let parent = nix::unistd::getppid();
    eprintln!(
        "packet-queue {}: queue {q}, run {}, {shape}, seed {}",
        args.name, args.run_id, args.seed
    );
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "ready")?;
        out.flush()?;
    }
    let mut delays = Delays::new(shape, args.seed);
    // Held packets by when they are due (and arrival, to keep ties in order).
    let mut held: BTreeMap<(Instant, u64), nfq::Message> = BTreeMap::new();
    let mut seq = 0u64;
    let (mut seen, mut at_once) = (0u64, 0u64);
    loop {
        let stopping = STOP.load(Ordering::SeqCst) || nix::unistd::getppid() != parent;
        loop {
            match queue.recv() {
                Ok(mut msg) => {
                    seen += 1;
                    let delay = delays.next_delay();
                    if delay.is_zero() || stopping {
                        at_once += 1;
                        msg.set_verdict(Verdict::Accept);
                        queue.verdict(msg).context("verdict")?;
                    } else {
                        seq += 1;
                        held.insert((Instant::now() + delay, seq), msg);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e).context("receive from the queue"),
            }
        }
        let now = Instant::now();
        while let Some(entry) = held.first_entry() {
            if !stopping && entry.key().0 > now {
                break;
            }
            let mut msg = entry.remove();
            msg.set_verdict(Verdict::Accept);
            queue.verdict(msg).context("verdict")?;
        }
        if stopping {
            break;
        }
        let nap = held
            .first_key_value()
            .map(|((due, _), _)| due.saturating_duration_since(now))
            .unwrap_or(TICK)
            .min(TICK);
        std::thread::sleep(nap);
    }
    let _ = queue.unbind(q);
    eprintln!(
        "packet-queue {}: {seen} packets, {at_once} let through at once",
        args.name
    );
    Ok(std::process::ExitCode::SUCCESS)
}
