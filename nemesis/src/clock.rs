//! Clock faults as data: how far and how a node's clocks move.
//!
//! A [`ClockChange`] says what a `fault: clock` does to the clocks of the
//! nodes it hits; the harness puts it in force through each node's clock
//! control file (see the `leasehold-clock` crate) and undoes it at the heal.
//! Only the node's processes see it: the harness and the history's stamps
//! keep the host's time.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The longest jump or strobe step: a day, far beyond any lease.
pub const MAX_OFFSET: Duration = Duration::from_secs(24 * 3600);
/// The fastest and slowest rate a skew may set.
pub const RATE_RANGE: (f64, f64) = (0.01, 100.0);
/// How often a strobe flips when its config does not say.
pub const DEFAULT_STROBE_PERIOD: Duration = Duration::from_millis(50);
/// The shortest strobe period: the nemesis flips the clock from a timer.
pub const MIN_STROBE_PERIOD: Duration = Duration::from_millis(5);

/// A signed amount of time: `+2s`, `-500ms` (no sign: forward).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ClockOffset {
    ns: i64,
}

impl ClockOffset {
    /// The offset in nanoseconds, negative for backwards.
    pub fn as_nanos(self) -> i64 {
        self.ns
    }

    /// An offset of `ns` nanoseconds.
    pub fn from_nanos(ns: i64) -> Self {
        ClockOffset { ns }
    }

    /// The offset in whole milliseconds.
    pub fn as_millis(self) -> i64 {
        self.ns / 1_000_000
    }
}

impl fmt::Display for ClockOffset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.ns < 0 { '-' } else { '+' };
        let abs = Duration::from_nanos(self.ns.unsigned_abs());
        write!(f, "{sign}{}", humantime::format_duration(abs))
    }
}

impl FromStr for ClockOffset {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (negative, rest) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s.strip_prefix('+').unwrap_or(s)),
        };
        let d = humantime::parse_duration(rest.trim())
            .map_err(|e| format!("{s:?} is not a signed duration such as +2s or -500ms: {e}"))?;
        if d > MAX_OFFSET {
            return Err(format!(
                "{s} is more than {} away",
                humantime::format_duration(MAX_OFFSET)
            ));
        }
        let ns = d.as_nanos() as i64;
        Ok(ClockOffset {
            ns: if negative { -ns } else { ns },
        })
    }
}

impl Serialize for ClockOffset {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ClockOffset {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// How fast a skewed clock runs against the real one, in parts per billion
/// (1.5 in a config: 1.5 s of node time per real second).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Rate {
    ppb: i64,
}

impl Rate {
    /// Real speed.
    pub const ONE: Rate = Rate { ppb: 1_000_000_000 };

    /// The rate in parts per billion.
    pub fn ppb(self) -> i64 {
        self.ppb
    }

    /// The rate as a factor.
    pub fn factor(self) -> f64 {
        self.ppb as f64 / 1e9
    }

    /// A rate of `factor` (1.0 is real speed), within [`RATE_RANGE`].
    pub fn new(factor: f64) -> Result<Self, String> {
        let (lo, hi) = RATE_RANGE;
        if !factor.is_finite() || !(lo..=hi).contains(&factor) {
            return Err(format!(
                "{factor} is not a clock rate between {lo} and {hi} (1 is real speed)"
            ));
        }
        Ok(Rate {
            ppb: (factor * 1e9).round() as i64,
        })
    }
}

impl Serialize for Rate {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.factor())
    }
}

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Rate::new(f64::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// Which of a node's clocks a jump or a strobe moves.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Clocks {
    /// The wall clock (CLOCK_REALTIME and its kin): what an NTP step or
    /// `date -s` moves, and what Redis expires keys by.
    #[default]
    Realtime,
    /// The elapsed-time clocks (CLOCK_MONOTONIC, BOOTTIME): what a JVM's
    /// `nanoTime` and most timeouts read. No real fault steps them; a
    /// program that trusts them is tested by moving them anyway.
    Monotonic,
    /// Both.
    Both,
}

impl Clocks {
    /// The name in configs and histories.
    pub fn as_str(self) -> &'static str {
        match self {
            Clocks::Realtime => "realtime",
            Clocks::Monotonic => "monotonic",
            Clocks::Both => "both",
        }
    }

    /// The (realtime, monotonic) offsets that moving these clocks by `by`
    /// sets.
    pub fn offsets(self, by: ClockOffset) -> (i64, i64) {
        let ns = by.as_nanos();
        match self {
            Clocks::Realtime => (ns, 0),
            Clocks::Monotonic => (0, ns),
            Clocks::Both => (ns, ns),
        }
    }
}

/// What a clock fault does to the clocks of the nodes it hits, until healed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClockChange {
    /// The clocks step by `by` once and stay there; the heal steps them back.
    Jump {
        /// How far.
        by: ClockOffset,
        /// Which clocks.
        clocks: Clocks,
    },
    /// Every clock of the node runs at `rate` (both classes, as a fast or
    /// slow oscillator would); the heal takes back what it gained.
    Skew {
        /// How fast.
        rate: Rate,
    },
    /// The clocks jump by `by` and back every `period`, as a flapping NTP
    /// or a VM migrating between hosts does.
    Strobe {
        /// How far each jump goes.
        by: ClockOffset,
        /// Time between two flips.
        #[serde(with = "humantime_serde")]
        period: Duration,
        /// Which clocks.
        clocks: Clocks,
    },
}

/// The clock settings of one fault as a config writes them (fields beside
/// `fault:`), before they are checked.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ClockFields {
    /// `jump: +2s`.
    pub jump: Option<ClockOffset>,
    /// `skew: 1.5`.
    pub skew: Option<Rate>,
    /// `strobe: 200ms`.
    pub strobe: Option<ClockOffset>,
    /// `period: 50ms` (strobes).
    pub period: Option<Duration>,
    /// `clocks: realtime` (jumps and strobes).
    pub clocks: Option<Clocks>,
}

/// A clock setting that does not fit its fault: the field to point at and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClockFieldError {
    /// The field of the fault's entry: `jump`, `period`, …
    pub field: &'static str,
    /// What is wrong.
    pub message: String,
}

impl ClockFields {
    /// The change a fault with these fields makes: `None` for a fault that is
    /// not a clock fault (which must then have none of them). A clock fault
    /// takes exactly one of `jump`, `skew` and `strobe`; `period` goes with
    /// `strobe` only, `clocks` not with `skew`.
    pub fn change(&self, is_clock: bool) -> Result<Option<ClockChange>, ClockFieldError> {
        let err = |field: &'static str, message: String| ClockFieldError { field, message };
        let named = [
            ("jump", self.jump.is_some()),
            ("skew", self.skew.is_some()),
            ("strobe", self.strobe.is_some()),
            ("period", self.period.is_some()),
            ("clocks", self.clocks.is_some()),
        ];
        if !is_clock {
            return match named.iter().find(|(_, set)| *set) {
                Some((field, _)) => Err(err(field, format!("only a clock fault takes `{field}`"))),
                None => Ok(None),
            };
        }
        let kinds: Vec<&'static str> = named[..3]
            .iter()
            .filter(|(_, set)| *set)
            .map(|(f, _)| *f)
            .collect();
        let clocks = self.clocks.unwrap_or_default();
        let change = match kinds.as_slice() {
            [] => {
                return Err(err(
                    "fault",
                    "a clock fault takes one of `jump: +2s`, `skew: 1.5` or `strobe: 200ms`".into(),
                ));
            }
            ["jump"] => {
                let by = self.jump.expect("jump is set");
                if by.as_nanos() == 0 {
                    return Err(err("jump", "a jump of 0 moves nothing".into()));
                }
                if self.period.is_some() {
                    return Err(err("period", "only a strobe takes `period`".into()));
                }
                ClockChange::Jump { by, clocks }
            }
            ["skew"] => {
                let rate = self.skew.expect("skew is set");
                if rate == Rate::ONE {
                    return Err(err(
                        "skew",
                        "a rate of 1 is real speed: it moves nothing".into(),
                    ));
                }
                if self.period.is_some() {
                    return Err(err("period", "only a strobe takes `period`".into()));
                }
                if self.clocks.is_some() {
                    return Err(err(
                        "clocks",
                        "a skew runs every clock of the node at its rate; `clocks` is for jumps \
                         and strobes"
                            .into(),
                    ));
                }
                ClockChange::Skew { rate }
            }
            ["strobe"] => {
                let by = self.strobe.expect("strobe is set");
                if by.as_nanos() == 0 {
                    return Err(err("strobe", "a strobe of 0 moves nothing".into()));
                }
                let period = self.period.unwrap_or(DEFAULT_STROBE_PERIOD);
                if period < MIN_STROBE_PERIOD {
                    return Err(err(
                        "period",
                        format!(
                            "must be at least {}",
                            humantime::format_duration(MIN_STROBE_PERIOD)
                        ),
                    ));
                }
                ClockChange::Strobe { by, period, clocks }
            }
            [other] => unreachable!("{other} is one of jump, skew and strobe"),
            [first, second, ..] => {
                return Err(err(
                    second,
                    format!(
                        "a clock fault takes one of `jump`, `skew` and `strobe`, not `{first}` and `{second}`"
                    ),
                ));
            }
        };
        Ok(Some(change))
    }
}

impl ClockChange {
    /// The fields a config writes for this change (the inverse of
    /// [`ClockFields::change`]).
    pub fn fields(&self) -> ClockFields {
        match *self {
            ClockChange::Jump { by, clocks } => ClockFields {
                jump: Some(by),
                clocks: (clocks != Clocks::default()).then_some(clocks),
                ..ClockFields::default()
            },
            ClockChange::Skew { rate } => ClockFields {
                skew: Some(rate),
                ..ClockFields::default()
            },
            ClockChange::Strobe { by, period, clocks } => ClockFields {
                strobe: Some(by),
                period: Some(period),
                clocks: (clocks != Clocks::default()).then_some(clocks),
                ..ClockFields::default()
            },
        }
    }

    /// The change as a history event's value: what was asked, in numbers.
    pub fn describe(&self) -> serde_json::Value {
        match *self {
            ClockChange::Jump { by, clocks } => serde_json::json!({
                "change": "jump", "by": by.to_string(), "clocks": clocks.as_str(),
            }),
            ClockChange::Skew { rate } => serde_json::json!({
                "change": "skew", "rate": rate.factor(),
            }),
            ClockChange::Strobe { by, period, clocks } => serde_json::json!({
                "change": "strobe", "by": by.to_string(), "clocks": clocks.as_str(),
                "period_ms": period.as_millis() as u64,
            }),
        }
    }
}

impl fmt::Display for ClockChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClockChange::Jump { by, clocks } => write!(f, "jump {by} ({})", clocks.as_str()),
            ClockChange::Skew { rate } => write!(f, "skew ×{}", rate.factor()),
            ClockChange::Strobe { by, period, clocks } => write!(
                f,
                "strobe {by} every {} ({})",
                humantime::format_duration(*period),
                clocks.as_str()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_parse_with_a_sign_and_print_back() {
        for (text, ns) in [
            ("+2s", 2_000_000_000),
            ("2s", 2_000_000_000),
            ("-500ms", -500_000_000),
            ("+1m 30s", 90_000_000_000),
        ] {
            let o: ClockOffset = text.parse().unwrap();
            assert_eq!(o.as_nanos(), ns, "{text}");
            assert_eq!(o.to_string().parse::<ClockOffset>().unwrap(), o);
        }
        assert_eq!(
            "-500ms".parse::<ClockOffset>().unwrap().to_string(),
            "-500ms"
        );
        assert!("soon".parse::<ClockOffset>().is_err());
        assert!("+2d".parse::<ClockOffset>().is_err(), "beyond a day");
    }

    #[test]
    fn rates_are_bounded_and_finite() {
        assert_eq!(Rate::new(1.5).unwrap().ppb(), 1_500_000_000);
        for bad in [0.0, -1.0, 1000.0, f64::NAN, f64::INFINITY] {
            assert!(Rate::new(bad).is_err(), "{bad}");
        }
    }

    fn fields(jump: Option<&str>, skew: Option<f64>, strobe: Option<&str>) -> ClockFields {
        ClockFields {
            jump: jump.map(|j| j.parse().unwrap()),
            skew: skew.map(|s| Rate::new(s).unwrap()),
            strobe: strobe.map(|s| s.parse().unwrap()),
            ..ClockFields::default()
        }
    }

    #[test]
    fn a_clock_fault_takes_exactly_one_change() {
        let jump = fields(Some("+2s"), None, None).change(true).unwrap();
        assert_eq!(
            jump,
            Some(ClockChange::Jump {
                by: "+2s".parse().unwrap(),
                clocks: Clocks::Realtime
            })
        );
        assert_eq!(jump.unwrap().fields().change(true).unwrap(), jump);
        let strobe = fields(None, None, Some("200ms"))
            .change(true)
            .unwrap()
            .unwrap();
        assert_eq!(strobe.fields().change(true).unwrap(), Some(strobe));
        let none = ClockFields::default().change(true).unwrap_err();
        assert_eq!(none.field, "fault");
        let two = fields(Some("+2s"), Some(1.5), None)
            .change(true)
            .unwrap_err();
        assert_eq!(two.field, "skew", "{two:?}");
        let zero = fields(Some("0s"), None, None).change(true).unwrap_err();
        assert_eq!(zero.field, "jump");
        let mut skew_clocks = fields(None, Some(2.0), None);
        skew_clocks.clocks = Some(Clocks::Both);
        assert_eq!(skew_clocks.change(true).unwrap_err().field, "clocks");
        let mut jump_period = fields(Some("1s"), None, None);
        jump_period.period = Some(Duration::from_millis(10));
        assert_eq!(jump_period.change(true).unwrap_err().field, "period");
    }

    #[test]
    fn other_faults_take_no_clock_field() {
        assert_eq!(ClockFields::default().change(false), Ok(None));
        let e = fields(None, Some(1.5), None).change(false).unwrap_err();
        assert_eq!(e.field, "skew");
        assert!(e.message.contains("only a clock fault"), "{}", e.message);
    }

    #[test]
    fn offsets_go_to_the_clocks_asked_for() {
        let by: ClockOffset = "+2s".parse().unwrap();
        assert_eq!(Clocks::Realtime.offsets(by), (2_000_000_000, 0));
        assert_eq!(Clocks::Monotonic.offsets(by), (0, 2_000_000_000));
        assert_eq!(Clocks::Both.offsets(by), (2_000_000_000, 2_000_000_000));
    }
}
