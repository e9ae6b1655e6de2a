//! Running the search: one history, or partitions in parallel.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use super::model::Model;
use super::search;
use super::types::{Analysis, Limits, Operation, Partition};
use crate::verdict::Validity;

/// Checks one history (one object) against `model`.
pub fn check_operations<M: Model>(
    model: &M,
    ops: &[Operation<M::Input, M::Output>],
    limits: Limits,
) -> Analysis {
    let start = Instant::now();
    let deadline = limits.deadline.map(|d| start + d);
    analyse(model, "", ops, &limits, deadline, start)
}

fn analyse<M: Model>(
    model: &M,
    key: &str,
    ops: &[Operation<M::Input, M::Output>],
    limits: &Limits,
    deadline: Option<Instant>,
    start: Instant,
) -> Analysis {
    let searched = search::search(model, ops, limits, deadline, key);
    Analysis {
        partition: key.to_owned(),
        result: searched.result,
        ops: searched.ops,
        states: searched.states,
        elapsed: start.elapsed(),
    }
}

/// How many threads a search may use, asked once per process.
fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Checks each partition against `model`, in parallel on
/// min(partitions, available parallelism) threads; the analyses come back in the
/// order of `partitions`. The deadline of `limits` is shared by all partitions;
/// `max_states` applies to each.
pub fn check_partitions<M>(
    model: &M,
    partitions: &[Partition<M::Input, M::Output>],
    limits: Limits,
) -> Vec<Analysis>
where
    M: Model + Sync,
    M::Input: Sync,
    M::Output: Sync,
{
    let start = Instant::now();
    let deadline = limits.deadline.map(|d| start + d);
    // One partition needs no threads, and asking the system how many cores
    // there are (it reads cgroup files) costs more than a small search.
    let workers = if partitions.len() <= 1 {
        1
    } else {
        cores().min(partitions.len())
    };
    let run = |p: &Partition<M::Input, M::Output>| {
        analyse(model, &p.key, &p.ops, &limits, deadline, Instant::now())
    };
    if workers <= 1 {
        return partitions.iter().map(run).collect();
    }
    // Largest partitions first, so that one big partition does not start last.
    let mut order: Vec<usize> = (0..partitions.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(partitions[i].ops.len()));
    let next = AtomicUsize::new(0);
    let mut done: Vec<(usize, Analysis)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let k = next.fetch_add(1, Ordering::Relaxed);
                        let Some(&i) = order.get(k) else { break };
                        mine.push((i, run(&partitions[i])));
                    }
                    mine
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a linearizability worker panicked"))
            .collect()
    });
    done.sort_by_key(|&(i, _)| i);
    done.into_iter().map(|(_, a)| a).collect()
}

/// Invalid if any partition is not linearizable, else unknown if any search hit
/// a limit, else valid.
pub fn combine_analyses(analyses: &[Analysis]) -> Validity {
    analyses
        .iter()
        .fold(Validity::Valid, |v, a| v.combine(a.result.validity()))
}
