//! Clock faults for one node: an `LD_PRELOAD` library that moves the clocks
//! a node's processes read, and nobody else's.
//!
//! # Mechanism
//!
//! Built as `libleasehold_clock_shim.so` (the cdylib `leasehold-clock-shim`;
//! this crate is what the harness links). A node is started with
//! `LD_PRELOAD=…/libleasehold_clock_shim.so` and
//! `LEASEHOLD_CLOCK_CONTROL=<control file>`. The library exports
//! `clock_gettime`, `gettimeofday`, `time`, `clock_nanosleep` and
//! `pthread_cond_timedwait`; the dynamic
//! linker binds the program's and its libraries' calls to these instead of
//! glibc's. Each one asks the kernel by the raw system call, then applies the
//! fault read from the control file: an offset per clock class (realtime,
//! monotonic) and a rate. The harness changes the file at run time through
//! [`ControlFile`]; the node sees the change on its next clock read, without a
//! restart. The harness's own clock and event stamps never move: it does not
//! preload the library, and the exports pass the real time through in any
//! process whose environment names no control file.
//!
//! The first three are what glibc programs import for the time on x86_64
//! (`nm -D --undefined-only` on Debian 12's redis-server, python3, date:
//! `clock_gettime@GLIBC_2.17`, `gettimeofday`, `time`; the JVM's libjvm the
//! same). glibc's internal callers use a hidden alias that cannot be
//! interposed, and there is no `clock_gettime64`/`__clock_gettime` to cover on
//! x86_64 (the latter is `GLIBC_PRIVATE`). The two waits are there because a
//! deadline computed from a moved clock must be moved back before the kernel
//! sees it (below).
//!
//! The shim is a cdylib only: a program that linked those definitions would
//! have them win over glibc's inside it. The harness links this crate, which
//! defines no clock function, and never puts the control variable in its own
//! environment, only in a node's. The system-call numbers and the `time_t`
//! width assume Linux on x86_64.
//!
//! Which clocks move: [`ClockClass::Realtime`] (CLOCK_REALTIME, _COARSE,
//! _ALARM, TAI) by the realtime offset, [`ClockClass::Monotonic`]
//! (CLOCK_MONOTONIC, _RAW, _COARSE, BOOTTIME, _ALARM) by the monotonic offset,
//! and both by the rate. A real wall-clock step (NTP, `date -s`) never moves
//! CLOCK_MONOTONIC, so a plain `jump` should set the realtime offset only; a
//! skewed oscillator moves both, which the shared rate models. Servers
//! differ in which they use. Debian's redis 7.0 answers `TIME` and expires
//! keys (so lock leases) by the realtime clock: under the shim a key with
//! 20 s to live survives a +30 s monotonic jump and is gone after a +30 s
//! realtime one (tests/redis.rs). The JVM's `System.currentTimeMillis` is
//! realtime, `System.nanoTime` and its timed waits are monotonic.
//!
//! Absolute waits: `clock_nanosleep(TIMER_ABSTIME)` and
//! `pthread_cond_timedwait` (on the condition variable's own clock, read from
//! glibc's `pthread_cond_t`; the JVM's sleeps and parks and python's GIL wait
//! this way on CLOCK_MONOTONIC) get their deadline, which is in the node's time,
//! turned back into the kernel's time, so a wait lasts as long as the caller
//! meant. Relative sleeps and timeouts (nanosleep, epoll, poll) are real: the
//! shim moves what a node reads, not how long waiting takes. Deadlines passed
//! to `sem_timedwait`/`sem_clockwait` (python's lock timeouts),
//! `pthread_cond_clockwait`, `pthread_mutex_timedlock` and timerfd are not
//! translated: under a monotonic offset or a rate those waits are off by the
//! node's current lead (positive lead: late; negative: early). The shim's
//! `clock_nanosleep` is a raw system call, so unlike glibc's it is not a
//! thread-cancellation point.
//!
//! # Why not libfaketime
//!
//! libfaketime 0.9.10 (Debian 12) cannot start Debian's redis-server at all:
//! redis is linked with jemalloc, which reads the clock while libfaketime is
//! still initialising ("Cannot recover from unexpected recursive calls to
//! clock_gettime()"). This library has no initialisation step: the first clock
//! read maps the control file with `getenv` + `open` + `mmap` and nothing
//! else, so it is safe at any point of a process's start, from any thread, in
//! a signal handler or a fork child.
//!
//! # Why raw system calls
//!
//! The library *is* `clock_gettime` in the node, so it cannot call it; looking
//! up glibc's with `dlsym(RTLD_NEXT)` may allocate (the very recursion that
//! breaks libfaketime). `syscall(SYS_clock_gettime)` costs a kernel entry
//! (some hundred nanoseconds instead of the vDSO's tens), which lock servers
//! do not notice.
//!
//! # The control file
//!
//! A 64-byte `#[repr(C)]` record behind a seqlock; see [`control`] for the
//! layout. The shim maps it read-only and shared, once per process (threads
//! racing to map it keep one mapping and unmap the others). No file, a short
//! file or a bad magic: the real time passes through (a missing file is
//! looked for again at most once a second). The file must never shrink below
//! the record while mapped (that would fault the node with SIGBUS).
//!
//! # What cannot be reached
//!
//! Static programs, Go programs (etcd: the Go runtime reads the vDSO
//! directly) and set-id programs: see [`reachable`], which says why, so the
//! harness can refuse clock faults on such nodes. Reaching those would take
//! patching the vDSO of the running process through ptrace, as Chaos Mesh's
//! TimeChaos does; that is not built here.

pub mod control;
pub mod reach;

pub use control::{ClockClass, ControlFile, ENV_VAR, Fault, InvalidRate};
pub use reach::{Unreachable, reachable};

/// File name of the preload library the `leasehold-clock-shim` crate builds.
pub const LIBRARY_FILE_NAME: &str = "libleasehold_clock_shim.so";
