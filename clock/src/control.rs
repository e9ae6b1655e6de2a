//! The control file: one fixed-size record shared between the harness (the
//! writer) and every process of one node (the readers, through the shim).
//!
//! Layout (64 bytes, native byte order, every field naturally aligned):
//!
//! | offset | type | field |
//! | --- | --- | --- |
//! | 0 | u32 | `magic` = [`MAGIC`] |
//! | 4 | u32 | `version` = [`VERSION`] |
//! | 8 | u64 | `seq`: seqlock counter, odd while a write is in progress |
//! | 16 | i64 | `realtime_offset_ns`: added to the realtime clocks |
//! | 24 | i64 | `monotonic_offset_ns`: added to the monotonic clocks |
//! | 32 | i64 | `rate_ppb`: clock rate in parts per billion (1e9 = real speed) |
//! | 40 | i64 | `anchor_monotonic_ns`: CLOCK_MONOTONIC when the rate was set |
//! | 48 | i64 | `carried_ns`: skew accumulated under earlier rates |
//! | 56 | u64 | reserved, zero |
//!
//! A clock of either class then reads
//! `t + class_offset + carried + (monotonic_now − anchor) × (rate − 1)`,
//! which is `anchor + (t − anchor) × rate + offset` with the elapsed time taken
//! from CLOCK_MONOTONIC for every clock (so a realtime step by NTP while
//! skewing does not get multiplied). When the writer changes the rate it folds
//! the skew accumulated so far into `carried_ns` and moves the anchor to now, so
//! a rate change never makes the clock jump.
//!
//! The seqlock: the writer bumps `seq` to odd, writes the fields, bumps it to
//! even. A reader reads `seq`, the fields, then `seq` again, and retries while
//! the counter was odd or changed, so it never sees a torn record. Readers
//! never write, so the shim maps the file read-only.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering, fence};

/// First four bytes of a control file ("LHCK" in little-endian order).
pub const MAGIC: u32 = 0x4b43_484c;
/// Layout version of the record described in this module.
pub const VERSION: u32 = 1;
/// Size of the record in bytes; the file must be at least this long.
pub const RECORD_SIZE: usize = 64;
/// Environment variable naming the control file in a node's processes.
pub const ENV_VAR: &str = "LEASEHOLD_CLOCK_CONTROL";
/// One clock running at real speed, in parts per billion.
pub const RATE_ONE_PPB: i64 = 1_000_000_000;

/// The shared record, as laid out in the file.
#[repr(C)]
#[derive(Debug)]
pub struct Record {
    magic: AtomicU32,
    version: AtomicU32,
    seq: AtomicU64,
    realtime_offset_ns: AtomicI64,
    monotonic_offset_ns: AtomicI64,
    rate_ppb: AtomicI64,
    anchor_monotonic_ns: AtomicI64,
    carried_ns: AtomicI64,
    reserved: AtomicU64,
}

const _: () = assert!(std::mem::size_of::<Record>() == RECORD_SIZE);

/// Which way a clock id moves under a fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockClass {
    /// Wall clocks: CLOCK_REALTIME, _COARSE, _ALARM and CLOCK_TAI.
    Realtime,
    /// Elapsed-time clocks: CLOCK_MONOTONIC, _RAW, _COARSE, CLOCK_BOOTTIME, _ALARM.
    Monotonic,
}

impl ClockClass {
    /// The class of a clock id, or `None` for clocks the shim leaves alone
    /// (CPU-time clocks and per-process/thread clock ids).
    pub fn of(clock: libc::clockid_t) -> Option<ClockClass> {
        match clock {
            libc::CLOCK_REALTIME
            | libc::CLOCK_REALTIME_COARSE
            | libc::CLOCK_REALTIME_ALARM
            | libc::CLOCK_TAI => Some(ClockClass::Realtime),
            libc::CLOCK_MONOTONIC
            | libc::CLOCK_MONOTONIC_RAW
            | libc::CLOCK_MONOTONIC_COARSE
            | libc::CLOCK_BOOTTIME
            | libc::CLOCK_BOOTTIME_ALARM => Some(ClockClass::Monotonic),
            _ => None,
        }
    }
}

/// One consistent reading of the record: the fault in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault {
    /// Added to the realtime clocks, in nanoseconds.
    pub realtime_offset_ns: i64,
    /// Added to the monotonic clocks, in nanoseconds.
    pub monotonic_offset_ns: i64,
    /// Clock rate in parts per billion.
    pub rate_ppb: i64,
    /// CLOCK_MONOTONIC (real) when the rate was last set.
    pub anchor_monotonic_ns: i64,
    /// Skew accumulated under earlier rates, applied to both classes.
    pub carried_ns: i64,
}

impl Fault {
    /// No fault: every clock reads the real time.
    pub const NONE: Fault = Fault {
        realtime_offset_ns: 0,
        monotonic_offset_ns: 0,
        rate_ppb: RATE_ONE_PPB,
        anchor_monotonic_ns: 0,
        carried_ns: 0,
    };

    /// Whether this fault leaves every clock unchanged.
    pub fn is_none(&self) -> bool {
        self.realtime_offset_ns == 0
            && self.monotonic_offset_ns == 0
            && self.carried_ns == 0
            && self.rate_ppb == RATE_ONE_PPB
    }

    /// Whether the rate differs from real speed (then the transform needs the
    /// real CLOCK_MONOTONIC as well as the clock being read).
    pub fn is_skewed(&self) -> bool {
        self.rate_ppb != RATE_ONE_PPB
    }

    /// Skew accumulated since the anchor, at real monotonic time `mono_now_ns`.
    fn skew_since_anchor(&self, mono_now_ns: i64) -> i64 {
        let elapsed = i128::from(mono_now_ns) - i128::from(self.anchor_monotonic_ns);
        let extra = elapsed * (i128::from(self.rate_ppb) - i128::from(RATE_ONE_PPB))
            / i128::from(RATE_ONE_PPB);
        clamp_i64(extra)
    }

    /// The node's reading of a clock of `class` whose real reading is `t_ns`,
    /// with the real CLOCK_MONOTONIC at `mono_now_ns` (only used when skewed).
    /// Never panics; saturates instead of overflowing and never goes below 0.
    pub fn apply(&self, class: ClockClass, t_ns: i64, mono_now_ns: i64) -> i64 {
        let offset = match class {
            ClockClass::Realtime => self.realtime_offset_ns,
            ClockClass::Monotonic => self.monotonic_offset_ns,
        };
        let skew = if self.is_skewed() {
            self.skew_since_anchor(mono_now_ns)
        } else {
            0
        };
        t_ns.saturating_add(offset)
            .saturating_add(self.carried_ns)
            .saturating_add(skew)
            .max(0)
    }
}

fn clamp_i64(v: i128) -> i64 {
    if v > i128::from(i64::MAX) {
        i64::MAX
    } else if v < i128::from(i64::MIN) {
        i64::MIN
    } else {
        v as i64
    }
}

/// Reads a clock by the raw system call (never the vDSO, which the shim
/// replaces), in nanoseconds; `None` if the kernel refuses the clock id.
pub fn raw_clock_ns(clock: libc::clockid_t) -> Option<i64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: SYS_clock_gettime writes one timespec to a valid pointer.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_clock_gettime,
            clock,
            &mut ts as *mut libc::timespec,
        )
    };
    if rc != 0 {
        return None;
    }
    Some(timespec_ns(&ts))
}

/// A timespec as nanoseconds, saturating.
pub fn timespec_ns(ts: &libc::timespec) -> i64 {
    ts.tv_sec
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec)
}

/// Nanoseconds as a timespec (non-negative input expected; negative is clamped).
pub fn ns_timespec(ns: i64) -> libc::timespec {
    let ns = ns.max(0);
    libc::timespec {
        tv_sec: (ns / 1_000_000_000) as libc::time_t,
        tv_nsec: (ns % 1_000_000_000) as libc::c_long,
    }
}

impl Record {
    /// Reads one consistent fault from the record, or `None` if the record is
    /// not (yet) a valid control record or a writer seems stuck mid-write.
    /// Lock-free, allocation-free and panic-free: safe inside the shim.
    pub fn read(&self) -> Option<Fault> {
        // Bounded: a writer killed mid-write must not hang every clock read.
        for _ in 0..10_000 {
            let s1 = self.seq.load(Ordering::Acquire);
            if s1 & 1 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let magic = self.magic.load(Ordering::Relaxed);
            let version = self.version.load(Ordering::Relaxed);
            let fault = Fault {
                realtime_offset_ns: self.realtime_offset_ns.load(Ordering::Relaxed),
                monotonic_offset_ns: self.monotonic_offset_ns.load(Ordering::Relaxed),
                rate_ppb: self.rate_ppb.load(Ordering::Relaxed),
                anchor_monotonic_ns: self.anchor_monotonic_ns.load(Ordering::Relaxed),
                carried_ns: self.carried_ns.load(Ordering::Relaxed),
            };
            fence(Ordering::Acquire);
            if self.seq.load(Ordering::Relaxed) != s1 {
                continue;
            }
            if magic != MAGIC || version != VERSION || fault.rate_ppb <= 0 {
                return None;
            }
            return Some(fault);
        }
        None
    }

    fn write(&self, fault: &Fault) {
        let s = self.seq.load(Ordering::Relaxed);
        self.seq.store(s.wrapping_add(1), Ordering::Relaxed);
        fence(Ordering::Release);
        self.realtime_offset_ns
            .store(fault.realtime_offset_ns, Ordering::Relaxed);
        self.monotonic_offset_ns
            .store(fault.monotonic_offset_ns, Ordering::Relaxed);
        self.rate_ppb.store(fault.rate_ppb, Ordering::Relaxed);
        self.anchor_monotonic_ns
            .store(fault.anchor_monotonic_ns, Ordering::Relaxed);
        self.carried_ns.store(fault.carried_ns, Ordering::Relaxed);
        self.version.store(VERSION, Ordering::Relaxed);
        self.magic.store(MAGIC, Ordering::Relaxed);
        self.seq.store(s.wrapping_add(2), Ordering::Release);
    }
}

/// A rate the control file cannot hold.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("clock rate {0} is not a finite number between 0.001 and 1000")]
pub struct InvalidRate(pub f64);

/// Converts a rate (1.0 = real speed) to parts per billion.
pub fn rate_ppb(rate: f64) -> Result<i64, InvalidRate> {
    if !rate.is_finite() || !(0.001..=1000.0).contains(&rate) {
        return Err(InvalidRate(rate));
    }
    Ok((rate * RATE_ONE_PPB as f64).round() as i64)
}

/// The writer side, held by the harness: one node's control file, mapped
/// read-write. Only one writer per file is supported (the seqlock orders
/// readers against a single writer).
#[derive(Debug)]
pub struct ControlFile {
    map: std::ptr::NonNull<Record>,
    _file: File,
}

// SAFETY: the mapping is only accessed through atomics; moving or sharing the
// handle between threads is fine (concurrent `set` calls are serialised by
// `&mut self`).
unsafe impl Send for ControlFile {}
// SAFETY: see above; `&self` methods only read.
unsafe impl Sync for ControlFile {}

impl ControlFile {
    /// Creates (or truncates) the control file at `path` with no fault in
    /// force, mode 0644 so a node running as another user can read it.
    pub fn create(path: &Path) -> io::Result<ControlFile> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .open(path)?;
        file.set_len(RECORD_SIZE as u64)?;
        let cf = ControlFile::map(file)?;
        cf.record().write(&Fault::NONE);
        Ok(cf)
    }

    /// Opens an existing control file for writing, keeping the fault in force.
    pub fn open(path: &Path) -> io::Result<ControlFile> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        if file.metadata()?.len() < RECORD_SIZE as u64 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} is shorter than a clock control record", path.display()),
            ));
        }
        let cf = ControlFile::map(file)?;
        if cf.record().read().is_none() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} is not a clock control file", path.display()),
            ));
        }
        Ok(cf)
    }

    fn map(file: File) -> io::Result<ControlFile> {
        // SAFETY: a fresh shared mapping of a file at least RECORD_SIZE long.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                RECORD_SIZE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let map = std::ptr::NonNull::new(p.cast::<Record>())
            .ok_or_else(|| io::Error::other("mmap returned null"))?;
        Ok(ControlFile { map, _file: file })
    }

    fn record(&self) -> &Record {
        // SAFETY: the mapping lives as long as self and is page-aligned.
        unsafe { self.map.as_ref() }
    }

    /// The fault in force.
    pub fn current(&self) -> Fault {
        self.record().read().unwrap_or(Fault::NONE)
    }

    /// Sets the fault: `realtime_offset_ns` and `monotonic_offset_ns` are added
    /// to the node's clocks on top of the skew accumulated so far, and from now
    /// on the clocks run at `rate` (1.0 = real speed). Re-anchors the rate at
    /// the current instant, so changing the rate never makes a clock jump.
    pub fn set(
        &mut self,
        realtime_offset_ns: i64,
        monotonic_offset_ns: i64,
        rate: f64,
    ) -> Result<Fault, InvalidRate> {
        let rate_ppb = rate_ppb(rate)?;
        let old = self.current();
        let now = raw_clock_ns(libc::CLOCK_MONOTONIC).unwrap_or(0);
        let carried = if old.is_skewed() {
            old.carried_ns.saturating_add(old.skew_since_anchor(now))
        } else {
            old.carried_ns
        };
        let fault = Fault {
            realtime_offset_ns,
            monotonic_offset_ns,
            rate_ppb,
            anchor_monotonic_ns: now,
            carried_ns: carried,
        };
        self.record().write(&fault);
        Ok(fault)
    }

    /// Heals: every clock of the node reads the real time again (a jump back
    /// by whatever offset and skew had accumulated).
    pub fn clear(&mut self) {
        self.record().write(&Fault::NONE);
    }

    /// What the node's clock of `class` reads now, as the shim computes it.
    pub fn node_now_ns(&self, class: ClockClass) -> i64 {
        let clock = match class {
            ClockClass::Realtime => libc::CLOCK_REALTIME,
            ClockClass::Monotonic => libc::CLOCK_MONOTONIC,
        };
        let t = raw_clock_ns(clock).unwrap_or(0);
        let mono = raw_clock_ns(libc::CLOCK_MONOTONIC).unwrap_or(0);
        self.current().apply(class, t, mono)
    }
}

impl Drop for ControlFile {
    fn drop(&mut self) {
        // SAFETY: unmapping the mapping this handle created; nothing borrows it.
        unsafe {
            libc::munmap(self.map.as_ptr().cast(), RECORD_SIZE);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_apply_per_class() {
        let f = Fault {
            realtime_offset_ns: 5,
            monotonic_offset_ns: -3,
            ..Fault::NONE
        };
        assert_eq!(f.apply(ClockClass::Realtime, 100, 0), 105);
        assert_eq!(f.apply(ClockClass::Monotonic, 100, 0), 97);
        assert_eq!(f.apply(ClockClass::Monotonic, 1, 0), 0, "clamped at zero");
    }

    #[test]
    fn rate_scales_elapsed_since_anchor() {
        let f = Fault {
            rate_ppb: rate_ppb(1.5).unwrap(),
            anchor_monotonic_ns: 1_000,
            ..Fault::NONE
        };
        // 2000 ns real since the anchor read as 3000 ns.
        assert_eq!(f.apply(ClockClass::Monotonic, 3_000, 3_000), 4_000);
        assert_eq!(f.apply(ClockClass::Realtime, 50_000, 3_000), 51_000);
    }

    #[test]
    fn rate_change_does_not_jump() {
        let dir = tempfile::tempdir().unwrap();
        let mut cf = ControlFile::create(&dir.path().join("c")).unwrap();
        cf.set(0, 0, 3.0).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(50));
        let before = cf.node_now_ns(ClockClass::Monotonic);
        cf.set(0, 0, 1.0).unwrap();
        let after = cf.node_now_ns(ClockClass::Monotonic);
        // The 100 ms of extra skew is carried, not dropped.
        assert!(after >= before, "clock went back by {} ns", before - after);
        assert!(cf.current().carried_ns >= 99_000_000, "{:?}", cf.current());
        cf.clear();
        assert!(cf.current().is_none());
    }

    #[test]
    fn invalid_rates_are_refused() {
        assert!(rate_ppb(f64::NAN).is_err());
        assert!(rate_ppb(0.0).is_err());
        assert!(rate_ppb(-1.0).is_err());
        assert_eq!(rate_ppb(2.0), Ok(2 * RATE_ONE_PPB));
    }

    #[test]
    fn bad_magic_reads_as_no_record() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c");
        std::fs::write(&path, [0u8; RECORD_SIZE]).unwrap();
        assert!(ControlFile::open(&path).is_err());
        std::fs::write(&path, [0u8; 8]).unwrap();
        assert!(ControlFile::open(&path).is_err());
    }
}
