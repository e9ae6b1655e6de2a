//! Plays a run's fault schedule against its nodes and records every action in
//! the history. Whatever happens, the faults it injected are healed before it
//! returns: pauses resumed, partitions removed, killed nodes started again
//! (unless the run was interrupted: then teardown stops them anyway).
//!
//! Every fault goes through the runtime's [`NodeControl`] seam, by node name:
//! the driver decides what and when, the runtime knows which processes and
//! which namespace a name stands for. A node restarted while a partition is
//! in force gets its drop rules back before the driver waits for it to be
//! ready, and the history records that (`reapply`).
//!
//! The driver is a future the run's main loop polls next to its clock, so a
//! slow restart never hides the deadline or Ctrl-C; blocking work (waiting for
//! `/proc` to show a stopped process, `nft`) runs on blocking threads inside
//! the runtime.
//!
//! [`NodeControl`]: crate::runtime::NodeControl

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use leasehold_checker::{Event, EventType, Process};
use leasehold_nemesis::packet::PacketRule;
use leasehold_nemesis::partition::{self, Drops};
use leasehold_nemesis::{
    FaultKind, Grudge, LiveState, NodeFacts, Resolution, Role, ScheduledFault, Shape, Target,
    Topology, grudge,
};
use leasehold_nodes::RunClock;
use leasehold_results::FaultRecord;
use leasehold_workloads::system::Leader;
use nix::sys::signal::Signal;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::json;
use tokio::sync::mpsc::UnboundedSender;
use tokio_util::sync::CancellationToken;

use crate::runtime::clock::{ClockControls, Lead};
use crate::runtime::{Runtime, wait_ready};

/// How long a fault waits for its target to exist (e.g. for someone to hold the
/// lock) before it is skipped.
const TARGET_WAIT: Duration = Duration::from_secs(1);
/// How often a waiting fault looks again.
const POLL: Duration = Duration::from_millis(2);
/// How long each lock node may take to say whether it leads.
const LEADER_TIMEOUT: Duration = Duration::from_millis(300);

pub struct Driver {
    pub schedule: Vec<ScheduledFault>,
    /// The nodes as targets: names, roles, addresses.
    pub facts: Vec<NodeFacts>,
    pub live: Arc<Mutex<LiveState>>,
    pub events: UnboundedSender<Event>,
    pub clock: RunClock,
    /// When the workload started, on the run clock: the schedule's times count
    /// from here, not from the start of setup.
    pub origin_ns: u64,
    pub seed: u64,
    /// How long a restarted lock or storage node may take to answer.
    pub ready_limit: Duration,
    /// How to ask the lock nodes who leads: `target: lock-leader` is the node
    /// that says so at the moment of the fault (for a system without a leader,
    /// the first lock node).
    pub lock_leader: Leader,
    /// The control files of the nodes started under the clock library.
    pub clocks: tokio::sync::Mutex<ClockControls>,
}

/// A fault in force.
struct Active {
    due: u64,
    record: usize,
    kind: FaultKind,
    nodes: Vec<String>,
}

/// The partition in force: what each node drops, by address (what the
/// runtime applies) and by name (what the history says).
struct Cut {
    drops: BTreeMap<String, Drops>,
    grudge: BTreeMap<String, Vec<String>>,
}

/// What the driver has done to the cluster, so nothing is done twice to a node
/// and everything is undone.
#[derive(Default)]
struct InForce {
    active: Vec<Active>,
    /// Nodes paused or killed now.
    busy: BTreeSet<String>,
    /// Nodes that may be stopped now (a failed resume stays here for the
    /// final heal).
    paused: BTreeSet<String>,
    /// The partitions in force, by the index of their record: they may
    /// overlap, and what the nodes drop is the union of their grudges.
    grudges: BTreeMap<usize, Grudge>,
    /// Drop rules that may be in force now (kept after a failed heal, for the
    /// final heal).
    cut: Option<Cut>,
    /// Lives of each restarted node.
    incarnations: BTreeMap<String, u64>,
    /// Nodes whose clocks a fault moves now.
    clocked: BTreeSet<String>,
    /// A packet fault is scheduled to be in force (a new one is skipped).
    shaping: bool,
    /// Packet rules that may be in force now (kept after a failed heal, for
    /// the final heal).
    shaped: Option<Shaped>,
}

/// The packet fault in force: each receiving node's rule (what the runtime
/// applies) and whose packets it shapes, by name (what the history says).
struct Shaped {
    shape: Shape,
    rules: BTreeMap<String, PacketRule>,
    links: BTreeMap<String, Vec<String>>,
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

    /// Asks the lock nodes which of them leads now. `None`: the system has no
    /// leader to ask about; `Some(None)`: none says it leads (an election, or
    /// the leader does not answer).
    async fn ask_leader(&self) -> Option<Option<String>> {
        if self.lock_leader == Leader::None {
            return None;
        }
        let mut locks: Vec<(&str, std::net::SocketAddr)> = self
            .facts
            .iter()
            .filter(|f| f.role == Role::Lock)
            .filter_map(|f| Some((f.name.as_str(), f.addr.parse().ok()?)))
            .collect();
        locks.sort_by_key(|(name, _)| lock_number(name));
        let addrs: Vec<std::net::SocketAddr> = locks.iter().map(|(_, a)| *a).collect();
        let found = self.lock_leader.find(&addrs, LEADER_TIMEOUT).await;
        Some(found.map(|i| locks[i].0.to_owned()))
    }

    /// Runs until `stop` is cancelled, then heals and returns what it did.
    /// `interrupt` (Ctrl-C and the like) also ends waits for restarted nodes,
    /// and killed nodes are then not started again.
    pub async fn run(
        self,
        nodes: &mut dyn Runtime,
        stop: CancellationToken,
        interrupt: CancellationToken,
    ) -> Vec<FaultRecord> {
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
                let record = &mut records[active.record];
                self.heal(nodes, &mut state, record, active, &interrupt)
                    .await;
            }
            // Start what is due.
            let mut waiting = false;
            if let Some(fault) = self.schedule.get(next).cloned()
                && self.due(&fault) <= now
            {
                // Its record goes at this index, whatever becomes of it.
                let slot = records.len();
                match self.inject(nodes, &mut state, &fault, slot, &mut rng).await {
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
            if stop.is_cancelled() {
                break;
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
            let record = &mut records[active.record];
            self.heal(nodes, &mut state, record, active, &interrupt)
                .await;
        }
        self.heal_leftovers(nodes, &mut state).await;
        records
    }

    /// Retries what a failed heal left: stopped processes and drop rules.
    async fn heal_leftovers(&self, nodes: &mut dyn Runtime, state: &mut InForce) {
        let start = Instant::now();
        let mut done: Vec<String> = Vec::new();
        let paused: Vec<String> = std::mem::take(&mut state.paused).into_iter().collect();
        if !paused.is_empty() {
            match nodes.signal(&paused, Signal::SIGCONT).await {
                Ok(()) => done.extend(paused),
                Err(e) => tracing::error!(error = %format!("{e:#}"), "heal failed"),
            }
        }
        let partitioned = state.cut.is_some();
        state.grudges.clear();
        if let Some(cut) = state.cut.take() {
            let clear: BTreeMap<String, Drops> = cut
                .drops
                .keys()
                .map(|n| (n.clone(), Drops::new()))
                .collect();
            match nodes.set_drops(&clear).await {
                Ok(()) => done.extend(cut.grudge.into_keys()),
                Err(e) => tracing::error!(error = %format!("{e:#}"), "heal failed"),
            }
            done.sort();
            done.dedup();
        }
        if !done.is_empty() {
            let f = if partitioned { "heal" } else { "resume" };
            self.record_effect(f, &done, "all", start.elapsed(), json!({}));
        }
        if let Some(shaped) = state.shaped.take() {
            let start = Instant::now();
            let clear: BTreeMap<String, Option<PacketRule>> =
                shaped.rules.keys().map(|n| (n.clone(), None)).collect();
            match nodes.set_packets(&clear).await {
                Ok(()) => {
                    let healed: Vec<String> = shaped.rules.into_keys().collect();
                    self.record_effect(
                        "unpacket",
                        &healed,
                        "all",
                        start.elapsed(),
                        json!({"shape": shaped.shape}),
                    );
                }
                Err(e) => tracing::error!(error = %format!("{e:#}"), "packet heal failed"),
            }
        }
        // Clocks a failed reset left moved.
        let start = Instant::now();
        let reset = self.clocks.lock().await.reset_all().await;
        state.clocked.clear();
        if !reset.is_empty() {
            self.record_effect("reset", &reset, "all", start.elapsed(), json!({}));
        }
    }

    async fn inject(
        &self,
        nodes: &mut dyn Runtime,
        state: &mut InForce,
        fault: &ScheduledFault,
        slot: usize,
        rng: &mut ChaCha8Rng,
    ) -> Injected {
        let start_ns = self.clock.now();
        // `lock-leader` of a system with a leader: whoever leads right now.
        let wants_leader =
            fault.target == Target::LockLeader || fault.from.as_ref() == Some(&Target::LockLeader);
        let leader = if wants_leader {
            self.ask_leader().await
        } else {
            None
        };
        let decided = Instant::now();
        let (targets, from) = {
            let live = self.live.lock().expect("live state lock");
            let mut resolve = |target: &Target| match (target, &leader) {
                (Target::LockLeader, Some(found)) => found.iter().cloned().collect(),
                _ => self.names_of(target, &live, rng),
            };
            let targets = resolve(&fault.target);
            let from = fault.from.as_ref().map(&mut resolve);
            (targets, from)
        };
        // The leader found goes into the fault's event.
        let leader_value = match &leader {
            Some(Some(name)) => json!({ "leader": name }),
            _ => json!({}),
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
                let targets: Vec<String> = targets
                    .into_iter()
                    .filter(|n| !state.busy.contains(n))
                    .collect();
                if targets.is_empty() {
                    return Injected::NotYet;
                }
                record.nodes = targets.clone();
                state.busy.extend(targets.iter().cloned());
                let result = if fault.kind == FaultKind::Pause {
                    // Remember before signalling: a failure half-way must
                    // still be healed.
                    state.paused.extend(targets.iter().cloned());
                    nodes.signal(&targets, Signal::SIGSTOP).await
                } else {
                    kill_all(nodes, &targets).await
                };
                match result.map(|()| decided.elapsed()) {
                    Ok(latency) => {
                        let at = self.record_effect(
                            fault.kind.as_str(),
                            &targets,
                            &fault.target.to_string(),
                            latency,
                            leader_value,
                        );
                        tracing::info!(
                            fault = fault.kind.as_str(),
                            nodes = ?targets,
                            latency_us = latency.as_micros() as u64,
                            "injected"
                        );
                        record.effective_ns = Some(at);
                        Injected::Done(record, Some((heal_at(at), fault.kind, targets)))
                    }
                    Err(e) => {
                        tracing::error!(error = %format!("{e:#}"), "fault failed");
                        record.note = Some(format!("failed: {e:#}"));
                        // Undo at once whatever part of it took.
                        Injected::Done(record, Some((start_ns, fault.kind, targets)))
                    }
                }
            }
            FaultKind::Clock => {
                let Some(change) = fault.clock else {
                    return Injected::Skipped("a clock fault without a change".into());
                };
                // Never two clock faults on one node at once.
                let targets: Vec<String> = targets
                    .into_iter()
                    .filter(|n| !state.clocked.contains(n))
                    .collect();
                if targets.is_empty() {
                    return Injected::NotYet;
                }
                record.nodes = targets.clone();
                // Remember before applying: a failure half-way must still be
                // healed.
                state.clocked.extend(targets.iter().cloned());
                let applied = {
                    let mut clocks = self.clocks.lock().await;
                    targets
                        .iter()
                        .map(|n| Ok((n.clone(), clocks.apply(n, change)?)))
                        .collect::<anyhow::Result<BTreeMap<String, Lead>>>()
                };
                match applied {
                    Ok(leads) => {
                        let mut extra = change.describe();
                        if let Some(e) = extra.as_object_mut() {
                            e.insert("lead_ms".into(), leads_value(&leads));
                        }
                        let at = self.record_effect(
                            "clock",
                            &targets,
                            &fault.target.to_string(),
                            decided.elapsed(),
                            extra,
                        );
                        tracing::info!(nodes = ?targets, %change, "clocks moved");
                        record.effective_ns = Some(at);
                        Injected::Done(record, Some((heal_at(at), FaultKind::Clock, targets)))
                    }
                    Err(e) => {
                        tracing::error!(error = %format!("{e:#}"), "clock fault failed");
                        record.note = Some(format!("failed: {e:#}"));
                        Injected::Done(record, Some((start_ns, FaultKind::Clock, targets)))
                    }
                }
            }
            FaultKind::Partition => {
                let topology = fault.topology.unwrap_or(Topology::Isolate);
                if topology == Topology::Isolate && targets.is_empty() {
                    return Injected::NotYet;
                }
                let all: Vec<String> = self.facts.iter().map(|f| f.name.clone()).collect();
                let grudge = grudge(topology, &all, &targets, from.as_deref(), rng);
                let names = grudge_names(&grudge);
                let cut: Vec<String> = names.keys().cloned().collect();
                record.nodes = cut.clone();
                let mut extra = json!({"topology": topology.as_str(), "grudge": names});
                if let (Some(e), serde_json::Value::Object(l)) =
                    (extra.as_object_mut(), leader_value)
                {
                    e.extend(l);
                }
                state.grudges.insert(slot, grudge);
                let applied = self.put_partitions(nodes, state).await;
                match applied {
                    Ok(latency) => {
                        let at = self.record_effect(
                            "partition",
                            &cut,
                            &fault.target.to_string(),
                            latency,
                            extra,
                        );
                        tracing::info!(
                            drops = ?names,
                            latency_us = latency.as_micros() as u64,
                            "partitioned"
                        );
                        record.effective_ns = Some(at);
                        Injected::Done(record, Some((heal_at(at), FaultKind::Partition, cut)))
                    }
                    Err(e) => {
                        tracing::error!(error = %format!("{e:#}"), "partition failed");
                        record.note = Some(format!("failed: {e:#}"));
                        Injected::Done(record, Some((start_ns, FaultKind::Partition, cut)))
                    }
                }
            }
            FaultKind::Packet => {
                if state.shaping {
                    return Injected::Skipped("a packet fault is already in force".into());
                }
                if targets.is_empty() {
                    return Injected::NotYet;
                }
                let shape = fault.packet.unwrap_or_default();
                let links = packet_links(&self.facts, &targets, from.as_deref());
                if links.is_empty() {
                    return Injected::Skipped(format!(
                        "no link between {} and {}",
                        fault.target,
                        fault
                            .from
                            .as_ref()
                            .map_or("the other nodes".to_owned(), Target::to_string)
                    ));
                }
                let rules =
                    match packet_rules(&self.facts, &links, shape, packet_seed(self.seed, fault)) {
                        Ok(r) => r,
                        Err(e) => return Injected::Skipped(format!("{e}")),
                    };
                let shaped_nodes: Vec<String> = links.keys().cloned().collect();
                record.nodes = shaped_nodes.clone();
                state.shaping = true;
                // Remember before applying: a failure half-way must still
                // be healed.
                state.shaped = Some(Shaped {
                    shape,
                    rules: rules.clone(),
                    links: links.clone(),
                });
                let mut extra = json!({"shape": shape, "links": links});
                if let (Some(e), serde_json::Value::Object(l)) =
                    (extra.as_object_mut(), leader_value)
                {
                    e.extend(l);
                }
                let start = Instant::now();
                let asked: BTreeMap<String, Option<PacketRule>> =
                    rules.into_iter().map(|(n, r)| (n, Some(r))).collect();
                match nodes.set_packets(&asked).await.map(|()| start.elapsed()) {
                    Ok(latency) => {
                        let at = self.record_effect(
                            "packet",
                            &shaped_nodes,
                            &fault.target.to_string(),
                            latency,
                            extra,
                        );
                        tracing::info!(
                            %shape,
                            links = ?links,
                            latency_us = latency.as_micros() as u64,
                            "packets shaped"
                        );
                        record.effective_ns = Some(at);
                        Injected::Done(record, Some((heal_at(at), FaultKind::Packet, shaped_nodes)))
                    }
                    Err(e) => {
                        tracing::error!(error = %format!("{e:#}"), "packet fault failed");
                        record.note = Some(format!("failed: {e:#}"));
                        Injected::Done(record, Some((start_ns, FaultKind::Packet, shaped_nodes)))
                    }
                }
            }
        }
    }

    async fn heal(
        &self,
        nodes: &mut dyn Runtime,
        state: &mut InForce,
        record: &mut FaultRecord,
        active: Active,
        interrupt: &CancellationToken,
    ) {
        let target = record.target.clone();
        let shape = state.shaped.as_ref().map(|s| s.shape);
        let start = Instant::now();
        // A clock reset says how far ahead each node was just before.
        let mut reset_leads: Option<BTreeMap<String, Lead>> = None;
        let outcome: anyhow::Result<Vec<String>> = match active.kind {
            FaultKind::Pause => {
                let result = nodes.signal(&active.nodes, Signal::SIGCONT).await;
                if result.is_ok() {
                    for n in &active.nodes {
                        state.paused.remove(n);
                    }
                }
                result.map(|()| active.nodes.clone())
            }
            FaultKind::Partition => {
                // The others in force stay: the nodes drop what they still
                // ask for.
                state.grudges.remove(&active.record);
                self.put_partitions(nodes, state)
                    .await
                    .map(|_| active.nodes.clone())
            }
            FaultKind::Clock => {
                let mut clocks = self.clocks.lock().await;
                let mut leads = BTreeMap::new();
                let mut failed = None;
                for n in &active.nodes {
                    match clocks.reset(n).await {
                        Ok(lead) => {
                            leads.insert(n.clone(), lead);
                            state.clocked.remove(n);
                        }
                        Err(e) => failed = Some(e.context(format!("reset the clocks of {n}"))),
                    }
                }
                reset_leads = Some(leads);
                match failed {
                    Some(e) => Err(e),
                    None => Ok(active.nodes.clone()),
                }
            }
            FaultKind::Packet => {
                state.shaping = false;
                match &state.shaped {
                    Some(shaped) => {
                        let clear: BTreeMap<String, Option<PacketRule>> =
                            shaped.rules.keys().map(|n| (n.clone(), None)).collect();
                        let result = nodes.set_packets(&clear).await;
                        if result.is_ok() {
                            state.shaped = None;
                        }
                        result.map(|()| active.nodes.clone())
                    }
                    None => Ok(active.nodes.clone()),
                }
            }
            FaultKind::Kill if interrupt.is_cancelled() => Err(anyhow::anyhow!(
                "not started again: the run was interrupted (teardown stops every node)"
            )),
            FaultKind::Kill => {
                let mut restarted = Vec::new();
                let mut failed = None;
                for node in &active.nodes {
                    match self.restart(nodes, state, node, interrupt).await {
                        Ok(()) => restarted.push(node.clone()),
                        Err(e) => failed = Some(e.context(format!("restart {node}"))),
                    }
                }
                match failed {
                    Some(e) => Err(e),
                    None => Ok(restarted),
                }
            }
        };
        let latency = start.elapsed();
        for n in &active.nodes {
            state.busy.remove(n);
        }
        match outcome {
            Ok(healed) => {
                let extra = match (active.kind, &shape, &reset_leads) {
                    (FaultKind::Packet, Some(shape), _) => json!({ "shape": shape }),
                    (FaultKind::Clock, _, Some(leads)) => {
                        json!({ "lead_before_ms": leads_value(leads) })
                    }
                    _ => json!({}),
                };
                let at =
                    self.record_effect(active.kind.heal_name(), &healed, &target, latency, extra);
                record.end_ns = Some(at);
            }
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "heal failed");
                record.note = Some(format!("{} failed: {e:#}", active.kind.heal_name()));
            }
        }
    }

    /// Puts in force the union of the partitions in `state`: each node drops
    /// what any of them asks, nodes no longer cut off get their rules
    /// removed. Returns how long applying took.
    async fn put_partitions(
        &self,
        nodes: &mut dyn Runtime,
        state: &mut InForce,
    ) -> anyhow::Result<Duration> {
        let mut union = Grudge::new();
        for g in state.grudges.values() {
            for (node, dropped) in g {
                union
                    .entry(node.clone())
                    .or_default()
                    .extend(dropped.iter().cloned());
            }
        }
        let drops = partition::drops(&union, &self.facts)?;
        let names = grudge_names(&union);
        let mut apply = drops.clone();
        if let Some(old) = &state.cut {
            for node in old.drops.keys() {
                apply.entry(node.clone()).or_insert_with(Drops::new);
            }
        }
        // Remember before applying: a failure half-way must still be healed,
        // on every node that may carry rules.
        state.cut = Some(Cut {
            drops: apply.clone(),
            grudge: names.clone(),
        });
        let start = Instant::now();
        nodes.set_drops(&apply).await?;
        let latency = start.elapsed();
        state.cut = (!drops.is_empty()).then_some(Cut {
            drops,
            grudge: names,
        });
        Ok(latency)
    }

    /// Starts a killed node again; puts its drop rules back first when a
    /// partition is in force (a container comes back in a new namespace
    /// without them); then waits until a server answers, unless interrupted.
    async fn restart(
        &self,
        nodes: &mut dyn Runtime,
        state: &mut InForce,
        node: &str,
        interrupt: &CancellationToken,
    ) -> anyhow::Result<()> {
        let life = state.incarnations.entry(node.to_owned()).or_insert(0);
        *life += 1;
        let is_worker = self
            .facts
            .iter()
            .any(|f| f.name == node && f.role == Role::Worker);
        let extra = if is_worker {
            vec!["--incarnation".to_owned(), life.to_string()]
        } else {
            Vec::new()
        };
        nodes.restart(node, &extra).await?;
        if let Some(cut) = &state.cut
            && let Some(drops) = cut.drops.get(node).filter(|d| !d.is_empty())
        {
            let start = Instant::now();
            let mine = BTreeMap::from([(node.to_owned(), drops.clone())]);
            nodes
                .set_drops(&mine)
                .await
                .context("put its partition back")?;
            let names = cut.grudge.get(node).cloned().unwrap_or_default();
            self.record_effect(
                "reapply",
                &[node.to_owned()],
                node,
                start.elapsed(),
                json!({"reapplied": "partition", "grudge": {node: names}}),
            );
            tracing::info!(node, "partition reapplied after the restart");
        }
        if let Some(shaped) = &state.shaped
            && let Some(rule) = shaped.rules.get(node)
        {
            let start = Instant::now();
            let mine = BTreeMap::from([(node.to_owned(), Some(rule.clone()))]);
            nodes
                .set_packets(&mine)
                .await
                .context("put its packet rules back")?;
            let names = shaped.links.get(node).cloned().unwrap_or_default();
            self.record_effect(
                "reapply",
                &[node.to_owned()],
                node,
                start.elapsed(),
                json!({"reapplied": "packet", "shape": shaped.shape, "links": {node: names}}),
            );
            tracing::info!(node, "packet rules reapplied after the restart");
        }
        if !is_worker {
            tokio::select! {
                ready = wait_ready(nodes, node, self.ready_limit) => ready?,
                _ = interrupt.cancelled() => anyhow::bail!(
                    "interrupted while waiting for it to answer"
                ),
            }
        }
        Ok(())
    }
}

async fn kill_all(nodes: &mut dyn Runtime, names: &[String]) -> anyhow::Result<()> {
    for name in names {
        nodes.kill(name).await?;
    }
    Ok(())
}

enum Injected {
    /// Injected (or failed trying): the record, and when to heal what.
    Done(FaultRecord, Option<(u64, FaultKind, Vec<String>)>),
    /// No target now; try again shortly.
    NotYet,
    /// Will not be injected.
    Skipped(String),
}

/// A grudge as the history writes it: only nodes that drop something.
fn grudge_names(grudge: &Grudge) -> BTreeMap<String, Vec<String>> {
    grudge
        .iter()
        .filter(|(_, d)| !d.is_empty())
        .map(|(n, d)| (n.clone(), d.iter().cloned().collect()))
        .collect()
}

/// Each node's lead over the host's clocks, for a history event:
/// `{"lock1": {"realtime": 2000.0, "monotonic": 0.0}}`.
fn leads_value(leads: &BTreeMap<String, Lead>) -> serde_json::Value {
    leads
        .iter()
        .map(|(n, l)| {
            (
                n.clone(),
                json!({"realtime": l.realtime_ms, "monotonic": l.monotonic_ms}),
            )
        })
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// The links a packet fault shapes, by receiving node: each target receives
/// from each node of `from` (default: every node that is not a target), and
/// each of those from each target, so the link is shaped both ways as a
/// partition cuts it both ways. A node never shapes its own packets.
fn packet_links(
    facts: &[NodeFacts],
    targets: &[String],
    from: Option<&[String]>,
) -> BTreeMap<String, Vec<String>> {
    let others: Vec<String>;
    let from = match from {
        Some(f) => f,
        None => {
            others = facts
                .iter()
                .map(|f| f.name.clone())
                .filter(|n| !targets.contains(n))
                .collect();
            &others
        }
    };
    let mut links: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for t in targets {
        for f in from.iter().filter(|f| *f != t) {
            links.entry(t.clone()).or_default().insert(f.clone());
            links.entry(f.clone()).or_default().insert(t.clone());
        }
    }
    links
        .into_iter()
        .map(|(n, s)| (n, s.into_iter().collect()))
        .collect()
}

/// Each receiving node's packet rule: the addresses of the nodes it shapes,
/// its own address (where duplicates go) and a seed of its own for the
/// holder's delays.
fn packet_rules(
    facts: &[NodeFacts],
    links: &BTreeMap<String, Vec<String>>,
    shape: Shape,
    seed: u64,
) -> Result<BTreeMap<String, PacketRule>, leasehold_nemesis::NemesisError> {
    let fact = |name: &str| {
        facts
            .iter()
            .find(|f| f.name == name)
            .ok_or_else(|| leasehold_nemesis::NemesisError::UnknownNode(name.to_owned()))
    };
    let mut out = BTreeMap::new();
    for (i, (node, senders)) in links.iter().enumerate() {
        let own = partition::node_ip(fact(node)?)?;
        let from = senders
            .iter()
            .map(|s| partition::node_ip(fact(s)?))
            .collect::<Result<_, _>>()?;
        out.insert(
            node.clone(),
            PacketRule {
                shape,
                from,
                own,
                seed: seed ^ (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15),
            },
        );
    }
    Ok(out)
}

/// The seed of a packet fault's delays: the run's seed, the fault's place in
/// the schedule and its time, so a replay with the same seed draws the same.
fn packet_seed(seed: u64, fault: &ScheduledFault) -> u64 {
    seed ^ (fault.spec as u64).wrapping_mul(0xA24B_AED4_963E_E407) ^ fault.at.as_nanos() as u64
}

/// `3` of `lock3`, to order lock nodes as the run numbers them.
fn lock_number(name: &str) -> u32 {
    name.trim_start_matches(|c: char| !c.is_ascii_digit())
        .parse()
        .unwrap_or(u32::MAX)
}
