//! The search itself, as pure functions over indexes: delta debugging
//! (Zeller's ddmin) over a set of items, a pass that tries removing each
//! single item, and halving a length while the failure stays. What a test
//! does (replay a config) is a closure: `Some(true)` the candidate fails,
//! `Some(false)` it does not, `None` stop the search (the budget ran out or
//! the user stopped it); then the best failing set so far comes back,
//! marked incomplete.

use std::collections::HashMap;
use std::time::Duration;

/// What a search ended with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reduced {
    /// The smallest failing set found, as indexes in their original order.
    pub kept: Vec<usize>,
    /// The search finished: no single index of `kept` can be removed without
    /// the failure going away. False when it was stopped early.
    pub complete: bool,
}

/// Reduces `all` (a set that fails) to a 1-minimal failing subset: ddmin
/// (split into n chunks, try each chunk, then each complement, refine to
/// 2n chunks when neither fails), then a pass removing each single item
/// until none can be. Each distinct subset is tested at most once.
pub fn ddmin(all: &[usize], fails: impl FnMut(&[usize]) -> Option<bool>) -> Reduced {
    let mut memo = Memo {
        seen: HashMap::new(),
        fails,
    };
    let mut cur = all.to_vec();
    let mut n = 2usize;
    while cur.len() >= 2 {
        let chunks = split(&cur, n);
        let mut next = None;
        for chunk in &chunks {
            match memo.test(chunk) {
                None => return incomplete(cur),
                Some(true) => {
                    next = Some((chunk.clone(), 2));
                    break;
                }
                Some(false) => {}
            }
        }
        // With two chunks each complement is the other chunk: tried already.
        if next.is_none() && chunks.len() > 2 {
            for skip in 0..chunks.len() {
                let complement: Vec<usize> = chunks
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| *i != skip)
                    .flat_map(|(_, c)| c.iter().copied())
                    .collect();
                match memo.test(&complement) {
                    None => return incomplete(cur),
                    Some(true) => {
                        next = Some((complement, (n - 1).max(2)));
                        break;
                    }
                    Some(false) => {}
                }
            }
        }
        match next {
            Some((smaller, m)) => {
                cur = smaller;
                n = m;
            }
            None if n >= cur.len() => break,
            None => n = (2 * n).min(cur.len()),
        }
    }
    one_minimal(cur, |s| memo.test(s))
}

/// Removes single items of `cur` (a set that fails) while the rest still
/// fails, until no single item can be removed.
pub fn one_minimal(
    mut cur: Vec<usize>,
    mut fails: impl FnMut(&[usize]) -> Option<bool>,
) -> Reduced {
    let mut i = 0;
    while i < cur.len() {
        let without: Vec<usize> = cur
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, x)| *x)
            .collect();
        match fails(&without) {
            None => return incomplete(cur),
            // What was kept before may be removable now: start over.
            Some(true) => {
                cur = without;
                i = 0;
            }
            Some(false) => i += 1,
        }
    }
    Reduced {
        kept: cur,
        complete: true,
    }
}

/// Halves `start` (whole milliseconds) while the shorter value still fails
/// and stays at least `floor`; the shortest failing value, and whether the
/// search finished (a value that passed or the floor stopped it).
pub fn halve(
    start: Duration,
    floor: Duration,
    mut fails: impl FnMut(Duration) -> Option<bool>,
) -> (Duration, bool) {
    let mut best = start;
    loop {
        let half = Duration::from_millis((best.as_millis() / 2) as u64);
        if half < floor || half.is_zero() || half == best {
            return (best, true);
        }
        match fails(half) {
            None => return (best, false),
            Some(true) => best = half,
            Some(false) => return (best, true),
        }
    }
}

fn incomplete(kept: Vec<usize>) -> Reduced {
    Reduced {
        kept,
        complete: false,
    }
}

/// `items` in `n` chunks of nearly equal size, in order (fewer when there
/// are fewer items).
fn split(items: &[usize], n: usize) -> Vec<Vec<usize>> {
    let n = n.clamp(1, items.len().max(1));
    let mut chunks = Vec::with_capacity(n);
    let mut start = 0;
    for k in 0..n {
        let end = start + (items.len() - start) / (n - k);
        chunks.push(items[start..end].to_vec());
        start = end;
    }
    chunks.retain(|c| !c.is_empty());
    chunks
}

/// Tests each distinct subset once.
struct Memo<F> {
    seen: HashMap<Vec<usize>, bool>,
    fails: F,
}

impl<F: FnMut(&[usize]) -> Option<bool>> Memo<F> {
    fn test(&mut self, subset: &[usize]) -> Option<bool> {
        if let Some(known) = self.seen.get(subset) {
            return Some(*known);
        }
        let verdict = (self.fails)(subset)?;
        self.seen.insert(subset.to_vec(), verdict);
        Some(verdict)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fails iff the set holds 3, or holds both 1 and 4.
    fn culprit(s: &[usize]) -> bool {
        s.contains(&3) || (s.contains(&1) && s.contains(&4))
    }

    #[test]
    fn finds_the_single_culprit_among_many() {
        let all: Vec<usize> = (0..8).filter(|i| *i != 1).collect();
        let mut tests = 0;
        let r = ddmin(&all, |s| {
            tests += 1;
            Some(culprit(s))
        });
        assert_eq!(
            r,
            Reduced {
                kept: vec![3],
                complete: true
            }
        );
        assert!(tests < 20, "{tests} tests");
    }

    #[test]
    fn finds_a_pair_that_fails_only_together() {
        let all: Vec<usize> = (0..8).filter(|i| *i != 3).collect();
        let r = ddmin(&all, |s| Some(culprit(s)));
        assert_eq!(r.kept, vec![1, 4]);
        assert!(r.complete);
        // 1-minimal: removing either makes the failure go away.
        assert!(!culprit(&[1]) && !culprit(&[4]));
    }

    #[test]
    fn either_culprit_is_minimal_when_both_are_there() {
        let all: Vec<usize> = (0..6).collect();
        let r = ddmin(&all, |s| Some(culprit(s)));
        assert!(r.complete);
        assert!(r.kept == vec![3] || r.kept == vec![1, 4], "{:?}", r.kept);
    }

    #[test]
    fn a_failure_that_needs_no_item_shrinks_to_none() {
        let r = ddmin(&[0, 1, 2], |_| Some(true));
        assert_eq!(r.kept, Vec::<usize>::new());
        assert!(r.complete);
        let r = ddmin(&[], |_| Some(true));
        assert_eq!(r.kept, Vec::<usize>::new());
    }

    #[test]
    fn a_stopped_search_keeps_the_best_so_far_and_says_so() {
        let all: Vec<usize> = (0..8).collect();
        let mut left = 2;
        let r = ddmin(&all, |s| {
            if left == 0 {
                return None;
            }
            left -= 1;
            Some(s.contains(&6))
        });
        assert!(!r.complete);
        // The first chunk {0..3} passed, the second {4..7} failed.
        assert_eq!(r.kept, vec![4, 5, 6, 7]);
    }

    #[test]
    fn each_subset_is_tested_once() {
        let all: Vec<usize> = (0..10).collect();
        let mut seen = std::collections::HashSet::new();
        let r = ddmin(&all, |s| {
            assert!(seen.insert(s.to_vec()), "{s:?} tested twice");
            Some(s.contains(&7) && s.contains(&2))
        });
        assert_eq!(r.kept, vec![2, 7]);
    }

    #[test]
    fn halving_stops_at_the_first_pass_and_at_the_floor() {
        let ms = Duration::from_millis;
        let (d, done) = halve(ms(2000), ms(1), |d| Some(d >= ms(600)));
        assert_eq!((d, done), (ms(1000), true));
        let (d, done) = halve(ms(2000), ms(300), |_| Some(true));
        assert_eq!((d, done), (ms(500), true));
        let (d, done) = halve(ms(2000), ms(1), |_| None);
        assert_eq!((d, done), (ms(2000), false));
    }

    #[test]
    fn split_covers_every_item_once() {
        for len in 0..12 {
            let items: Vec<usize> = (0..len).collect();
            for n in 1..14 {
                let chunks = split(&items, n);
                let joined: Vec<usize> = chunks.concat();
                assert_eq!(joined, items, "len {len} n {n}");
                assert!(chunks.len() <= n.max(1));
            }
        }
    }
}
