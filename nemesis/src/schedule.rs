use std::time::Duration;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::clock::ClockChange;
use crate::fault::{FaultKind, FaultSpec, Target, TimelineEntry};
use crate::packet::Shape;
use crate::topology::Topology;

/// Quiet time left at the end of a run after the last fault heals, so that what
/// the fault set in motion (a paused holder waking up and writing) is seen.
pub const SETTLE: Duration = Duration::from_secs(1);

/// One fault of a run's schedule: inject `kind` on `target` at `at` after the run
/// started, and heal it `duration` later.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduledFault {
    /// When it starts, from the start of the run.
    #[serde(with = "humantime_serde")]
    pub at: Duration,
    /// What to inject.
    pub kind: FaultKind,
    /// On which nodes, resolved when it starts.
    pub target: Target,
    /// Partitions: the shape of the grudge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topology: Option<Topology>,
    /// Partitions that isolate: from whom.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Target>,
    /// How long it lasts before it is healed.
    #[serde(with = "humantime_serde")]
    pub duration: Duration,
    /// Clock faults: how the clocks move.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock: Option<ClockChange>,
    /// Which generator of the config made it (timeline entries come after the
    /// generators).
    pub spec: usize,
    /// Packet faults: what happens to the link's packets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub packet: Option<Shape>,
}

impl ScheduledFault {
    /// The most faults [`schedule`] puts in one run. A config is checked
    /// against it before anything starts (see [`FaultSpec::most_faults`]);
    /// `schedule` also stops there, so no input can make it unbounded.
    pub const MAX_PER_RUN: usize = 10_000;

    /// When it is healed, from the start of the run.
    pub fn ends(&self) -> Duration {
        self.at + self.duration
    }
}

impl FaultSpec {
    /// An upper bound of how many faults [`schedule`] draws from this
    /// generator in a run of `run`, whatever the seed: starts are at least
    /// the shortest `every` (and the shortest `for`) apart, from `start_after`
    /// until the last one that could still heal [`SETTLE`] before the end.
    pub fn most_faults(&self, run: Duration) -> u64 {
        let shortest = self.duration.shortest();
        let room = run
            .checked_sub(SETTLE)
            .zip(self.start_after.checked_add(shortest))
            .and_then(|(last_end, first_end)| last_end.checked_sub(first_end));
        let Some(room) = room else { return 0 };
        let Some(every) = self.every else { return 1 };
        let step = every.shortest().max(shortest).as_nanos();
        if step == 0 {
            return u64::MAX;
        }
        u64::try_from(room.as_nanos() / step)
            .unwrap_or(u64::MAX)
            .saturating_add(1)
    }
}

/// Derives the schedule of a run from its fault generators, its scripted
/// timeline and its seed: the same seed gives the same schedule. Faults of one
/// generator never overlap each other, and every generated fault heals at least
/// [`SETTLE`] before the run ends (timeline entries are kept as written). At
/// most [`ScheduledFault::MAX_PER_RUN`] faults: timeline entries first, then
/// each generator's in turn.
pub fn schedule(
    specs: &[FaultSpec],
    timeline: &[TimelineEntry],
    run: Duration,
    seed: u64,
) -> Vec<ScheduledFault> {
    let cap = ScheduledFault::MAX_PER_RUN;
    let mut out: Vec<ScheduledFault> = timeline
        .iter()
        .take(cap)
        .enumerate()
        .map(|(i, e)| ScheduledFault {
            at: e.at,
            kind: e.fault,
            target: e.target.clone(),
            topology: e.topology,
            from: e.from.clone(),
            duration: e.duration,
            clock: e.clock_change(),
            spec: specs.len() + i,
            packet: (e.fault == FaultKind::Packet).then(|| e.shape()),
        })
        .collect();
    let Some(last_end) = run.checked_sub(SETTLE) else {
        out.sort_by_key(|f| (f.at, f.spec));
        return out;
    };
    for (i, spec) in specs.iter().enumerate() {
        // One stream per generator, so adding a generator does not reshuffle the
        // others' schedules.
        let mut rng =
            ChaCha8Rng::seed_from_u64(seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let mut at = spec.start_after;
        while out.len() < cap {
            let duration = spec.duration.sample(&mut rng);
            if at.checked_add(duration).is_none_or(|end| end > last_end) {
                break;
            }
            out.push(ScheduledFault {
                at,
                kind: spec.fault,
                target: spec.target.clone(),
                topology: spec.topology,
                from: spec.from.clone(),
                duration,
                clock: spec.clock_change(),
                spec: i,
                packet: (spec.fault == FaultKind::Packet).then(|| spec.shape()),
            });
            let Some(every) = spec.every else { break };
            // Start to start, but never before this fault has healed.
            at = at.saturating_add(every.sample(&mut rng)).max(at + duration);
            if every.max.is_zero() && duration.is_zero() {
                break;
            }
        }
    }
    out.sort_by_key(|f| (f.at, f.spec));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::span::Span;

    fn spec(every: &str, dur: &str) -> FaultSpec {
        FaultSpec {
            fault: FaultKind::Pause,
            target: Target::Holder,
            topology: None,
            from: None,
            jump: None,
            skew: None,
            strobe: None,
            period: None,
            clocks: None,
            duration: dur.parse().unwrap(),
            every: Some(every.parse::<Span>().unwrap()),
            start_after: Duration::from_secs(1),
            delay: None,
            jitter: None,
            loss: None,
            duplicate: None,
            reorder: None,
        }
    }

    #[test]
    fn fixed_spans_give_a_regular_schedule_that_ends_before_the_run() {
        let s = schedule(&[spec("3s", "2s")], &[], Duration::from_secs(10), 1);
        let starts: Vec<u64> = s.iter().map(|f| f.at.as_secs()).collect();
        assert_eq!(starts, [1, 4, 7], "7s + 2s still heals a second before 10s");
        assert!(
            s.iter()
                .all(|f| f.ends() + SETTLE <= Duration::from_secs(10))
        );
    }

    #[test]
    fn the_same_seed_gives_the_same_schedule_and_another_seed_another() {
        let specs = [spec("1s..4s", "500ms..2s")];
        let run = Duration::from_secs(60);
        assert_eq!(
            schedule(&specs, &[], run, 42),
            schedule(&specs, &[], run, 42)
        );
        assert_ne!(
            schedule(&specs, &[], run, 42),
            schedule(&specs, &[], run, 43)
        );
    }

    #[test]
    fn faults_of_one_generator_never_overlap() {
        for seed in 0..50 {
            let s = schedule(
                &[spec("100ms..3s", "1s..2s")],
                &[],
                Duration::from_secs(30),
                seed,
            );
            assert!(
                s.windows(2).all(|w| w[0].ends() <= w[1].at),
                "seed {seed}: {s:?}"
            );
        }
    }

    #[test]
    fn timeline_entries_are_kept_as_written_among_generated_faults() {
        let timeline: Vec<TimelineEntry> = serde_json::from_str(
            r#"[{"at":"2500ms","kill":"lock1","for":"1s"},{"at":"0s","pause":"w1","for":"3s"}]"#,
        )
        .unwrap();
        let s = schedule(&[spec("3s", "2s")], &timeline, Duration::from_secs(10), 1);
        let seen: Vec<(u64, FaultKind, String)> = s
            .iter()
            .map(|f| (f.at.as_millis() as u64, f.kind, f.target.to_string()))
            .collect();
        assert_eq!(
            seen,
            [
                (0, FaultKind::Pause, "w1".to_owned()),
                (1000, FaultKind::Pause, "holder".to_owned()),
                (2500, FaultKind::Kill, "lock1".to_owned()),
                (4000, FaultKind::Pause, "holder".to_owned()),
                (7000, FaultKind::Pause, "holder".to_owned()),
            ]
        );
    }

    #[test]
    fn a_timeline_entry_names_exactly_one_fault() {
        let two = r#"{"at":"1s","pause":"w1","kill":"w2","for":"1s"}"#;
        assert!(serde_json::from_str::<TimelineEntry>(two).is_err());
        let none = r#"{"at":"1s","for":"1s"}"#;
        assert!(serde_json::from_str::<TimelineEntry>(none).is_err());
    }

    #[test]
    fn no_generator_schedules_more_than_it_says_at_most() {
        let run = Duration::from_secs(30);
        for (every, dur, start) in [
            ("3s", "2s", 1),
            ("10ms", "1ms", 0),
            ("10ms..20ms", "1ms..5ms", 2),
            ("1500us..3ms", "1ms", 0),
            ("5ms", "20ms", 0),
            ("100ms..3s", "1s..2s", 29),
        ] {
            let mut s = spec(every, dur);
            s.start_after = Duration::from_secs(start);
            let most = s.most_faults(run);
            for seed in 0..20 {
                let got = schedule(std::slice::from_ref(&s), &[], run, seed).len() as u64;
                assert!(got <= most, "every {every}, for {dur}: {got} > {most}");
            }
        }
        // Tight for fixed spans: 1s, 4s, 7s.
        assert_eq!(spec("3s", "2s").most_faults(Duration::from_secs(10)), 3);
        let mut once = spec("3s", "2s");
        once.every = None;
        assert_eq!(once.most_faults(Duration::from_secs(10)), 1);
        assert_eq!(once.most_faults(Duration::from_secs(3)), 0, "never fits");
        assert_eq!(
            spec("10ms", "1ms").most_faults(Duration::from_secs(24 * 3600)),
            8_639_800,
            "every 10ms from 1s until a second before 24h"
        );
    }

    #[test]
    fn a_schedule_stops_at_the_most_faults_a_run_takes() {
        // 1ms apart for 30s: 29,000 faults without the cap.
        let s = schedule(&[spec("1ms", "1ms")], &[], Duration::from_secs(30), 0);
        assert_eq!(s.len(), ScheduledFault::MAX_PER_RUN);
        // 1ns apart for a day would be 8.6e13 faults: bounded all the same.
        let s = schedule(
            &[spec("1ns", "1ns")],
            &[],
            Duration::from_secs(24 * 3600),
            0,
        );
        assert_eq!(s.len(), ScheduledFault::MAX_PER_RUN);
        // Timeline entries come first.
        let entry: TimelineEntry =
            serde_json::from_str(r#"{"at":"0s","pause":"w1","for":"1ms"}"#).unwrap();
        let timeline = vec![entry; ScheduledFault::MAX_PER_RUN + 5];
        let s = schedule(&[spec("1ms", "1ms")], &timeline, Duration::from_secs(30), 0);
        assert_eq!(s.len(), ScheduledFault::MAX_PER_RUN);
        // Timeline entries are numbered after the generators.
        assert!(s.iter().all(|f| f.spec >= 1), "only the timeline's");
    }

    #[test]
    fn huge_spans_end_the_schedule_instead_of_overflowing() {
        let mut s = spec("1s", "1s");
        s.start_after = Duration::MAX - Duration::from_millis(500);
        assert!(schedule(&[s.clone()], &[], Duration::MAX, 0).is_empty());
        assert_eq!(s.most_faults(Duration::MAX), 0);
        let s = spec(&format!("{}s", u64::MAX), "1s");
        assert_eq!(schedule(&[s], &[], Duration::MAX, 0).len(), 1);
    }

    #[test]
    fn a_run_too_short_for_any_fault_gets_none() {
        assert!(schedule(&[spec("1s", "2s")], &[], Duration::from_secs(3), 0).is_empty());
        assert!(schedule(&[spec("1s", "2s")], &[], Duration::from_millis(500), 0).is_empty());
    }
}
