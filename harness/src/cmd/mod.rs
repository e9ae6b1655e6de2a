//! One file per subcommand.

pub mod cleanup;
pub mod node;
pub mod run;
