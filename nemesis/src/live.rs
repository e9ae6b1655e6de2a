use std::collections::HashMap;

use leasehold_checker::{Event, EventType};

/// What the nemesis knows of the run as it goes, learned from the history's
/// events as they arrive: who holds the lock and whether they have used it.
#[derive(Clone, Debug, Default)]
pub struct LiveState {
    holds: HashMap<String, Hold>,
    grants: u64,
}

#[derive(Clone, Debug)]
struct Hold {
    /// Order of the grant among all grants seen, to pick the newest holder.
    seq: u64,
    used: bool,
}

impl LiveState {
    /// Feeds one event of a client process.
    pub fn observe(&mut self, e: &Event) {
        let Some(node) = e.node.as_deref() else {
            return;
        };
        match (e.f.as_str(), e.kind) {
            ("acquire", EventType::Ok) => {
                self.grants += 1;
                self.holds.insert(
                    node.to_owned(),
                    Hold {
                        seq: self.grants,
                        used: false,
                    },
                );
            }
            // Renewing counts as using the lease: a fault meant to catch a holder
            // before it acts must land before its renew too.
            ("write" | "renew", EventType::Invoke) => {
                if let Some(h) = self.holds.get_mut(node) {
                    h.used = true;
                }
            }
            ("release", EventType::Invoke) | ("renew", EventType::Fail | EventType::Info) => {
                self.holds.remove(node);
            }
            _ => {}
        }
    }

    /// The newest holder that has not yet written with its token nor renewed
    /// its lease, if any.
    pub fn holder(&self) -> Option<&str> {
        self.holds
            .iter()
            .filter(|(_, h)| !h.used)
            .max_by_key(|(_, h)| h.seq)
            .map(|(n, _)| n.as_str())
    }

    /// Every node that believes it holds the lock (zombies included).
    pub fn holders(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.holds.keys().map(String::as_str).collect();
        v.sort();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use leasehold_checker::Process;

    fn ev(node: &str, kind: EventType, f: &str) -> Event {
        Event {
            index: 0,
            time: 0,
            process: Process::Client(0),
            node: Some(node.into()),
            kind,
            f: f.into(),
            value: serde_json::Value::Null,
            error: None,
        }
    }

    #[test]
    fn the_holder_is_the_newest_grant_not_yet_used() {
        let mut live = LiveState::default();
        assert_eq!(live.holder(), None);
        live.observe(&ev("w1", EventType::Ok, "acquire"));
        assert_eq!(live.holder(), Some("w1"));
        live.observe(&ev("w1", EventType::Invoke, "write"));
        assert_eq!(live.holder(), None, "w1 already wrote");
        live.observe(&ev("w2", EventType::Ok, "acquire"));
        assert_eq!(live.holder(), Some("w2"));
        live.observe(&ev("w3", EventType::Ok, "acquire"));
        assert_eq!(live.holder(), Some("w3"));
        live.observe(&ev("w3", EventType::Invoke, "renew"));
        assert_eq!(
            live.holder(),
            Some("w2"),
            "w3 renewed: only w2 is still untouched"
        );
        assert_eq!(live.holders(), ["w1", "w2", "w3"]);
        live.observe(&ev("w3", EventType::Invoke, "release"));
        live.observe(&ev("w2", EventType::Fail, "renew"));
        live.observe(&ev("w1", EventType::Invoke, "release"));
        assert_eq!(live.holder(), None);
        assert!(live.holders().is_empty());
    }
}
