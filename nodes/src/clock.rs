/// The clock of a run: nanoseconds since the run started on CLOCK_MONOTONIC.
///
/// Every node of a run shares the host kernel's monotonic clock, so events
/// stamped in different processes (and network namespaces or containers) compare
/// directly. The controller picks `t0` and hands it to every node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunClock {
    t0_ns: u64,
}

impl RunClock {
    /// A clock whose zero is now.
    pub fn starting_now() -> Self {
        RunClock {
            t0_ns: monotonic_ns(),
        }
    }

    /// A clock whose zero is `t0_ns` on CLOCK_MONOTONIC.
    pub fn from_t0(t0_ns: u64) -> Self {
        RunClock { t0_ns }
    }

    /// The clock's zero, in nanoseconds on CLOCK_MONOTONIC.
    pub fn t0_ns(&self) -> u64 {
        self.t0_ns
    }

    /// Nanoseconds since the run started.
    pub fn now(&self) -> u64 {
        monotonic_ns().saturating_sub(self.t0_ns)
    }
}

/// The host's CLOCK_MONOTONIC in nanoseconds, asked of the kernel by system
/// call: a node started under the clock library (a clock fault) has its
/// `clock_gettime` moved, and the history's stamps must not move with it.
pub fn monotonic_ns() -> u64 {
    leasehold_clock::control::raw_clock_ns(libc::CLOCK_MONOTONIC)
        .expect("CLOCK_MONOTONIC is always available") as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_read_the_same_clock_as_the_vdso() {
        use nix::time::{ClockId, clock_gettime};
        let vdso = || {
            let ts = clock_gettime(ClockId::CLOCK_MONOTONIC).unwrap();
            ts.tv_sec() as u64 * 1_000_000_000 + ts.tv_nsec() as u64
        };
        let (a, b, c) = (vdso(), monotonic_ns(), vdso());
        assert!(a <= b && b <= c, "{a} {b} {c}");
    }

    #[test]
    fn run_clock_counts_from_its_zero() {
        let clock = RunClock::starting_now();
        let a = clock.now();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = clock.now();
        assert!(b >= a + 2_000_000, "{a} then {b}");
        assert_eq!(RunClock::from_t0(clock.t0_ns()), clock);
    }
}
