use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A duration, fixed (`3s`) or drawn uniformly from a range (`2s..4s`) with the
/// run's seed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    /// The shortest duration of the range.
    pub min: Duration,
    /// The longest; equal to `min` for a fixed duration.
    pub max: Duration,
}

impl Span {
    /// Always `d`.
    pub fn fixed(d: Duration) -> Self {
        Span { min: d, max: d }
    }

    /// The shortest duration [`Span::sample`] can draw: `min`, or `min` cut to
    /// the millisecond when the span is a range.
    pub fn shortest(&self) -> Duration {
        if self.min.as_millis() >= self.max.as_millis() {
            self.min
        } else {
            Duration::from_millis(self.min.as_millis() as u64)
        }
    }

    /// Draws a duration, to the millisecond.
    pub fn sample(&self, rng: &mut impl rand::Rng) -> Duration {
        use rand::RngExt;
        let (lo, hi) = (self.min.as_millis() as u64, self.max.as_millis() as u64);
        if lo >= hi {
            return self.min;
        }
        Duration::from_millis(rng.random_range(lo..=hi))
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |d: Duration| humantime::format_duration(d).to_string();
        if self.min == self.max {
            f.write_str(&show(self.min))
        } else {
            write!(f, "{}..{}", show(self.min), show(self.max))
        }
    }
}

impl FromStr for Span {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parse = |p: &str| {
            humantime::parse_duration(p.trim())
                .map_err(|e| format!("{p:?} is not a duration like 500ms or 2s: {e}"))
        };
        let span = match s.split_once("..") {
            Some((a, b)) => Span {
                min: parse(a)?,
                max: parse(b)?,
            },
            None => Span::fixed(parse(s)?),
        };
        if span.min > span.max {
            return Err(format!("range {s:?} ends before it starts"));
        }
        Ok(span)
    }
}

impl Serialize for Span {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_fixed_and_ranges() {
        assert_eq!(
            "2s".parse::<Span>().unwrap(),
            Span::fixed(Duration::from_secs(2))
        );
        let r: Span = "500ms..1s".parse().unwrap();
        assert_eq!(r.min, Duration::from_millis(500));
        assert_eq!(r.max, Duration::from_secs(1));
        assert!("2s..1s".parse::<Span>().is_err());
        assert!("soon".parse::<Span>().is_err());
        assert_eq!(r.to_string(), "500ms..1s");
    }

    #[test]
    fn nothing_drawn_is_shorter_than_the_shortest() {
        use rand::SeedableRng;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        for text in ["1500us..3ms", "2500us", "1ns..1ms", "10ms..10ms"] {
            let span: Span = text.parse().unwrap();
            let least = (0..2000).map(|_| span.sample(&mut rng)).min().unwrap();
            assert!(least >= span.shortest(), "{text}: drew {least:?}");
            assert!(span.shortest() <= span.min, "{text}");
        }
        let span: Span = "1500us..3ms".parse().unwrap();
        assert_eq!(
            span.shortest(),
            Duration::from_millis(1),
            "a range draws whole ms"
        );
    }
}
