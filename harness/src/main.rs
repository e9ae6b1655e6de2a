//! The `leasehold` binary: runs the command line (see [`leasehold::cli`]) and
//! turns an error into a message on stderr and exit code 3
//! ([`leasehold::EXIT_RUN_FAILED`]).

use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    match leasehold::cli::run() {
        Ok(code) => code,
        Err(err) => {
            // A closed stderr must not turn an error into a panic.
            let mut stderr = std::io::stderr();
            let _ = writeln!(stderr, "error: {err}");
            for cause in err.chain().skip(1) {
                let _ = writeln!(stderr, "  caused by: {cause}");
            }
            ExitCode::from(leasehold::EXIT_RUN_FAILED)
        }
    }
}
