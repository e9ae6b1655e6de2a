//! One file per subcommand.

pub mod bench;
pub mod cleanup;
pub mod images;
pub mod node;
pub mod run;
