//! The exit-code contract: 2 means unknown and only that. Every command-line
//! error (an unknown flag, a bad value, a missing argument) of every
//! subcommand exits 3, with clap's message on stderr; help and version exit 0.

use clap::CommandFactory;

use crate::*;

/// For each subcommand: a bad value of one of its options and, where it has
/// a required argument, the command line without it. An unknown flag is
/// tried on every subcommand.
/// (subcommand, a bad value, the command line without its required argument).
type Case = (
    &'static str,
    &'static [&'static str],
    Option<&'static [&'static str]>,
);

const CASES: &[Case] = &[
    ("run", &["run", "--duration", "soon"], None),
    (
        "check",
        &["check", "--model", "nope", "x.jsonl"],
        Some(&["check"]),
    ),
    ("cleanup", &["cleanup", "extra-argument"], None),
    ("findings", &["findings", "--seed", "minus-one"], None),
    (
        "test-all",
        &["test-all", "--count", "0", "x.yaml"],
        Some(&["test-all"]),
    ),
    (
        "shrink",
        &["shrink", "--budget", "forever", "store/latest"],
        Some(&["shrink"]),
    ),
    ("serve", &["serve", "--addr", "not-an-address:port:"], None),
    (
        "images",
        &["images", "build", "--binary"],
        Some(&["images"]),
    ),
    (
        "bench",
        &["bench", "cluster", "--pauses", "many"],
        Some(&["bench"]),
    ),
];

fn code_of(args: &[&str]) -> (i32, String, String) {
    let out = leasehold().args(args).output().unwrap();
    (
        out.status.code().expect("exited, not killed"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn assert_usage_error(args: &[&str]) {
    let (code, stdout, stderr) = code_of(args);
    assert_eq!(
        code,
        3,
        "leasehold {}: exit {code}\n{stderr}",
        args.join(" ")
    );
    // An error, or for a missing subcommand the help, with the usage line.
    assert!(
        stderr.starts_with("error: ") || stderr.contains("Usage: leasehold"),
        "{args:?}: {stderr}"
    );
    assert!(stdout.is_empty(), "{args:?} printed on stdout: {stdout}");
}

#[test]
fn every_command_line_error_of_every_subcommand_exits_3() {
    // The table covers every visible subcommand: a new one fails here until
    // it is added.
    let cli = leasehold::cli::Cli::command();
    let subcommands: Vec<String> = cli
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .map(|s| s.get_name().to_owned())
        .collect();
    let covered: Vec<String> = CASES.iter().map(|(n, _, _)| n.to_string()).collect();
    assert_eq!(subcommands, covered);

    for (name, bad_value, missing) in CASES {
        assert_usage_error(&[name, "--no-such-flag"]);
        assert_usage_error(bad_value);
        if let Some(missing) = missing {
            assert_usage_error(missing);
        }
        let (code, stdout, _) = code_of(&[name, "--help"]);
        assert_eq!(code, 0, "{name} --help");
        assert!(
            stdout.contains("Usage: leasehold"),
            "{name} --help: {stdout}"
        );
    }
    // The top level: nothing, an unknown subcommand, a bad global flag.
    assert_usage_error(&[]);
    assert_usage_error(&["no-such-command"]);
    assert_usage_error(&["--no-such-flag", "run"]);
    let (code, stdout, _) = code_of(&["--version"]);
    assert_eq!(
        (code, stdout.starts_with("leasehold ")),
        (0, true),
        "{stdout}"
    );
}
