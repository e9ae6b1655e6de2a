//! One file per subcommand.

pub mod bench;
pub mod check;
pub mod cleanup;
pub mod findings;
pub mod images;
pub mod node;
pub mod run;
pub mod serve;
pub mod shrink;
pub mod test_all;
