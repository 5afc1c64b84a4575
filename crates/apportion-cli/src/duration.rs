//! Durations on the command line: `30s`, `5m`, `1h`, `500ms`, or a plain number of
//! seconds, so that a flag reads the way an operator thinks of it (`--drain-timeout 5m`)
//! while a bare number keeps working as the seconds every other flag takes.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A duration given on the command line; prints back in seconds (`60s`, `1.5s`), the form
/// the messages that quote it use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span(pub Duration);

impl FromStr for Span {
    type Err = String;

    /// Parses a non-negative number (a fraction is allowed) followed by `ms`, `s`, `m`, `h`
    /// or nothing (seconds).
    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let split = text
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let not_a_duration = || "not a duration such as 30s, 5m or 60".to_owned();
        if number.is_empty() {
            return Err(not_a_duration());
        }
        let seconds_per_unit = match unit {
            "" | "s" => 1.0,
            "ms" => 0.001,
            "m" => 60.0,
            "h" => 3600.0,
            _ => {
                return Err(format!(
                    "unknown unit {unit:?} (use ms, s, m or h, or a plain number of seconds)"
                ))
            }
        };
        let value: f64 = number.parse().map_err(|_| not_a_duration())?;
        Duration::try_from_secs_f64(value * seconds_per_unit)
            .map(Span)
            .map_err(|_| "too long a duration".to_owned())
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}s", self.0.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Duration, String> {
        text.parse::<Span>().map(|s| s.0)
    }

    #[test]
    fn units_and_plain_seconds_are_read() {
        assert_eq!(parse("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse("0"), Ok(Duration::ZERO));
    }

    #[test]
    fn nonsense_is_refused_with_the_text() {
        assert!(parse("5 minutes").unwrap_err().contains("unknown unit"));
        assert!(parse("s").unwrap_err().contains("not a duration"));
        assert!(parse("-1s").unwrap_err().contains("not a duration"));
        assert!(parse("1e400").is_err());
    }

    #[test]
    fn prints_in_seconds() {
        assert_eq!(Span(Duration::from_secs(60)).to_string(), "60s");
        assert_eq!(Span(Duration::from_millis(1500)).to_string(), "1.5s");
    }
}
