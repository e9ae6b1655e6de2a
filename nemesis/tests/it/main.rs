//! Integration tests of the partition mechanism with real packets between
//! network namespaces made for the purpose (see [`lab`]). They need root; without
//! it they skip, unless `CI=true`, where skipping would hide a broken setup.

mod faults;
mod lab;
mod latency;
