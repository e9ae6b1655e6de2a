//! Plays a run's fault schedule against its nodes and records every action in
//! the history. Whatever happens, the faults it injected are healed before it
//! returns.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use leasehold_checker::{Event, EventType, Process};
use leasehold_nemesis::{FaultEffect, LiveState, Nemesis, NodeFacts, Resolution, ScheduledFault};
use leasehold_nodes::RunClock;
use leasehold_results::FaultRecord;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::json;
use tokio::sync::mpsc::UnboundedSender;
use tokio_util::sync::CancellationToken;

/// How long a fault waits for its target to exist (e.g. for someone to hold the
/// lock) before it is skipped.
const TARGET_WAIT: Duration = Duration::from_secs(1);
/// How often a waiting fault looks again.
const POLL: Duration = Duration::from_millis(2);

pub struct Driver {
    pub schedule: Vec<ScheduledFault>,
    pub facts: Vec<NodeFacts>,
    pub live: Arc<Mutex<LiveState>>,
    pub events: UnboundedSender<Event>,
    pub clock: RunClock,
    /// When the workload started, on the run clock: the schedule's times count
    /// from here, not from the start of setup.
    pub origin_ns: u64,
    pub seed: u64,
}

struct Heal {
    due: u64,
    record: usize,
    nodes: Vec<String>,
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

    fn record_effect(&self, effect: &FaultEffect, target: &str) -> u64 {
        self.record_event(
            effect.f,
            json!({"nodes": effect.nodes, "target": target, "latency_us": effect.latency.as_micros() as u64}),
        )
    }

    /// Runs until `stop` is cancelled, then heals and returns what it did.
    pub async fn run(self, stop: CancellationToken) -> Vec<FaultRecord> {
        let mut nemesis = Nemesis::new();
        let mut records: Vec<FaultRecord> = Vec::new();
        let mut heals: Vec<Heal> = Vec::new();
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed ^ 0x6E65_6D65_7369_7300);
        let mut next = 0usize;
        loop {
            let now = self.clock.now();
            // Heal what is due.
            heals.sort_by_key(|h| h.due);
            while heals.first().is_some_and(|h| h.due <= now) {
                let heal = heals.remove(0);
                self.heal(&mut nemesis, &mut records[heal.record], &heal.nodes);
            }
            // Start what is due.
            let mut waiting = false;
            if let Some(fault) = self.schedule.get(next)
                && self.due(fault) <= now
            {
                let found = {
                    let live = self.live.lock().expect("live state lock");
                    fault.target.resolve(&self.facts, &live, &mut rng)
                };
                let nodes: Vec<String> = match found {
                    Resolution::Nodes(n) => {
                        n.into_iter().filter(|n| !nemesis.is_paused(n)).collect()
                    }
                    Resolution::Wait => Vec::new(),
                };
                if !nodes.is_empty() {
                    let (record, heal) = self.inject(&mut nemesis, fault, &nodes);
                    records.push(record);
                    if let Some(due) = heal {
                        heals.push(Heal {
                            due,
                            record: records.len() - 1,
                            nodes,
                        });
                    }
                    next += 1;
                } else if now.saturating_sub(self.due(fault)) > TARGET_WAIT.as_nanos() as u64 {
                    let note = format!(
                        "skipped: no node matched {} within {TARGET_WAIT:?}",
                        fault.target
                    );
                    tracing::warn!(target_nodes = %fault.target, "{note}");
                    records.push(FaultRecord {
                        f: fault.kind.as_str().to_owned(),
                        target: fault.target.to_string(),
                        nodes: Vec::new(),
                        start_ns: now,
                        effective_ns: None,
                        end_ns: None,
                        note: Some(note),
                    });
                    next += 1;
                } else {
                    waiting = true;
                }
            }
            // Sleep until the next thing to do.
            let mut wake = heals.iter().map(|h| h.due).min().unwrap_or(u64::MAX);
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
        let (effect, errors) = nemesis.heal_all();
        for e in &errors {
            tracing::error!(error = %e, "heal failed");
        }
        if !effect.nodes.is_empty() {
            let at = self.record_effect(&effect, "all");
            for r in records
                .iter_mut()
                .filter(|r| r.end_ns.is_none() && r.effective_ns.is_some())
            {
                r.end_ns = Some(at);
            }
        }
        records
    }

    /// Injects one fault; returns its record and when to heal it.
    fn inject(
        &self,
        nemesis: &mut Nemesis,
        fault: &ScheduledFault,
        nodes: &[String],
    ) -> (FaultRecord, Option<u64>) {
        let start_ns = self.clock.now();
        let targets: Vec<&NodeFacts> = self
            .facts
            .iter()
            .filter(|f| nodes.contains(&f.name))
            .collect();
        let mut record = FaultRecord {
            f: fault.kind.as_str().to_owned(),
            target: fault.target.to_string(),
            nodes: nodes.to_vec(),
            start_ns,
            effective_ns: None,
            end_ns: None,
            note: None,
        };
        match nemesis.pause(&targets) {
            Ok(effect) => {
                let at = self.record_effect(&effect, &fault.target.to_string());
                tracing::info!(nodes = ?effect.nodes, latency_us = effect.latency.as_micros() as u64, "paused");
                record.effective_ns = Some(at);
                (record, Some(at + fault.duration.as_nanos() as u64))
            }
            Err(e) => {
                tracing::error!(error = %e, "pause failed");
                record.note = Some(format!("failed: {e}"));
                // Heal at once whatever part of it took.
                (record, Some(start_ns))
            }
        }
    }

    fn heal(&self, nemesis: &mut Nemesis, record: &mut FaultRecord, nodes: &[String]) {
        match nemesis.resume(nodes) {
            Ok(effect) => {
                let at = self.record_effect(&effect, &record.target);
                record.end_ns = Some(at);
            }
            Err(e) => {
                tracing::error!(error = %e, "resume failed");
                record.note = Some(format!("resume failed: {e}"));
            }
        }
    }
}
