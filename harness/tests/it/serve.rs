//! `leasehold serve` over loopback, end to end: a store of two real runs (one
//! invalid, one valid), the index newest first, filtered indexes, a run's
//! listing and its files byte for byte, and every way out of the store
//! refused. Requests go out over a raw `TcpStream`, so an encoded path
//! reaches the server exactly as written.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::*;

const PAGE_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:";
const REPORT_CSP: &str =
    "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:";

/// A `leasehold serve` child, killed when dropped (a failed assertion must
/// not leave a server behind).
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    fn start(store: &Path) -> Server {
        let mut child = leasehold()
            .args(["serve", "--addr", "127.0.0.1:0", "--store"])
            .arg(store)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout);
            let mut first = String::new();
            let _ = lines.read_line(&mut first);
            let _ = tx.send(first);
            // Keep reading, so the server never writes into a closed pipe.
            let _ = std::io::copy(&mut lines, &mut std::io::sink());
        });
        let mut server = Server {
            child,
            addr: "127.0.0.1:1".parse().unwrap(),
        };
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("serve prints its address");
        let canonical = std::fs::canonicalize(store).unwrap();
        let prefix = format!("serving {} at http://", canonical.display());
        let addr = line
            .trim_end()
            .strip_prefix(&prefix)
            .and_then(|a| a.strip_suffix('/'))
            .unwrap_or_else(|| panic!("the first line names store and address: {line:?}"));
        server.addr = addr.parse().unwrap();
        assert_ne!(server.addr.port(), 0, "the real port is printed");
        server
    }

    fn get(&self, target: &str) -> Response {
        let host = self.addr.to_string();
        self.raw(&format!(
            "GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        ))
    }

    fn raw(&self, request: &str) -> Response {
        let mut s = TcpStream::connect(self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        s.write_all(request.as_bytes()).unwrap();
        let mut bytes = Vec::new();
        let _ = s.read_to_end(&mut bytes);
        Response::parse(&bytes, request)
    }

    /// Sends `signal` and waits for the exit code.
    fn stop(mut self, signal: nix::sys::signal::Signal) -> Option<i32> {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, signal).unwrap();
        let mut waited = Duration::ZERO;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(
                waited < Duration::from_secs(10),
                "serve did not stop on {signal}"
            );
            std::thread::sleep(Duration::from_millis(20));
            waited += Duration::from_millis(20);
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn parse(bytes: &[u8], request: &str) -> Response {
        let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") else {
            panic!(
                "no HTTP response to {request:?}: {:?}",
                String::from_utf8_lossy(bytes)
            );
        };
        let head = String::from_utf8_lossy(&bytes[..end]).into_owned();
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("a status line: {head}"));
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let mut r = Response {
            status,
            headers,
            body: bytes[end + 4..].to_vec(),
        };
        if r.header("transfer-encoding") == Some("chunked") {
            r.body = dechunk(&r.body);
        }
        r
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The rows of the index's table of runs (empty without one).
    fn run_rows(&self) -> Vec<String> {
        let text = self.text();
        let Some(start) = text.find("<table id=\"runs\">") else {
            return Vec::new();
        };
        let table = &text[start..];
        let table = &table[..table.find("</table>").unwrap()];
        table
            .split("<tr>")
            .skip(2) // before the header row, the header row
            .map(str::to_owned)
            .collect()
    }

    /// A page of ours: HTML with our policy and `nosniff`.
    fn assert_page(&self, what: &str) {
        assert_eq!(
            self.header("content-type"),
            Some("text/html; charset=utf-8"),
            "{what}"
        );
        assert_eq!(
            self.header("content-security-policy"),
            Some(PAGE_CSP),
            "{what}"
        );
        assert_eq!(
            self.header("x-content-type-options"),
            Some("nosniff"),
            "{what}"
        );
    }
}

fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = body.windows(2).position(|w| w == b"\r\n").unwrap();
        let size = std::str::from_utf8(&body[..line_end]).unwrap();
        let size = usize::from_str_radix(size.split(';').next().unwrap().trim(), 16).unwrap();
        body = &body[line_end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&body[..size]);
        body = &body[size + 2..];
    }
}

/// `/runs/<test>/<stamp>/`.
fn href(run: &Path) -> String {
    let stamp = run.file_name().unwrap().to_str().unwrap();
    let test = run.parent().unwrap().file_name().unwrap().to_str().unwrap();
    format!("/runs/{test}/{stamp}/")
}

#[test]
fn serves_a_store_of_real_runs_and_nothing_outside_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    // The unfenced run first, so the valid one is the newest.
    let (out, invalid) = run_example_in(&store, "gc-pause.yaml", 1, &["--duration", "6s"]);
    assert_eq!(out.status.code(), Some(1), "unfenced: invalid: {out:?}");
    let (out, valid) = run_example_in(&store, "gc-pause-fenced.yaml", 1, &["--duration", "6s"]);
    assert_eq!(out.status.code(), Some(0), "fenced: valid: {out:?}");
    let (invalid_href, valid_href) = (href(&invalid), href(&valid));

    let server = Server::start(&store);

    // The index: both runs, newest first, each with its verdict.
    let index = server.get("/");
    assert_eq!(index.status, 200);
    index.assert_page("index");
    let rows = index.run_rows();
    assert_eq!(rows.len(), 2, "{}", index.text());
    assert!(rows[0].contains(&valid_href), "newest first: {}", rows[0]);
    assert!(rows[0].contains("badge valid\">valid<"), "{}", rows[0]);
    assert!(rows[1].contains(&invalid_href), "{}", rows[1]);
    assert!(rows[1].contains("badge invalid\">invalid<"), "{}", rows[1]);
    for row in &rows {
        for cell in [
            ">gc-pause",
            ">reference 0.1.0<",
            ">1<",
            "pause ×1",
            "report.html\"",
        ] {
            assert!(row.contains(cell), "{cell} in {row}");
        }
    }
    // The trend: one cell per run, linking to it.
    let text = index.text();
    assert!(
        text.contains(&format!("class=\"cell invalid\" href=\"{invalid_href}\"")),
        "{text}"
    );
    assert!(text.contains(&format!("class=\"cell valid\" href=\"{valid_href}\"")));

    // Filters.
    let only = |target: &str| -> Vec<String> {
        let r = server.get(target);
        assert_eq!(r.status, 200, "{target}: {}", r.text());
        r.run_rows()
    };
    let invalid_only = only("/?verdict=invalid");
    assert_eq!(invalid_only.len(), 1);
    assert!(invalid_only[0].contains(&invalid_href));
    let valid_only = only("/?verdict=valid&test=");
    assert_eq!(valid_only.len(), 1);
    assert!(valid_only[0].contains(&valid_href));
    assert!(only("/?verdict=error").is_empty());
    assert!(only("/?test=gc-pause-fenced&verdict=invalid").is_empty());
    let of_test = server.get("/?test=gc-pause");
    assert_eq!(of_test.run_rows().len(), 1);
    assert!(of_test.run_rows()[0].contains(&invalid_href));
    assert!(
        !of_test.text().contains("/runs/gc-pause-fenced/"),
        "the trend is filtered by test too"
    );
    for (bad, says) in [
        ("/?verdict=bogus", "Unknown verdict &quot;bogus&quot;"),
        ("/?verdict=VALID", "valid, invalid, unknown, error"),
        (
            "/?tset=gc-pause",
            "Unknown query parameter &quot;tset&quot;",
        ),
    ] {
        let r = server.get(bad);
        assert_eq!(r.status, 400, "{bad}");
        r.assert_page(bad);
        assert!(r.text().contains(says), "{bad}: {}", r.text());
    }

    // The report: the file's own bytes, as HTML, with its own policy.
    let report = server.get(&format!("{invalid_href}report.html"));
    assert_eq!(report.status, 200);
    assert_eq!(
        report.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(report.header("content-security-policy"), Some(REPORT_CSP));
    assert_eq!(report.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(
        report.body,
        std::fs::read(invalid.join("report.html")).unwrap()
    );

    // The listing links every file of the run, and each link serves it.
    let listing = server.get(&invalid_href);
    assert_eq!(listing.status, 200);
    listing.assert_page("listing");
    let text = listing.text();
    let links: Vec<&str> = text
        .split("href=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .filter(|l| l.starts_with(&invalid_href) && *l != invalid_href)
        .collect();
    for f in [
        "report.html",
        "results.json",
        "history.jsonl",
        "config.yaml",
        "junit.xml",
        "nodes/w1.log",
    ] {
        assert!(
            links.contains(&format!("{invalid_href}{f}").as_str()),
            "{f} linked: {links:?}"
        );
    }
    for link in &links {
        let r = server.get(link);
        assert_eq!(r.status, 200, "{link}");
        let rel = &link[invalid_href.len()..];
        assert_eq!(r.body, std::fs::read(invalid.join(rel)).unwrap(), "{link}");
        let want = match rel.rsplit('.').next() {
            Some("html") => "text/html; charset=utf-8",
            Some("json") => "application/json",
            Some("xml") => "application/xml",
            _ => "text/plain; charset=utf-8",
        };
        assert_eq!(r.header("content-type"), Some(want), "{link}");
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    }

    // A run that died before writing results still shows, oldest.
    let died = store.join("gc-pause/20000101T000000.000Z");
    std::fs::create_dir_all(died.join("nodes")).unwrap();
    std::fs::write(died.join("nodes/w1.log"), "starting\n").unwrap();
    let rows = server.get("/").run_rows();
    assert_eq!(rows.len(), 3, "read again on every request");
    assert!(rows[2].contains("/runs/gc-pause/20000101T000000.000Z/"));
    assert!(rows[2].contains(">no results<"), "{}", rows[2]);
    let failed = only("/?verdict=error");
    assert_eq!(failed.len(), 1);
    assert!(failed[0].contains("20000101T000000.000Z"));
    let r = server.get("/runs/gc-pause/20000101T000000.000Z/nodes/w1.log");
    assert_eq!((r.status, r.text().as_str()), (200, "starting\n"));

    // Ways out of the store. Links inside it that point out: a run's file,
    // a run's folder, a run folder, a test folder.
    let outside = dir.path().join("outside");
    let stamp = "20990101T000000.000Z";
    std::fs::create_dir_all(outside.join(stamp)).unwrap();
    let secret = "root:x:0:0:root:/root:/bin/sh\n";
    std::fs::write(outside.join("passwd"), secret).unwrap();
    std::fs::write(outside.join(stamp).join("passwd"), secret).unwrap();
    let link = |target: &Path, at: &Path| std::os::unix::fs::symlink(target, at).unwrap();
    link(&outside.join("passwd"), &invalid.join("passwd"));
    link(Path::new("/etc"), &invalid.join("etc"));
    link(&outside.join(stamp), &store.join("gc-pause").join(stamp));
    link(&outside, &store.join("evil"));
    // The same requests without the links' escape do reach a file, so a
    // refusal below is the check, not a typo.
    assert_eq!(
        server.get(&format!("{invalid_href}config.yaml")).status,
        200
    );

    let mut attempts: Vec<String> = [
        "/../../etc/passwd",
        "/runs/../../etc/passwd",
        "/runs/..%2f..%2f..%2fetc%2fpasswd",
        "/runs/..%2F..%2F..%2Fetc%2Fpasswd",
        "/runs/%2e%2e/%2e%2e/etc/passwd",
        "/runs/%2E%2E/%2E%2E/%2E%2E/etc/passwd",
        "/runs/%252e%252e/x",
        "/runs/%252e%252e/%252e%252e/%252e%252e/etc/passwd",
        "/runs/..%5c..%5c..%5cetc%5cpasswd",
        "/runs/..%5C..%5C..%5Cetc%5Cpasswd",
        "/runs/..\\..\\..\\etc\\passwd",
        "/runs/%00/passwd",
        "/runs/evil/20990101T000000.000Z/passwd",
        "/runs/gc-pause/20990101T000000.000Z/passwd",
        "/runs/gc-pause/latest/passwd",
        "/%2e%2e/%2e%2e/etc/passwd",
        "//etc/passwd",
    ]
    .map(str::to_owned)
    .to_vec();
    for rest in [
        "passwd",
        "etc/passwd",
        "../../../../etc/passwd",
        "%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "nodes/..%2f..%2f..%2f..%2f..%2fetc%2fpasswd",
        "nodes/%252e%252e/%252e%252e/results.json",
        "..\\..\\..\\..\\etc\\passwd",
        "nodes%5c..%5c..%5c..%5c..%5cetc%5cpasswd",
        ".%2e/.%2e/.%2e/.%2e/etc/passwd",
        "nodes//w1.log",
    ] {
        attempts.push(format!("{invalid_href}{rest}"));
    }
    for target in &attempts {
        let r = server.get(target);
        assert!(
            r.status == 400 || r.status == 404,
            "{target}: refused, not {}",
            r.status
        );
        assert!(!r.text().contains("root:"), "{target} leaked: {}", r.text());
    }
    // The links are not listed either.
    let listing = server.get(&invalid_href).text();
    assert!(
        !listing.contains("passwd") && !listing.contains("etc/"),
        "{listing}"
    );
    let index = server.get("/").text();
    assert!(!index.contains("evil") && !index.contains(stamp), "{index}");

    // Anything else is a 404 page of ours.
    let r = server.get("/nope");
    assert_eq!(r.status, 404);
    r.assert_page("404");
    // A name that could have been rebound to 127.0.0.1 is not answered.
    let r = server.raw("GET / HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n");
    assert_eq!(r.status, 403);
    assert!(!r.text().contains("gc-pause"));
    let r = server.raw("GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    assert_eq!(r.status, 200);

    assert_eq!(server.stop(nix::sys::signal::Signal::SIGTERM), Some(0));
}

#[test]
fn an_empty_store_is_served_and_signals_stop_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path());
    let r = server.get("/");
    assert_eq!(r.status, 200);
    assert!(r.text().contains("No runs yet."), "{}", r.text());
    assert!(r.run_rows().is_empty());
    // A run that appears later is shown at once.
    let run = dir.path().join("late/20260101T000000.000Z");
    std::fs::create_dir_all(&run).unwrap();
    std::fs::write(
        run.join("results.json"),
        r#"{"test":"late","verdict":"unknown","seed":42,"error":"setup failed: <b>no</b>"}"#,
    )
    .unwrap();
    let r = server.get("/?test=late");
    let rows = r.run_rows();
    assert_eq!(rows.len(), 1, "{}", r.text());
    assert!(
        rows[0].contains(">error<") && rows[0].contains(">42<"),
        "{}",
        rows[0]
    );
    assert!(
        rows[0].contains("setup failed: &lt;b&gt;no&lt;/b&gt;"),
        "escaped: {}",
        rows[0]
    );
    // A client that never finishes its request holds the graceful stop (up to
    // a few seconds); a second signal ends it at once, still exit 0.
    let mut slow = TcpStream::connect(server.addr).unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1")
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let pid = nix::unistd::Pid::from_raw(server.child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "the first signal waits for the open request"
    );
    let started = std::time::Instant::now();
    assert_eq!(server.stop(nix::sys::signal::Signal::SIGINT), Some(0));
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    drop(slow);
}

#[test]
fn a_missing_store_exits_3_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-store");
    let out = leasehold()
        .args(["serve", "--addr", "127.0.0.1:0", "--store"])
        .arg(&missing)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&missing.display().to_string()) && stderr.contains("does not exist"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}
