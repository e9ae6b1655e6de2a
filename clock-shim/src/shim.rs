//! The preloaded side: the exported C clock functions and the lazily mapped
//! control record.
//!
//! Everything here may run before `main`, inside the allocator's own
//! initialisation (jemalloc reads the clock while it sets itself up), in a
//! signal handler or in a fork child. So: no allocation, no locks, no panics,
//! no thread-locals, no std I/O. The control file is mapped on first use with
//! `getenv` + `open` + `mmap`; threads racing to map it may each map it once
//! and all but the winner of a compare-exchange unmap theirs. `errno` is left
//! as it was unless the call itself fails.

use leasehold_clock::control::{self, ClockClass, Fault, RECORD_SIZE, Record};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicPtr, Ordering};

/// The mapped record, null until mapped.
static RECORD: AtomicPtr<Record> = AtomicPtr::new(std::ptr::null_mut());
/// Set once the environment variable was found unset: never look again.
static DISABLED: AtomicBool = AtomicBool::new(false);
/// Real CLOCK_MONOTONIC before which a missing/short file is not retried, so a
/// node started before its control file exists picks it up within a second
/// without paying an `open` on every clock read.
static NEXT_TRY_NS: AtomicI64 = AtomicI64::new(0);

const RETRY_NS: i64 = 1_000_000_000;
/// NUL-terminated name of the control-file variable.
const ENV_VAR_C: &[u8] = b"LEASEHOLD_CLOCK_CONTROL\0";
const _: () = assert!(ENV_VAR_C.len() == control::ENV_VAR.len() + 1);

fn errno_ptr() -> *mut libc::c_int {
    // SAFETY: glibc's per-thread errno location is always valid.
    unsafe { libc::__errno_location() }
}

/// The fault in force for this process, `None` when there is none to apply.
fn fault() -> Option<Fault> {
    let rec = record()?;
    let f = rec.read()?;
    if f.is_none() { None } else { Some(f) }
}

fn record() -> Option<&'static Record> {
    let p = RECORD.load(Ordering::Acquire);
    if !p.is_null() {
        // SAFETY: once published, the mapping is never unmapped.
        return Some(unsafe { &*p });
    }
    if DISABLED.load(Ordering::Relaxed) {
        return None;
    }
    let now = control::raw_clock_ns(libc::CLOCK_MONOTONIC).unwrap_or(0);
    if now < NEXT_TRY_NS.load(Ordering::Relaxed) {
        return None;
    }
    // SAFETY: errno_ptr is valid; map_record only makes system calls.
    let saved = unsafe { *errno_ptr() };
    let mapped = map_record();
    unsafe { *errno_ptr() = saved };
    match mapped {
        Mapped::Yes(p) => match RECORD.compare_exchange(
            std::ptr::null_mut(),
            p,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            // SAFETY: p was just mapped and is now published for good.
            Ok(_) => Some(unsafe { &*p }),
            Err(winner) => {
                // Another thread mapped it first: drop ours, use theirs.
                // SAFETY: p is our own mapping, never published.
                unsafe { libc::munmap(p.cast(), RECORD_SIZE) };
                // SAFETY: the winner's mapping is published for good.
                Some(unsafe { &*winner })
            }
        },
        Mapped::NoVariable => {
            DISABLED.store(true, Ordering::Relaxed);
            None
        }
        Mapped::NotYet => {
            NEXT_TRY_NS.store(now.saturating_add(RETRY_NS), Ordering::Relaxed);
            None
        }
    }
}

enum Mapped {
    Yes(*mut Record),
    NoVariable,
    NotYet,
}

fn map_record() -> Mapped {
    // SAFETY: getenv reads the environment without allocating; the name is
    // NUL-terminated.
    let path = unsafe { libc::getenv(ENV_VAR_C.as_ptr().cast()) };
    // SAFETY: a non-null getenv result is a NUL-terminated string.
    if path.is_null() || unsafe { *path } == 0 {
        return Mapped::NoVariable;
    }
    // SAFETY: plain system calls on a valid path and our own descriptor.
    unsafe {
        let fd = libc::open(path, libc::O_RDONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return Mapped::NotYet;
        }
        let mut st: libc::stat = std::mem::zeroed();
        // A file shorter than the record would SIGBUS on access: check first.
        if libc::fstat(fd, &mut st) != 0 || (st.st_size as u64) < RECORD_SIZE as u64 {
            libc::close(fd);
            return Mapped::NotYet;
        }
        let p = libc::mmap(
            std::ptr::null_mut(),
            RECORD_SIZE,
            libc::PROT_READ,
            libc::MAP_SHARED,
            fd,
            0,
        );
        libc::close(fd);
        if p == libc::MAP_FAILED || p.is_null() {
            return Mapped::NotYet;
        }
        Mapped::Yes(p.cast())
    }
}

/// Reads `clock` by the raw system call into `tp`; 0 or -1 with errno set.
///
/// # Safety
/// `tp` must be null or valid for writing one timespec.
unsafe fn raw_gettime(clock: libc::clockid_t, tp: *mut libc::timespec) -> libc::c_int {
    // SAFETY: the kernel validates tp (EFAULT) and clock (EINVAL).
    unsafe { libc::syscall(libc::SYS_clock_gettime, clock, tp) as libc::c_int }
}

/// The node's view of a real reading `t_ns` of `clock` (of `class`).
fn node_ns(f: &Fault, class: ClockClass, clock: libc::clockid_t, t_ns: i64) -> i64 {
    let mono = if !f.is_skewed() || clock == libc::CLOCK_MONOTONIC {
        t_ns
    } else {
        control::raw_clock_ns(libc::CLOCK_MONOTONIC).unwrap_or(f.anchor_monotonic_ns)
    };
    f.apply(class, t_ns, mono)
}

/// The node's CLOCK_REALTIME in nanoseconds, `None` if the kernel refused.
fn node_realtime_ns() -> Option<i64> {
    let t = control::raw_clock_ns(libc::CLOCK_REALTIME)?;
    Some(match fault() {
        Some(f) => node_ns(&f, ClockClass::Realtime, libc::CLOCK_REALTIME, t),
        None => t,
    })
}

/// `clock_gettime(2)`: the kernel's answer by system call, moved by the fault
/// for realtime- and monotonic-class clocks; CPU-time clocks pass through.
///
/// # Safety
/// As the C function: `tp` must be valid for writing one timespec.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn clock_gettime(
    clock: libc::clockid_t,
    tp: *mut libc::timespec,
) -> libc::c_int {
    // SAFETY: forwarded caller contract.
    let rc = unsafe { raw_gettime(clock, tp) };
    if rc != 0 || tp.is_null() {
        return rc;
    }
    let Some(class) = ClockClass::of(clock) else {
        return 0;
    };
    let Some(f) = fault() else {
        return 0;
    };
    // SAFETY: the kernel just filled *tp.
    unsafe {
        let t = control::timespec_ns(&*tp);
        *tp = control::ns_timespec(node_ns(&f, class, clock, t));
    }
    0
}

/// `gettimeofday(2)`: the node's CLOCK_REALTIME in microseconds. The obsolete
/// timezone argument is answered by the kernel unchanged.
///
/// # Safety
/// As the C function: each non-null pointer valid for writing its struct.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gettimeofday(
    tv: *mut libc::timeval,
    tz: *mut libc::c_void,
) -> libc::c_int {
    if !tz.is_null() {
        // SAFETY: the kernel fills the timezone struct the caller passed.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_gettimeofday,
                std::ptr::null_mut::<libc::timeval>(),
                tz,
            )
        };
        if rc != 0 {
            return rc as libc::c_int;
        }
    }
    if tv.is_null() {
        return 0;
    }
    let Some(ns) = node_realtime_ns() else {
        // SAFETY: errno_ptr is valid.
        unsafe { *errno_ptr() = libc::EFAULT };
        return -1;
    };
    // SAFETY: caller contract: tv is valid for writing.
    unsafe {
        *tv = libc::timeval {
            tv_sec: (ns / 1_000_000_000) as libc::time_t,
            tv_usec: ((ns % 1_000_000_000) / 1_000) as libc::suseconds_t,
        };
    }
    0
}

/// `time(2)`: the node's CLOCK_REALTIME in whole seconds.
///
/// # Safety
/// As the C function: `t` null or valid for writing one `time_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn time(t: *mut libc::time_t) -> libc::time_t {
    let Some(ns) = node_realtime_ns() else {
        return -1;
    };
    let secs = (ns / 1_000_000_000) as libc::time_t;
    if !t.is_null() {
        // SAFETY: caller contract.
        unsafe { *t = secs };
    }
    secs
}

/// `clock_nanosleep(2)`: an absolute deadline on a moved clock is a deadline in
/// the node's time; it is turned back into the kernel's time (the node's lead
/// now is subtracted) so a sleep lasts as long as the caller meant. Relative
/// sleeps pass through: the shim moves what a node reads, not how long real
/// waits take. Unlike glibc's, this is not a thread-cancellation point.
///
/// # Safety
/// As the C function: `req` valid for reading, `rem` null or valid for writing.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn clock_nanosleep(
    clock: libc::clockid_t,
    flags: libc::c_int,
    req: *const libc::timespec,
    rem: *mut libc::timespec,
) -> libc::c_int {
    let adjusted = if flags & libc::TIMER_ABSTIME != 0 {
        // SAFETY: caller contract: req is readable.
        unsafe { kernel_deadline(clock, req) }
    } else {
        None
    };
    let req = match &adjusted {
        Some(ts) => ts as *const libc::timespec,
        None => req,
    };
    // SAFETY: errno_ptr is valid; the kernel validates the other pointers.
    unsafe {
        let saved = *errno_ptr();
        let rc = libc::syscall(libc::SYS_clock_nanosleep, clock, flags, req, rem);
        // clock_nanosleep returns the error number and leaves errno alone.
        let err = if rc == 0 { 0 } else { *errno_ptr() };
        *errno_ptr() = saved;
        err
    }
}

/// The node's deadline `abs` on `clock` as a deadline in the kernel's time
/// (the node's current lead subtracted), or `None` when nothing is moved.
///
/// # Safety
/// `abs` must be null or valid for reading one timespec.
unsafe fn kernel_deadline(
    clock: libc::clockid_t,
    abs: *const libc::timespec,
) -> Option<libc::timespec> {
    if abs.is_null() {
        return None;
    }
    let class = ClockClass::of(clock)?;
    let f = fault()?;
    let now = control::raw_clock_ns(clock)?;
    let lead = node_ns(&f, class, clock, now).saturating_sub(now);
    // SAFETY: caller contract: abs is readable.
    let ts = unsafe { &*abs };
    // An invalid timespec is passed on untouched for glibc to refuse.
    if !(0..1_000_000_000).contains(&ts.tv_nsec) || ts.tv_sec < 0 {
        return None;
    }
    Some(control::ns_timespec(
        control::timespec_ns(ts).saturating_sub(lead),
    ))
}

/// Byte offset of `__wrefs` in glibc's `pthread_cond_t` (x86_64, glibc ≥ 2.25),
/// whose bit 1 says the condition variable waits on CLOCK_MONOTONIC.
const COND_WREFS_OFFSET: usize = 36;
const COND_CLOCK_MONOTONIC_MASK: u32 = 2;

/// The clock a glibc condition variable was initialised with.
///
/// # Safety
/// `cond` must point to an initialised glibc `pthread_cond_t`.
pub(crate) unsafe fn cond_clock(cond: *const libc::pthread_cond_t) -> libc::clockid_t {
    // SAFETY: __wrefs is an aligned u32 inside the condvar, which glibc
    // itself updates atomically.
    let wrefs = unsafe {
        (*cond
            .cast::<u8>()
            .add(COND_WREFS_OFFSET)
            .cast::<std::sync::atomic::AtomicU32>())
        .load(Ordering::Relaxed)
    };
    if wrefs & COND_CLOCK_MONOTONIC_MASK != 0 {
        libc::CLOCK_MONOTONIC
    } else {
        libc::CLOCK_REALTIME
    }
}

unsafe extern "C" {
    // glibc ≥ 2.30; a different symbol from the one replaced below, so calling
    // it cannot recurse.
    fn pthread_cond_clockwait(
        cond: *mut libc::pthread_cond_t,
        mutex: *mut libc::pthread_mutex_t,
        clock: libc::clockid_t,
        abstime: *const libc::timespec,
    ) -> libc::c_int;
}

/// `pthread_cond_timedwait(3)`: the deadline is in the node's time on the
/// condition variable's clock (CLOCK_REALTIME, or CLOCK_MONOTONIC when set
/// with `pthread_condattr_setclock`, as the JVM and python do); it is
/// turned into the kernel's time so the wait lasts as long as the caller
/// meant. Waits through glibc's `pthread_cond_clockwait` on the same clock,
/// which is what glibc's own `pthread_cond_timedwait` does.
///
/// # Safety
/// As the C function.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pthread_cond_timedwait(
    cond: *mut libc::pthread_cond_t,
    mutex: *mut libc::pthread_mutex_t,
    abstime: *const libc::timespec,
) -> libc::c_int {
    // SAFETY: caller contract: cond is an initialised condition variable.
    let clock = unsafe { cond_clock(cond) };
    // SAFETY: caller contract: abstime is readable.
    let adjusted = unsafe { kernel_deadline(clock, abstime) };
    let abs = match &adjusted {
        Some(ts) => ts as *const libc::timespec,
        None => abstime,
    };
    // SAFETY: forwarded caller contract.
    unsafe { pthread_cond_clockwait(cond, mutex, clock, abs) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Guards the glibc layout `cond_clock` relies on.
    #[test]
    fn condvar_clock_is_read_from_glibc_layout() {
        // SAFETY: plain pthread initialisation of local objects.
        unsafe {
            let mut attr: libc::pthread_condattr_t = std::mem::zeroed();
            assert_eq!(libc::pthread_condattr_init(&mut attr), 0);
            let mut realtime: libc::pthread_cond_t = std::mem::zeroed();
            assert_eq!(libc::pthread_cond_init(&mut realtime, &attr), 0);
            assert_eq!(cond_clock(&realtime), libc::CLOCK_REALTIME);
            assert_eq!(
                libc::pthread_condattr_setclock(&mut attr, libc::CLOCK_MONOTONIC),
                0
            );
            let mut mono: libc::pthread_cond_t = std::mem::zeroed();
            assert_eq!(libc::pthread_cond_init(&mut mono, &attr), 0);
            assert_eq!(cond_clock(&mono), libc::CLOCK_MONOTONIC);
            let statik = libc::PTHREAD_COND_INITIALIZER;
            assert_eq!(cond_clock(&statik), libc::CLOCK_REALTIME);
            libc::pthread_cond_destroy(&mut realtime);
            libc::pthread_cond_destroy(&mut mono);
            libc::pthread_condattr_destroy(&mut attr);
        }
    }
}
