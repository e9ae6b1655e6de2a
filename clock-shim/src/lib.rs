//! The preload library that moves one node's clocks:
//! `libleasehold_clock_shim.so`. Started with
//! `LD_PRELOAD=…/libleasehold_clock_shim.so` and
//! `LEASEHOLD_CLOCK_CONTROL=<control file>`, a node's calls to
//! `clock_gettime`, `gettimeofday`, `time`, `clock_nanosleep` and
//! `pthread_cond_timedwait` land here. The mechanism, the control file and
//! what cannot be reached are documented in the `leasehold-clock` crate, which
//! the harness links to drive the file. Only this crate's own tests link this
//! one (where the definitions pass the real time through: no control file is
//! named in their environment).

mod shim;
