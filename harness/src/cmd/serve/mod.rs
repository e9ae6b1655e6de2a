//! `leasehold serve`: a small web server over a store of runs.
//!
//! Pages: `/` is the index, every run newest first with its verdict, filtered
//! by `?test=` and `?verdict=`, and above it each test's trend, one coloured
//! cell per run, oldest to newest, so that a test that fails every third night
//! shows at a glance. `/runs/<test>/<stamp>/` lists a run's files and
//! `/runs/<test>/<stamp>/<path>` serves one, its report included, byte for
//! byte. Anything else is a 404 page.
//!
//! The design follows from what the server exposes: a folder of files. So:
//!
//! - It binds to loopback unless `--addr` asks for more, and then warns. Bound
//!   to loopback it also answers only requests for `localhost` or an IP
//!   address, so a web page cannot reach it through a DNS name rebound to
//!   127.0.0.1.
//! - A request path reaches a file only through [`safety`]: every segment is
//!   decoded once and refused if it could climb, hide or carry a second
//!   encoding, and the canonical result must lie inside the run's folder
//!   inside the canonical store, so a symlink pointing out is refused too.
//!   A URL reaches a test or run only if a real folder (not a link, not
//!   `latest`) of that name exists; the index lists only such folders. (A
//!   name holding `%` is listed but cannot be opened: that is the price of
//!   refusing double encoding.)
//! - The store is read on every request (a nightly adds runs while it serves);
//!   parsed results are cached by file time and size ([`store`]).
//! - Pages are rendered with maud, which escapes every value, and carry a
//!   Content-Security-Policy that loads nothing and runs no script; a served
//!   `report.html` keeps its own bytes and may run its inline script, nothing
//!   else. Every response says `nosniff`.
//! - SIGINT or SIGTERM stops it gracefully, giving open requests up to 5 s;
//!   a second signal stops it at once. Either way: exit 0.

mod pages;
mod safety;
mod store;

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use clap::Args;
use maud::Markup;
use tokio::io::AsyncReadExt as _;

use store::{Store, VerdictFilter};

/// The policy of the pages this server makes: nothing loads, nothing runs.
const PAGE_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:";
/// The policy of a served HTML file (a report): its own inline script may run.
const REPORT_CSP: &str =
    "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:";
/// How long open connections may take to finish once a signal came.
const DRAIN: Duration = Duration::from_secs(5);

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The store to serve, the folder `leasehold run --store` writes into
    /// (<store>/<test>/<timestamp>/). It is read afresh on every request.
    #[arg(long, default_value = "store")]
    store: PathBuf,
    /// The address to listen on. The default answers this machine only; any
    /// other (0.0.0.0:8080, a LAN address) makes every file of the store
    /// readable from the network, and a warning says so. Port 0 picks a free
    /// port, printed once listening.
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
}

/// What every handler shares.
struct App {
    store: Store,
    /// Shown on the index.
    store_text: String,
    /// Bound to loopback: refuse requests for other host names.
    loopback: bool,
}

pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let root = match std::fs::canonicalize(&args.store) {
        Ok(p) if p.is_dir() => p,
        Ok(_) => anyhow::bail!("the store {} is not a folder", args.store.display()),
        Err(e) => {
            return Err(e).with_context(|| {
                format!(
                    "the store {} does not exist or cannot be read",
                    args.store.display()
                )
            });
        }
    };
    if let Some(warning) = exposure_warning(args.addr) {
        eprintln!("{warning}");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(serve(root, args.addr))
}

/// The warning for an address that is not loopback, `None` for one that is.
fn exposure_warning(addr: SocketAddr) -> Option<String> {
    (!addr.ip().is_loopback()).then(|| {
        format!(
            "warning: {addr} is not a loopback address: every run in the store \
             is readable from the network"
        )
    })
}

async fn serve(root: PathBuf, addr: SocketAddr) -> anyhow::Result<ExitCode> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("listen on {addr}"))?;
    let bound = listener.local_addr()?;
    // Handlers before the line that says we are up: a signal right after it
    // must stop the server, not kill it.
    let mut stops = Stops::install().context("install the signal handlers")?;
    let app = Arc::new(App {
        store_text: root.display().to_string(),
        store: Store::new(root),
        loopback: addr.ip().is_loopback(),
    });
    let mut out = std::io::stdout();
    let _ =
        writeln!(out, "serving {} at http://{bound}/", app.store_text).and_then(|()| out.flush());

    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = axum::serve(listener, router(app)).with_graceful_shutdown(async {
        let _ = rx.await;
    });
    let mut server = tokio::spawn(server.into_future());
    tokio::select! {
        res = &mut server => {
            res.context("the server task")?.context("serve")?;
            anyhow::bail!("the server stopped by itself");
        }
        what = stops.next() => {
            eprintln!("{what}: stopping the server (a second signal stops at once)");
            let _ = tx.send(());
            tokio::select! {
                res = tokio::time::timeout(DRAIN, server) => match res {
                    Ok(res) => res.context("the server task")?.context("serve")?,
                    Err(_) => eprintln!(
                        "open connections did not finish within {} s; stopping anyway",
                        DRAIN.as_secs()
                    ),
                },
                what = stops.next() => eprintln!("{what}: stopping now"),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// SIGINT and SIGTERM, which stop the server. Not [`crate::shutdown::Shutdown`]:
/// a server has nothing to heal or resume, and stopping is exit 0, not a
/// run's 128 + n.
struct Stops {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
}

impl Stops {
    fn install() -> std::io::Result<Stops> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Stops {
            int: signal(SignalKind::interrupt())?,
            term: signal(SignalKind::terminate())?,
        })
    }

    /// The name of the next signal to arrive.
    async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.int.recv() => "interrupted",
            _ = self.term.recv() => "terminated (SIGTERM)",
        }
    }
}

fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/runs/{*rest}", get(run_path))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(app.clone(), check_host))
        // Outermost, so that it also marks the host check's refusals.
        .layer(middleware::map_response(common_headers))
        .with_state(app)
}

/// `nosniff` on every response, and the page policy on any that has none
/// (axum's own, e.g. 405).
async fn common_headers(mut res: Response) -> Response {
    let h = res.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(PAGE_CSP));
    res
}

/// Bound to loopback, answers only requests for `localhost` or an IP address.
async fn check_host(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    if app.loopback
        && let Some(host) = req.headers().get(header::HOST)
        && !host_ok(host.to_str().unwrap_or(""))
    {
        return page(
            StatusCode::FORBIDDEN,
            pages::error(
                StatusCode::FORBIDDEN,
                "This server listens on loopback and answers only requests for \
                 localhost or an IP address.",
            ),
        );
    }
    next.run(req).await
}

/// Whether a Host header names this machine by address or as `localhost`:
/// no DNS name that could have been rebound.
fn host_ok(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        // `[::1]:8080`
        Some(rest) => match rest.split_once(']') {
            Some((ip, port)) if port.is_empty() || port.starts_with(':') => {
                return ip.parse::<std::net::Ipv6Addr>().is_ok();
            }
            _ => return false,
        },
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.eq_ignore_ascii_case("localhost") || name.parse::<std::net::Ipv4Addr>().is_ok()
}

/// A generated page with its status.
fn page(status: StatusCode, markup: Markup) -> Response {
    // The page policy comes with the headers every response gets.
    let mut res = (status, markup.into_string()).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    res
}

fn error_page(status: StatusCode, message: &str) -> Response {
    page(status, pages::error(status, message))
}

async fn not_found() -> Response {
    error_page(
        StatusCode::NOT_FOUND,
        "Nothing here. Runs are at /runs/<test>/<timestamp>/, all of them on the index.",
    )
}

/// `/?test=NAME&verdict=valid|invalid|unknown|error`.
async fn index(
    State(app): State<Arc<App>>,
    query: Result<Query<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(pairs)) = query else {
        return error_page(StatusCode::BAD_REQUEST, "The query string is malformed.");
    };
    let (test, verdict) = match parse_filter(&pairs) {
        Ok(f) => f,
        Err(msg) => return error_page(StatusCode::BAD_REQUEST, &msg),
    };
    let app2 = app.clone();
    let runs = match tokio::task::spawn_blocking(move || app2.store.runs()).await {
        Ok(Ok(runs)) => runs,
        Ok(Err(e)) => {
            return error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("Cannot read the store: {e}"),
            );
        }
        Err(_) => {
            return error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Reading the store failed.",
            );
        }
    };
    let mut tests: Vec<&str> = runs.iter().map(|r| r.test.as_str()).collect();
    tests.sort_unstable();
    tests.dedup();
    let of_test = |r: &&store::Run| test.as_deref().is_none_or(|t| r.test == t);
    let rows = runs
        .iter()
        .filter(of_test)
        .filter(|r| verdict.is_none_or(|v| v.matches(r.summary.outcome)))
        .collect();
    let ix = pages::Index {
        store: &app.store_text,
        tests,
        trend_runs: runs.iter().filter(of_test).collect(),
        rows,
        total: runs.len(),
        test: test.as_deref(),
        verdict: verdict.map(VerdictFilter::word),
    };
    page(StatusCode::OK, pages::index(&ix))
}

/// The filter of a query: empty values (the form's "all") filter nothing;
/// an unknown parameter, a repeated one or an unknown verdict is an error
/// that says what is allowed.
fn parse_filter(
    pairs: &[(String, String)],
) -> Result<(Option<String>, Option<VerdictFilter>), String> {
    let (mut test, mut verdict) = (None, None);
    let mut seen = Vec::new();
    for (k, v) in pairs {
        if seen.contains(&k.as_str()) {
            return Err(format!("The query gives {k} more than once."));
        }
        match k.as_str() {
            "test" => seen.push("test"),
            "verdict" => seen.push("verdict"),
            _ => {
                return Err(format!(
                    "Unknown query parameter {k:?}: the index takes test=NAME and \
                     verdict=valid|invalid|unknown|error."
                ));
            }
        }
        if v.is_empty() {
            continue;
        }
        if k == "test" {
            test = Some(v.clone());
        } else {
            verdict = Some(VerdictFilter::parse(v).ok_or_else(|| {
                format!(
                    "Unknown verdict {v:?}: use one of valid, invalid, unknown, error \
                     (error: runs that failed or wrote no results)."
                )
            })?);
        }
    }
    Ok((test, verdict))
}

/// `/runs/<test>/<stamp>/[<path>]`: a run's listing, a folder's or a file.
async fn run_path(State(app): State<Arc<App>>, uri: Uri) -> Response {
    // The raw path, decoded here segment by segment: a `%2f` must not become
    // a separator before the segment is judged.
    let raw = uri.path().strip_prefix("/runs/").unwrap_or_default();
    let segments = match safety::split_segments(raw) {
        Ok(s) => s,
        Err(msg) => return error_page(StatusCode::BAD_REQUEST, &format!("Refused: {msg}.")),
    };
    match segments.as_slice() {
        [test] => {
            let to = format!("/?test={}", safety::encode(test));
            return Redirect::to(&to).into_response();
        }
        [_, _, ..] => {}
        [] => return not_found().await,
    }
    let app2 = app.clone();
    let found = tokio::task::spawn_blocking(move || locate(&app2.store, &segments)).await;
    match found {
        Ok(Some(Found::Listing(markup))) => page(StatusCode::OK, markup),
        Ok(Some(Found::File(path))) => file(&path).await,
        Ok(None) => not_found().await,
        Err(_) => error_page(StatusCode::INTERNAL_SERVER_ERROR, "Reading the run failed."),
    }
}

/// What a run path names.
enum Found {
    Listing(Markup),
    File(PathBuf),
}

/// The listing or file `segments` (test, stamp, path…) name, if they name
/// one inside a run folder of the store.
fn locate(store: &Store, segments: &[String]) -> Option<Found> {
    let (test, stamp, rest) = match segments {
        [test, stamp, rest @ ..] => (test, stamp, rest),
        _ => return None,
    };
    let (dir, run) = store.run(test, stamp)?;
    // Run folders are real folders of the canonical store: `dir` is canonical.
    let real = safety::resolve_inside(&dir, rest)?;
    if !real.starts_with(store.root()) {
        return None;
    }
    let meta = std::fs::metadata(&real).ok()?;
    if meta.is_dir() {
        let (files, cut) = store::list_files(&real, rest).ok()?;
        Some(Found::Listing(pages::listing(&run, rest, &files, cut)))
    } else if meta.is_file() {
        Some(Found::File(real))
    } else {
        None
    }
}

/// The content type of a run's file, by its extension.
fn content_type(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("html" | "htm") => "text/html; charset=utf-8",
        Some("json") => "application/json",
        Some("xml") => "application/xml",
        Some("png") => "image/png",
        Some("svg") => "image/svg+xml",
        Some("jsonl" | "yaml" | "yml" | "log" | "txt" | "edn" | "csv" | "md") => {
            "text/plain; charset=utf-8"
        }
        // A node's data files (a WAL, a snapshot): downloaded, not shown.
        _ => "application/octet-stream",
    }
}

/// A run's file, streamed as it is, with its type and length.
async fn file(path: &Path) -> Response {
    let opened = async {
        let f = tokio::fs::File::open(path).await?;
        let len = f.metadata().await?.len();
        Ok::<_, std::io::Error>((f, len))
    };
    let Ok((f, len)) = opened.await else {
        return not_found().await;
    };
    let ctype = content_type(path);
    // A log still being written grows: send the length it had, no more.
    let reader = f.take(len);
    let stream = futures_util::stream::try_unfold(reader, |mut r| async move {
        let mut buf = vec![0u8; 64 * 1024];
        let n = r.read(&mut buf).await?;
        if n == 0 {
            return Ok::<_, std::io::Error>(None);
        }
        buf.truncate(n);
        Ok(Some((Bytes::from(buf), r)))
    });
    let csp = if ctype.starts_with("text/html") {
        REPORT_CSP
    } else {
        PAGE_CSP
    };
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(csp),
    );
    (StatusCode::OK, headers, Body::from_stream(stream)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_is_quiet() {
        assert!(exposure_warning("127.0.0.1:8080".parse().unwrap()).is_none());
        assert!(exposure_warning("[::1]:0".parse().unwrap()).is_none());
        let w = exposure_warning("0.0.0.0:8080".parse().unwrap()).unwrap();
        assert!(w.contains("0.0.0.0:8080") && w.contains("network"), "{w}");
        assert!(exposure_warning("192.168.1.5:80".parse().unwrap()).is_some());
    }

    #[test]
    fn host_names_that_could_be_rebound_are_refused() {
        for ok in [
            "127.0.0.1:8080",
            "localhost:1",
            "LOCALHOST",
            "[::1]:8080",
            "[::1]",
            "10.0.0.1",
        ] {
            assert!(host_ok(ok), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:8080",
            "127.0.0.1.nip.io",
            "[::1]x",
            "[zz]:1",
            "",
        ] {
            assert!(!host_ok(bad), "{bad}");
        }
    }

    #[test]
    fn filters_parse_and_explain_themselves() {
        let q = |pairs: &[(&str, &str)]| {
            let owned: Vec<(String, String)> = pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
            parse_filter(&owned)
        };
        assert_eq!(q(&[]).unwrap(), (None, None));
        assert_eq!(q(&[("test", ""), ("verdict", "")]).unwrap(), (None, None));
        let (t, v) = q(&[("test", "gc-pause"), ("verdict", "invalid")]).unwrap();
        assert_eq!(t.as_deref(), Some("gc-pause"));
        assert_eq!(v, Some(VerdictFilter::Invalid));
        let e = q(&[("verdict", "bogus")]).unwrap_err();
        assert!(
            e.contains("\"bogus\"") && e.contains("valid, invalid, unknown, error"),
            "{e}"
        );
        assert!(q(&[("tset", "x")]).unwrap_err().contains("\"tset\""));
        assert!(q(&[("test", "a"), ("test", "b")]).is_err());
    }

    #[test]
    fn content_types() {
        let ct = |p: &str| content_type(Path::new(p));
        assert_eq!(ct("report.html"), "text/html; charset=utf-8");
        assert_eq!(ct("results.json"), "application/json");
        assert_eq!(ct("history.jsonl"), "text/plain; charset=utf-8");
        assert_eq!(ct("config.yaml"), "text/plain; charset=utf-8");
        assert_eq!(ct("nodes/w1.log"), "text/plain; charset=utf-8");
        assert_eq!(ct("junit.xml"), "application/xml");
        assert_eq!(ct("plot.PNG"), "image/png");
        assert_eq!(ct("plot.svg"), "image/svg+xml");
        assert_eq!(ct("nodes/etcd1/wal/0.wal"), "application/octet-stream");
    }
}
