//! One file per subcommand.

pub mod cleanup;
pub mod images;
pub mod node;
pub mod run;
