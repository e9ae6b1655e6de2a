//! Plays a run's fault schedule against its nodes and records every action in
//! the history. Whatever happens, the faults it injected are healed before it
//! returns: pauses resumed, partitions removed, killed nodes started again.
//!
//! Pauses and partitions are injected here, through the nemesis, on the
//! nodes' facts. Kills and restarts need the runtime, which the run's main loop
//! owns: the driver asks for them over a channel and waits for the answer.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use leasehold_checker::{Event, EventType, Process};
use leasehold_nemesis::{
    FaultEffect, FaultKind, LiveState, Nemesis, NodeFacts, Resolution, ScheduledFault, Target,
    Topology, grudge,
};
use leasehold_nodes::RunClock;
use leasehold_results::FaultRecord;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::json;
use tokio::sync::mpsc::{Sender, UnboundedSender};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

/// How long a fault waits for its target to exist (e.g. for someone to hold the
/// lock) before it is skipped.
const TARGET_WAIT: Duration = Duration::from_secs(1);
/// How often a waiting fault looks again.
const POLL: Duration = Duration::from_millis(2);

/// What the driver asks of the runtime.
pub enum RuntimeRequest {
    /// SIGKILL the node and wait until it is gone.
    Kill {
        node: String,
        reply: oneshot::Sender<anyhow::Result<()>>,
    },
    /// Start a killed node again; answers with its new facts.
    Restart {
        node: String,
        reply: oneshot::Sender<anyhow::Result<NodeFacts>>,
    },
}

pub struct Driver {
    pub schedule: Vec<ScheduledFault>,
    pub facts: Vec<NodeFacts>,
    pub live: Arc<Mutex<LiveState>>,
    pub events: UnboundedSender<Event>,
    pub runtime: Sender<RuntimeRequest>,
    pub clock: RunClock,
    /// When the workload started, on the run clock: the schedule's times count
    /// from here, not from the start of setup.
    pub origin_ns: u64,
    pub seed: u64,
}

/// A fault in force.
struct Active {
    due: u64,
    record: usize,
    kind: FaultKind,
    nodes: Vec<String>,
}

/// What the driver has done to the cluster, so nothing is done twice to a node
/// and everything is undone.
#[derive(Default)]
struct InForce {
    active: Vec<Active>,
    /// Nodes paused or killed now.
    busy: BTreeSet<String>,
    partitioned: bool,
}

impl Driver {
    /// When a fault is due, on the run clock.
    fn due(&self, fault: &ScheduledFault) -> u64 {
        self.origin_ns + fault.at.as_nanos() as u64
    }

    fn record_event(&self, f: &str, value: serde_json::Value) -> u64 {
        let time = self.clock.now();
        let _ = self.events.send(Event {
            index: 0,
            time,
            process: Process::nemesis(),
            node: None,
            kind: EventType::Info,
            f: f.to_owned(),
            value,
            error: None,
        });
        time
    }

    fn record_effect(
        &self,
        f: &str,
        nodes: &[String],
        target: &str,
        latency: Duration,
        extra: serde_json::Value,
    ) -> u64 {
        let mut value =
            json!({"nodes": nodes, "target": target, "latency_us": latency.as_micros() as u64});
        if let (Some(v), serde_json::Value::Object(more)) = (value.as_object_mut(), extra) {
            v.extend(more);
        }
        self.record_event(f, value)
    }

    fn names_of(&self, target: &Target, live: &LiveState, rng: &mut ChaCha8Rng) -> Vec<String> {
        match target.resolve(&self.facts, live, rng) {
            Resolution::Nodes(n) => n,
            Resolution::Wait => Vec::new(),
        }
    }

    /// Runs until `stop` is cancelled, then heals and returns what it did.
    pub async fn run(mut self, stop: CancellationToken) -> Vec<FaultRecord> {
        let mut nemesis = Nemesis::new();
        let mut records: Vec<FaultRecord> = Vec::new();
        let mut state = InForce::default();
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed ^ 0x6E65_6D65_7369_7300);
        let mut next = 0usize;
        loop {
            let now = self.clock.now();
            // Heal what is due.
            state.active.sort_by_key(|a| a.due);
            while state.active.first().is_some_and(|a| a.due <= now) {
                let active = state.active.remove(0);
                self.heal(
                    &mut nemesis,
                    &mut state,
                    &mut records[active.record],
                    active,
                )
                .await;
            }
            // Start what is due.
            let mut waiting = false;
            if let Some(fault) = self.schedule.get(next).cloned()
                && self.due(&fault) <= now
            {
                match self
                    .inject(&mut nemesis, &mut state, &fault, &mut rng)
                    .await
                {
                    Injected::Done(record, heal) => {
                        records.push(record);
                        if let Some((due, kind, nodes)) = heal {
                            state.active.push(Active {
                                due,
                                record: records.len() - 1,
                                kind,
                                nodes,
                            });
                        }
                        next += 1;
                    }
                    Injected::NotYet
                        if now.saturating_sub(self.due(&fault))
                            <= TARGET_WAIT.as_nanos() as u64 =>
                    {
                        waiting = true;
                    }
                    skipped => {
                        let why = match skipped {
                            Injected::Skipped(why) => why,
                            _ => format!("no node matched {} within {TARGET_WAIT:?}", fault.target),
                        };
                        tracing::warn!(fault = fault.kind.as_str(), target_nodes = %fault.target, "skipped: {why}");
                        records.push(FaultRecord {
                            f: fault.kind.as_str().to_owned(),
                            target: fault.target.to_string(),
                            nodes: Vec::new(),
                            start_ns: now,
                            effective_ns: None,
                            end_ns: None,
                            note: Some(format!("skipped: {why}")),
                            spec: Some(fault.spec),
                        });
                        next += 1;
                    }
                }
            }
            // Sleep until the next thing to do.
            let mut wake = state.active.iter().map(|a| a.due).min().unwrap_or(u64::MAX);
            if let Some(f) = self.schedule.get(next) {
                wake = wake.min(self.due(f));
            }
            if waiting {
                wake = wake.min(now + POLL.as_nanos() as u64);
            }
            let nap = Duration::from_nanos(wake.saturating_sub(self.clock.now()));
            tokio::select! {
                _ = tokio::time::sleep(nap.min(Duration::from_secs(3600))) => {}
                _ = stop.cancelled() => break,
            }
        }
        // Heal everything still in force, recording it.
        for active in std::mem::take(&mut state.active) {
            self.heal(
                &mut nemesis,
                &mut state,
                &mut records[active.record],
                active,
            )
            .await;
        }
        let (effect, errors) = nemesis.heal_all();
        for e in &errors {
            tracing::error!(error = %e, "heal failed");
        }
        if !effect.nodes.is_empty() {
            self.record_effect(effect.f, &effect.nodes, "all", effect.latency, json!({}));
        }
        records
    }

    async fn inject(
        &mut self,
        nemesis: &mut Nemesis,
        state: &mut InForce,
        fault: &ScheduledFault,
        rng: &mut ChaCha8Rng,
    ) -> Injected {
        let start_ns = self.clock.now();
        let decided = Instant::now();
        let (targets, from) = {
            let live = self.live.lock().expect("live state lock");
            let targets = self.names_of(&fault.target, &live, rng);
            let from = fault.from.as_ref().map(|f| self.names_of(f, &live, rng));
            (targets, from)
        };
        let mut record = FaultRecord {
            f: fault.kind.as_str().to_owned(),
            target: fault.target.to_string(),
            nodes: Vec::new(),
            start_ns,
            effective_ns: None,
            end_ns: None,
            note: None,
            spec: Some(fault.spec),
        };
        let heal_at = |at: u64| at + fault.duration.as_nanos() as u64;
        match fault.kind {
            FaultKind::Pause | FaultKind::Kill => {
                // Never two faults on one node at once.
                let nodes: Vec<String> = targets
                    .into_iter()
                    .filter(|n| !state.busy.contains(n))
                    .collect();
                if nodes.is_empty() {
                    return Injected::NotYet;
                }
                record.nodes = nodes.clone();
                let result = if fault.kind == FaultKind::Pause {
                    let facts: Vec<&NodeFacts> = self
                        .facts
                        .iter()
                        .filter(|f| nodes.contains(&f.name))
                        .collect();
                    nemesis
                        .pause(&facts)
                        .map(|e| e.latency)
                        .map_err(anyhow::Error::from)
                } else {
                    self.kill(&nodes).await.map(|()| decided.elapsed())
                };
                state.busy.extend(nodes.iter().cloned());
                match result {
                    Ok(latency) => {
                        let at = self.record_effect(
                            fault.kind.as_str(),
                            &nodes,
                            &fault.target.to_string(),
                            latency,
                            json!({}),
                        );
                        tracing::info!(
                            fault = fault.kind.as_str(),
                            ?nodes,
                            latency_us = latency.as_micros() as u64,
                            "injected"
                        );
                        record.effective_ns = Some(at);
                        Injected::Done(record, Some((heal_at(at), fault.kind, nodes)))
                    }
                    Err(e) => {
                        tracing::error!(error = %format!("{e:#}"), "fault failed");
                        record.note = Some(format!("failed: {e:#}"));
                        // Undo at once whatever part of it took.
                        Injected::Done(record, Some((start_ns, fault.kind, nodes)))
                    }
                }
            }
            FaultKind::Partition => {
                if state.partitioned {
                    return Injected::Skipped("a partition is already in force".into());
                }
                let topology = fault.topology.unwrap_or(Topology::Isolate);
                if topology == Topology::Isolate && targets.is_empty() {
                    return Injected::NotYet;
                }
                let all: Vec<String> = self.facts.iter().map(|f| f.name.clone()).collect();
                let grudge = grudge(topology, &all, &targets, from.as_deref(), rng);
                let cut: Vec<String> = grudge
                    .iter()
                    .filter(|(_, d)| !d.is_empty())
                    .map(|(n, _)| n.clone())
                    .collect();
                record.nodes = cut.clone();
                state.partitioned = true;
                match nemesis.partition(&grudge, &self.facts) {
                    Ok(effect) => {
                        let drops: BTreeMap<&String, Vec<&String>> = grudge
                            .iter()
                            .filter(|(_, d)| !d.is_empty())
                            .map(|(n, d)| (n, d.iter().collect()))
                            .collect();
                        let at = self.record_effect(
                            "partition",
                            &cut,
                            &fault.target.to_string(),
                            effect.latency,
                            json!({"topology": topology.as_str(), "grudge": drops}),
                        );
                        tracing::info!(
                            ?drops,
                            latency_us = effect.latency.as_micros() as u64,
                            "partitioned"
                        );
                        record.effective_ns = Some(at);
                        Injected::Done(record, Some((heal_at(at), FaultKind::Partition, cut)))
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "partition failed");
                        record.note = Some(format!("failed: {e}"));
                        Injected::Done(record, Some((start_ns, FaultKind::Partition, cut)))
                    }
                }
            }
        }
    }

    async fn heal(
        &mut self,
        nemesis: &mut Nemesis,
        state: &mut InForce,
        record: &mut FaultRecord,
        active: Active,
    ) {
        let target = record.target.clone();
        let outcome: anyhow::Result<FaultEffect> = match active.kind {
            FaultKind::Pause => nemesis.resume(&active.nodes).map_err(Into::into),
            FaultKind::Partition => {
                state.partitioned = false;
                nemesis.heal_partition().map_err(Into::into)
            }
            FaultKind::Kill => {
                let start = Instant::now();
                let mut restarted = Vec::new();
                let mut failed = None;
                for node in &active.nodes {
                    match self.restart(node).await {
                        Ok(facts) => {
                            if let Some(f) = self.facts.iter_mut().find(|f| f.name == facts.name) {
                                *f = facts;
                            }
                            restarted.push(node.clone());
                        }
                        Err(e) => failed = Some(e.context(format!("restart {node}"))),
                    }
                }
                match failed {
                    Some(e) => Err(e),
                    None => Ok(FaultEffect {
                        f: "restart",
                        nodes: restarted,
                        latency: start.elapsed(),
                    }),
                }
            }
        };
        for n in &active.nodes {
            state.busy.remove(n);
        }
        match outcome {
            Ok(effect) => {
                let at = self.record_effect(
                    active.kind.heal_name(),
                    &effect.nodes,
                    &target,
                    effect.latency,
                    json!({}),
                );
                record.end_ns = Some(at);
            }
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "heal failed");
                record.note = Some(format!("{} failed: {e:#}", active.kind.heal_name()));
            }
        }
    }

    async fn kill(&self, nodes: &[String]) -> anyhow::Result<()> {
        for node in nodes {
            let node = node.clone();
            self.ask(|reply| RuntimeRequest::Kill { node, reply })
                .await?;
        }
        Ok(())
    }

    async fn restart(&self, node: &str) -> anyhow::Result<NodeFacts> {
        let node = node.to_owned();
        self.ask(|reply| RuntimeRequest::Restart { node, reply })
            .await
    }

    /// Sends a request to the run's main loop and waits for its answer.
    async fn ask<T>(
        &self,
        request: impl FnOnce(oneshot::Sender<anyhow::Result<T>>) -> RuntimeRequest,
    ) -> anyhow::Result<T> {
        let gone = || anyhow::anyhow!("the runtime is gone");
        let (reply, answer) = oneshot::channel();
        self.runtime
            .send(request(reply))
            .await
            .map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }
}

enum Injected {
    /// Injected (or failed trying): the record, and when to heal what.
    Done(FaultRecord, Option<(u64, FaultKind, Vec<String>)>),
    /// No target now; try again shortly.
    NotYet,
    /// Will not be injected.
    Skipped(String),
}
