//! `exec`: a lock implementation the user brings, driven over JSON lines.
//!
//! The process plumbing ([`AdapterProcess`]) is shared with the storage the
//! user brings ([`crate::storage::exec`]): the same lines, ids, restarts and
//! logs, with other ops.
//!
//! The worker starts the user's adapter command once and keeps it for the run.
//! It writes one request per line on the adapter's stdin and reads one reply per
//! line from its stdout (docs/protocol.md, "exec: bring your own lock"):
//!
//! ```text
//! {"id":1,"op":"init","node":"w1","lock_nodes":["10.77.0.11:7300"],"timeout_ms":500}
//! {"id":1,"type":"ok"}
//! {"id":2,"op":"acquire","lock":"L","client":"w1","ttl_ms":1000}
//! {"id":2,"type":"ok","token":34,"lease_ms":1000}
//! ```
//!
//! Ids increase over the whole life of the client, across adapter restarts.
//! `ok` is done, `fail` certainly not done, `info` unknown. Anything else is a
//! protocol error: a line that is not one JSON object, a reply whose `id` is not
//! the request's, an unknown `type`, an `ok` without the fields its op needs, a
//! reply that does not come within the op's timeout, or an adapter that exits
//! or closes its stdout. The op in flight then ends `info` with the reason, the
//! adapter is killed at once, and a new one is started and initialised before
//! the next op. An op that could not be sent at all (the adapter cannot be
//! started or refuses `init`) ends `fail`: the request never left the worker.
//!
//! What the fencing token and the lease mean, and what pauses and partitions do
//! to them, is the adapter's business; the worker records what it answers. The
//! adapter's stderr goes, line by line, to an [`AdapterLog`] (the worker's node
//! log), and so does every restart with its reason.
//!
//! The adapter is part of its worker's node: it is started without a process
//! group of its own, so it stays in the worker's group and a pause of the
//! worker (SIGSTOP to the group) stops it too. It is killed (SIGKILL) when the
//! client is dropped or the adapter is restarted.

use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Map, Value, json};
use tokio::net::unix::pipe;

use crate::completion::Completion;
use crate::lock_client::{Grant, LockClient};

/// The longest reply line accepted; a longer one is a protocol error.
const MAX_LINE: usize = 1 << 20;

/// How to start an `exec` adapter and talk to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecConfig {
    /// The adapter's program and arguments (`[python3, my_lock_client.py]`).
    pub command: Vec<String>,
    /// The worker's node name, sent in `init` and as `client` of `acquire`.
    pub node: String,
    /// `host:port` of every lock node, sent in `init`.
    pub lock_nodes: Vec<String>,
    /// How long the worker waits for the reply to one op (from writing the
    /// request to reading the reply). Also sent in `init` as `timeout_ms`, so an
    /// adapter can give up on its lock service first and answer `info` itself.
    pub timeout: Duration,
    /// How long starting the adapter and its reply to `init` may take.
    pub init_timeout: Duration,
    /// The adapter's working directory; None for the worker's.
    pub cwd: Option<PathBuf>,
}

impl ExecConfig {
    /// A config with the default `init_timeout` (10 s) and the worker's working
    /// directory.
    pub fn new(
        command: Vec<String>,
        node: impl Into<String>,
        lock_nodes: Vec<String>,
        timeout: Duration,
    ) -> Self {
        ExecConfig {
            command,
            node: node.into(),
            lock_nodes,
            timeout,
            init_timeout: Duration::from_secs(10),
            cwd: None,
        }
    }
}

/// Where the adapter's stderr and the client's own notes (restarts and their
/// reasons) go: the worker's node log.
#[derive(Clone)]
pub struct AdapterLog {
    /// None: through `tracing`.
    writer: Option<Arc<Mutex<dyn Write + Send>>>,
}

impl fmt::Debug for AdapterLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.writer.is_some() {
            "writer"
        } else {
            "tracing"
        };
        f.debug_tuple("AdapterLog").field(&kind).finish()
    }
}

impl AdapterLog {
    /// Through `tracing`: the adapter's stderr lines at `info`, restarts at
    /// `warn`, with target `leasehold::exec` and the node's name. A worker
    /// whose tracing output is its stderr thereby writes them to its node log.
    pub fn tracing() -> Self {
        AdapterLog { writer: None }
    }

    /// To `writer`, one line each: `<node> adapter: <stderr line>` and
    /// `<node> exec: <note>`. Write errors are ignored.
    pub fn writer(writer: impl Write + Send + 'static) -> Self {
        AdapterLog {
            writer: Some(Arc::new(Mutex::new(writer))),
        }
    }

    fn stderr_line(&self, node: &str, line: &str) {
        match &self.writer {
            None => tracing::info!(target: "leasehold::exec", node, "adapter: {line}"),
            Some(w) => self.write_line(w, format_args!("{node} adapter: {line}")),
        }
    }

    fn note(&self, node: &str, note: &str) {
        match &self.writer {
            None => tracing::warn!(target: "leasehold::exec", node, "{note}"),
            Some(w) => self.write_line(w, format_args!("{node} exec: {note}")),
        }
    }

    fn write_line(&self, w: &Mutex<dyn Write + Send>, line: fmt::Arguments<'_>) {
        // A writer poisoned by a panic elsewhere still takes lines.
        let mut w = w.lock().unwrap_or_else(|e| e.into_inner());
        let _ = writeln!(w, "{line}");
        let _ = w.flush();
    }
}

/// Why an `exec` adapter could not be started.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The config names no program.
    #[error("exec adapter: the command is empty")]
    EmptyCommand,
    /// The program could not be started (not found, not executable).
    #[error("cannot start adapter {command}: {source}")]
    Spawn {
        /// The command line.
        command: String,
        /// What the system said.
        source: io::Error,
    },
    /// The adapter started but did not answer `init` with `ok` in time.
    #[error("adapter {command} did not initialise: {reason}")]
    Init {
        /// The command line.
        command: String,
        /// What went wrong (its `fail`/`info` error, a protocol error, exit).
        reason: String,
    },
}

/// How to start one adapter process and what its `init` says, for any
/// system driven over exec JSON lines (locks here, storage in
/// [`crate::storage::exec`]).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct AdapterSpec {
    /// The adapter's program and arguments.
    pub(crate) command: Vec<String>,
    /// The worker's node name, sent in `init`.
    pub(crate) node: String,
    /// The fields of `init` besides `id`, `op`, `node` and `timeout_ms`
    /// (`lock_nodes`, `storage_nodes`).
    pub(crate) init: Map<String, Value>,
    /// How long one op may take, request to reply; sent as `timeout_ms`.
    pub(crate) timeout: Duration,
    /// How long starting the adapter and its reply to `init` may take.
    pub(crate) init_timeout: Duration,
    /// The adapter's working directory; None for the worker's.
    pub(crate) cwd: Option<PathBuf>,
}

/// One adapter at a time, restarted after a protocol error: the plumbing
/// every exec client shares (see the module documentation).
#[derive(Debug)]
pub(crate) struct AdapterProcess {
    spec: AdapterSpec,
    log: AdapterLog,
    adapter: Option<Adapter>,
    /// The id of the last request sent, to any adapter of this client.
    last_id: u64,
    /// How many adapters were started.
    starts: u64,
    /// Why the current adapter must be replaced before the next op.
    broken: Option<String>,
}

impl AdapterProcess {
    /// Starts the adapter and initialises it.
    pub(crate) async fn start(spec: AdapterSpec, log: AdapterLog) -> Result<Self, ExecError> {
        if spec.command.is_empty() {
            return Err(ExecError::EmptyCommand);
        }
        let mut process = AdapterProcess {
            spec,
            log,
            adapter: None,
            last_id: 0,
            starts: 0,
            broken: None,
        };
        process.launch().await?;
        Ok(process)
    }

    pub(crate) fn starts(&self) -> u64 {
        self.starts
    }

    pub(crate) fn adapter_pid(&self) -> Option<u32> {
        self.adapter.as_ref().map(|a| a.pid)
    }

    fn command_line(&self) -> String {
        self.spec.command.join(" ")
    }

    fn next_id(&mut self) -> u64 {
        self.last_id += 1;
        self.last_id
    }

    /// Starts a new adapter and sends it `init`.
    async fn launch(&mut self) -> Result<(), ExecError> {
        let command_line = self.command_line();
        let mut adapter =
            Adapter::spawn(&self.spec, &self.log).map_err(|source| ExecError::Spawn {
                command: command_line.clone(),
                source,
            })?;
        self.starts += 1;
        let id = self.next_id();
        let timeout_ms = u64::try_from(self.spec.timeout.as_millis()).unwrap_or(u64::MAX);
        let mut request = json!({
            "id": id,
            "op": "init",
            "node": self.spec.node,
            "timeout_ms": timeout_ms,
        });
        if let Some(r) = request.as_object_mut() {
            r.extend(self.spec.init.clone());
        }
        let init_error = |reason: String| ExecError::Init {
            command: command_line.clone(),
            reason,
        };
        match adapter.exchange(id, &request, self.spec.init_timeout).await {
            Ok(Reply::Ok(_)) => {
                self.adapter = Some(adapter);
                self.broken = None;
                Ok(())
            }
            Ok(Reply::Fail(e)) => Err(init_error(format!("init failed: {e}"))),
            Ok(Reply::Info(e)) => Err(init_error(format!("init unknown: {e}"))),
            Err(e) => Err(init_error(e.to_string())),
        }
    }

    /// Makes sure a healthy adapter runs, restarting it if it broke.
    async fn ready(&mut self) -> Result<(), String> {
        if self.adapter.is_some() && self.broken.is_none() {
            return Ok(());
        }
        let why = self
            .broken
            .take()
            .unwrap_or_else(|| "no adapter running".to_owned());
        self.adapter = None;
        self.log.note(
            &self.spec.node,
            &format!("restarting adapter {} ({why})", self.command_line()),
        );
        match self.launch().await {
            Ok(()) => Ok(()),
            Err(e) => {
                let reason = e.to_string();
                self.log.note(&self.spec.node, &reason);
                // Try again before the next op.
                self.broken = Some(reason.clone());
                Err(reason)
            }
        }
    }

    /// Kills the adapter now; the next op starts a new one.
    pub(crate) fn break_adapter(&mut self, reason: &str) {
        self.log
            .note(&self.spec.node, &format!("killing adapter: {reason}"));
        self.adapter = None;
        self.broken = Some(reason.to_owned());
    }

    /// An `ok` that lacks what its op needs: a protocol error, so the op is
    /// `info` and the adapter is replaced.
    pub(crate) fn malformed<T>(&mut self, op: &str, what: String) -> Completion<T> {
        let e = ProtocolError::Malformed(what);
        self.break_adapter(&format!("{op} (id {}): {e}", self.last_id));
        Completion::Info(e.to_string())
    }

    /// Sends one op and turns the reply into a completion.
    pub(crate) async fn call(
        &mut self,
        op: &'static str,
        fields: Value,
    ) -> Completion<Map<String, Value>> {
        if let Err(reason) = self.ready().await {
            return Completion::Fail(format!("{op} not sent, adapter not running: {reason}"));
        }
        let id = self.next_id();
        let mut request = json!({ "id": id, "op": op });
        if let (Some(r), Value::Object(f)) = (request.as_object_mut(), fields) {
            r.extend(f);
        }
        let timeout = self.spec.timeout;
        let Some(adapter) = self.adapter.as_mut() else {
            return Completion::Fail(format!("{op} not sent: no adapter running"));
        };
        // Until the reply is read, the adapter owes us a line: if this future
        // is dropped half-way, the next op must not read this op's reply.
        self.broken = Some(format!("op {id} ({op}) was abandoned before its reply"));
        match adapter.exchange(id, &request, timeout).await {
            Ok(reply) => {
                self.broken = None;
                match reply {
                    Reply::Ok(fields) => Completion::Ok(fields),
                    Reply::Fail(e) => Completion::Fail(e),
                    Reply::Info(e) => Completion::Info(e),
                }
            }
            Err(e) => {
                let reason = format!("{op} (id {id}): {e}");
                self.break_adapter(&reason);
                Completion::Info(e.to_string())
            }
        }
    }
}

/// A [`LockClient`] that drives the user's adapter program over JSON lines.
///
/// Start it with [`ExecLockClient::start`] inside a Tokio runtime with I/O
/// enabled; it keeps one adapter process at a time and restarts it after a
/// protocol error (see the module documentation).
#[derive(Debug)]
pub struct ExecLockClient {
    config: ExecConfig,
    process: AdapterProcess,
}

impl ExecLockClient {
    /// Starts the adapter and initialises it. An error means the worker cannot
    /// work: the command is empty, cannot be started, or its `init` failed.
    pub async fn start(config: ExecConfig, log: AdapterLog) -> Result<Self, ExecError> {
        let mut init = Map::new();
        init.insert("lock_nodes".to_owned(), json!(config.lock_nodes));
        let spec = AdapterSpec {
            command: config.command.clone(),
            node: config.node.clone(),
            init,
            timeout: config.timeout,
            init_timeout: config.init_timeout,
            cwd: config.cwd.clone(),
        };
        let process = AdapterProcess::start(spec, log).await?;
        Ok(ExecLockClient { config, process })
    }

    /// How many times an adapter was started (1 until the first restart).
    pub fn starts(&self) -> u64 {
        self.process.starts()
    }

    /// The process id of the running adapter, if one is running.
    pub fn adapter_pid(&self) -> Option<u32> {
        self.process.adapter_pid()
    }

    /// An op whose `ok` carries a grant.
    async fn grant(&mut self, op: &'static str, fields: Value) -> Completion<Grant> {
        match self.process.call(op, fields).await {
            Completion::Ok(reply) => {
                let token = reply.get("token").and_then(Value::as_u64);
                let lease_ms = reply.get("lease_ms").and_then(Value::as_u64);
                match (token, lease_ms) {
                    (Some(token), Some(lease_ms)) => Completion::Ok(Grant { token, lease_ms }),
                    _ => self.process.malformed(
                        op,
                        format!("{op} ok without an unsigned integer token and lease_ms"),
                    ),
                }
            }
            Completion::Fail(e) => Completion::Fail(e),
            Completion::Info(e) => Completion::Info(e),
        }
    }
}

/// Milliseconds of a TTL, at least 1 (as for the reference client).
fn ttl_ms(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

impl LockClient for ExecLockClient {
    fn service(&self) -> &'static str {
        "exec"
    }

    async fn acquire(&mut self, lock: &str, ttl: Duration) -> Completion<Grant> {
        let fields = json!({ "lock": lock, "client": self.config.node, "ttl_ms": ttl_ms(ttl) });
        self.grant("acquire", fields).await
    }

    async fn renew(&mut self, lock: &str, token: u64, ttl: Duration) -> Completion<Grant> {
        let fields = json!({ "lock": lock, "token": token, "ttl_ms": ttl_ms(ttl) });
        self.grant("renew", fields).await
    }

    async fn release(&mut self, lock: &str, token: u64) -> Completion<()> {
        let fields = json!({ "lock": lock, "token": token });
        self.process.call("release", fields).await.map(|_| ())
    }
}

/// A reply with a known type and the request's id.
enum Reply {
    Ok(Map<String, Value>),
    Fail(String),
    Info(String),
}

/// Why an exchange with the adapter has no usable reply.
#[derive(Debug, thiserror::Error)]
enum ProtocolError {
    #[error("timeout: no reply within {0:?}")]
    Timeout(Duration),
    #[error("adapter exited ({0}) before replying")]
    Exited(String),
    #[error("cannot write to the adapter: {0}")]
    Write(io::Error),
    #[error("cannot read from the adapter: {0}")]
    Read(io::Error),
    #[error("protocol error: {0}")]
    Malformed(String),
}

/// One running adapter process.
struct Adapter {
    /// Always Some until dropped.
    child: Option<Child>,
    pid: u32,
    stdin: pipe::Sender,
    stdout: LineReader,
}

impl fmt::Debug for Adapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Adapter").field("pid", &self.pid).finish()
    }
}

impl Adapter {
    fn spawn(config: &AdapterSpec, log: &AdapterLog) -> io::Result<Adapter> {
        let (program, args) = config
            .command
            .split_first()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "empty command"))?;
        let mut command = Command::new(program);
        command
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(dir) = &config.cwd {
            command.current_dir(dir);
        }
        // No `process_group` call: a child keeps its parent's process group
        // unless asked otherwise (std's and tokio's Command alike), so the
        // adapter is in the worker's group and a SIGSTOP/SIGCONT of the worker's
        // group pauses and resumes it with the worker. It dies with the worker
        // through `Drop` (SIGKILL), when the harness signals the whole group,
        // and, for an adapter that follows the protocol, when its stdin reaches
        // EOF because the worker is gone.
        let mut child = command.spawn()?;
        let pid = child.id();
        let taken = (child.stdin.take(), child.stdout.take(), child.stderr.take());
        let (Some(stdin), Some(stdout), Some(stderr)) = taken else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(io::Error::other("adapter pipes missing"));
        };
        let pipes = pipe::Sender::from_owned_fd(OwnedFd::from(stdin))
            .and_then(|stdin| Ok((stdin, pipe::Receiver::from_owned_fd(OwnedFd::from(stdout))?)));
        let (stdin, stdout) = match pipes {
            Ok(p) => p,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(e);
            }
        };
        forward_stderr(stderr, config.node.clone(), log.clone());
        Ok(Adapter {
            child: Some(child),
            pid,
            stdin,
            stdout: LineReader::new(stdout),
        })
    }

    /// Writes `request` as one line and reads its reply, within `timeout`.
    async fn exchange(
        &mut self,
        id: u64,
        request: &Value,
        timeout: Duration,
    ) -> Result<Reply, ProtocolError> {
        let mut line = request.to_string();
        line.push('\n');
        let stdin = &self.stdin;
        let stdout = &mut self.stdout;
        let io = async move {
            write_all(stdin, line.as_bytes())
                .await
                .map_err(ProtocolError::Write)?;
            stdout.next_line().await.map_err(ProtocolError::Read)
        };
        let read = match tokio::time::timeout(timeout, io).await {
            Err(_) => return Err(ProtocolError::Timeout(timeout)),
            Ok(Err(ProtocolError::Write(e))) if e.kind() == io::ErrorKind::BrokenPipe => {
                return Err(ProtocolError::Exited(self.exit_status().await));
            }
            Ok(Err(e)) => return Err(e),
            Ok(Ok(read)) => read,
        };
        match read {
            Incoming::Eof => Err(ProtocolError::Exited(self.exit_status().await)),
            Incoming::TooLong => Err(ProtocolError::Malformed(format!(
                "reply line longer than {MAX_LINE} bytes"
            ))),
            Incoming::Line(bytes) => parse_reply(id, &bytes),
        }
    }

    /// The adapter's exit status, once it has closed its stdout.
    async fn exit_status(&mut self) -> String {
        let Some(child) = self.child.as_mut() else {
            return "gone".to_owned();
        };
        // Closing stdout and being reaped are not simultaneous: give it a moment.
        for _ in 0..20 {
            match child.try_wait() {
                Ok(Some(status)) => return status.to_string(),
                Ok(None) => tokio::time::sleep(Duration::from_millis(5)).await,
                Err(e) => return format!("status unknown: {e}"),
            }
        }
        "closed its stdout, still running".to_owned()
    }
}

impl Drop for Adapter {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = child.kill();
        if !matches!(child.try_wait(), Ok(Some(_))) {
            // Reap it off the async thread: a killed process is gone within
            // moments, but waiting for it here would block the runtime.
            let _ = std::thread::Builder::new()
                .name("exec-reaper".to_owned())
                .spawn(move || child.wait());
        }
    }
}

/// Copies the adapter's stderr to the log, line by line, until it closes.
fn forward_stderr(stderr: impl Read + Send + 'static, node: String, log: AdapterLog) {
    let spawned = std::thread::Builder::new()
        .name("exec-stderr".to_owned())
        .spawn(move || {
            let mut reader = BufReader::new(stderr);
            let mut line = Vec::new();
            loop {
                line.clear();
                match reader.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let text = String::from_utf8_lossy(&line);
                        log.stderr_line(&node, text.trim_end_matches(['\n', '\r']));
                    }
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(target: "leasehold::exec", "cannot forward adapter stderr: {e}");
    }
}

/// Checks one reply line against the request's id.
fn parse_reply(id: u64, bytes: &[u8]) -> Result<Reply, ProtocolError> {
    let shown = || {
        let text = String::from_utf8_lossy(bytes);
        let text = text.trim_end();
        let cut: String = text.chars().take(200).collect();
        if cut.len() < text.len() {
            format!("{cut:?}…")
        } else {
            format!("{cut:?}")
        }
    };
    let value: Value = serde_json::from_slice(bytes).map_err(|e| {
        ProtocolError::Malformed(format!("reply to id {id} is not JSON ({e}): {}", shown()))
    })?;
    let Value::Object(mut reply) = value else {
        return Err(ProtocolError::Malformed(format!(
            "reply to id {id} is not a JSON object: {}",
            shown()
        )));
    };
    match reply.get("id").and_then(Value::as_u64) {
        Some(got) if got == id => {}
        _ => {
            return Err(ProtocolError::Malformed(format!(
                "reply without the request's id {id}: {}",
                shown()
            )));
        }
    }
    let error = |reply: &Map<String, Value>| match reply.get("error") {
        Some(Value::String(e)) => e.clone(),
        Some(other) => other.to_string(),
        None => "no error given".to_owned(),
    };
    match reply.get("type").and_then(Value::as_str) {
        Some("ok") => {
            reply.remove("id");
            reply.remove("type");
            Ok(Reply::Ok(reply))
        }
        // A storage adapter's refusal may say what the key's mark is.
        Some("fail") => Ok(Reply::Fail(
            match reply.get("high_water").and_then(Value::as_u64) {
                Some(h) => format!("{}: high water {h}", error(&reply)),
                None => error(&reply),
            },
        )),
        Some("info") => Ok(Reply::Info(error(&reply))),
        _ => Err(ProtocolError::Malformed(format!(
            "reply to id {id} has no known type (ok, fail, info): {}",
            shown()
        ))),
    }
}

async fn write_all(pipe: &pipe::Sender, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        pipe.writable().await?;
        match pipe.try_write(data) {
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

enum Incoming {
    Line(Vec<u8>),
    TooLong,
    Eof,
}

/// Splits the adapter's stdout into lines.
struct LineReader {
    pipe: pipe::Receiver,
    buf: Vec<u8>,
}

impl LineReader {
    fn new(pipe: pipe::Receiver) -> Self {
        LineReader {
            pipe,
            buf: Vec::new(),
        }
    }

    /// The next line without its newline. A partial line at EOF counts as EOF:
    /// the adapter did not finish its reply.
    async fn next_line(&mut self) -> io::Result<Incoming> {
        let mut chunk = [0u8; 8192];
        loop {
            if let Some(end) = self.buf.iter().position(|&b| b == b'\n') {
                let mut line: Vec<u8> = self.buf.drain(..=end).collect();
                line.pop();
                return Ok(Incoming::Line(line));
            }
            if self.buf.len() > MAX_LINE {
                return Ok(Incoming::TooLong);
            }
            self.pipe.readable().await?;
            match self.pipe.try_read(&mut chunk) {
                Ok(0) => return Ok(Incoming::Eof),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok_fields(r: Result<Reply, ProtocolError>) -> Map<String, Value> {
        match r {
            Ok(Reply::Ok(m)) => m,
            Ok(_) => panic!("not ok"),
            Err(e) => panic!("error: {e}"),
        }
    }

    #[test]
    fn replies_are_checked_against_the_id_and_type() {
        let m = ok_fields(parse_reply(
            2,
            br#"{"id":2,"type":"ok","token":34,"lease_ms":1000}"#,
        ));
        assert_eq!(m.get("token").and_then(Value::as_u64), Some(34));
        assert!(matches!(
            parse_reply(3, br#"{"id":3,"type":"fail","error":"lease lost"}"#),
            Ok(Reply::Fail(e)) if e == "lease lost"
        ));
        assert!(matches!(
            parse_reply(3, br#"{"id":3,"type":"fail","error":"rejected","high_water":34}"#),
            Ok(Reply::Fail(e)) if e == "rejected: high water 34"
        ));
        assert!(matches!(
            parse_reply(4, br#"{"id":4,"type":"info"}"#),
            Ok(Reply::Info(e)) if e == "no error given"
        ));
        for bad in [
            &br#"{"id":5,"type":"ok"}"#[..],
            br#"{"type":"ok"}"#,
            br#"{"id":"4","type":"ok"}"#,
            br#"{"id":4,"type":"maybe"}"#,
            br#"{"id":4}"#,
            br#"[{"id":4,"type":"ok"}]"#,
            br#"{"id":4,"type":"ok"} {"id":4,"type":"ok"}"#,
            b"hello",
            b"",
        ] {
            match parse_reply(4, bad) {
                Err(ProtocolError::Malformed(_)) => {}
                Err(e) => panic!("{:?}: unexpected {e}", String::from_utf8_lossy(bad)),
                Ok(_) => panic!("{:?} accepted", String::from_utf8_lossy(bad)),
            }
        }
    }

    #[test]
    fn long_garbage_is_cut_in_the_reason() {
        let line = "x".repeat(5000);
        let Err(e) = parse_reply(1, line.as_bytes()) else {
            panic!("accepted");
        };
        assert!(e.to_string().len() < 400, "{e}");
    }
}
