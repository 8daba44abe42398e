//! Durations: the one parser of every duration regate reads, in Go's `time.ParseDuration` syntax
//! (`1m30s`, `2.5s`, `500ms`, `10us` or `10µs`, `100ns`, `1h`, and a plain `0`).
//!
//! - [`parse`]: exactly that syntax, for the API server's `?timeout=` on `/validate` and `/mutate`
//!   ([`crate::server::extract::query_timeout`]), which the API server writes with Go's `Duration.String`.
//! - [`parse_flag`]: the same, and a bare number is seconds (`--timeout 2`), for the duration flags of
//!   `regate serve`; zero is allowed.
//! - [`parse_timeout`]: [`parse_flag`] that rejects zero, for `regate test --timeout`.
//!
//! A duration is never negative. The errors are the messages the CLI prints after clap's
//! `invalid value '...' for '--flag <DURATION>'`.

use std::time::Duration;

const EXPECTED: &str = "expected a duration such as 500ms, 5s or 1m";

/// Parses a Go duration: one or more `<number><unit>` parts (units `h`, `m`, `s`, `ms`, `us`/`µs`, `ns`;
/// the number may have a fraction) that add up, or a plain `0`. Surrounding white space is ignored.
pub fn parse(text: &str) -> Result<Duration, String> {
    let value = text.trim();
    if value == "0" {
        return Ok(Duration::ZERO);
    }
    if value.is_empty() {
        return Err(format!("{value:?}: {EXPECTED}"));
    }
    let mut rest = value;
    let mut seconds = 0f64;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, tail) = rest.split_at(number_len);
        let n: f64 = number
            .parse()
            .map_err(|_| format!("{value:?}: {EXPECTED}"))?;
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        seconds += match unit {
            "h" => n * 3600.0,
            "m" => n * 60.0,
            "s" => n,
            "ms" => n / 1e3,
            // Go accepts both the micro sign (U+00B5) and the Greek mu (U+03BC).
            "us" | "µs" | "μs" => n / 1e6,
            "ns" => n / 1e9,
            "" => {
                return Err(format!(
                    "{value:?}: missing unit after {number} (use ms, s or m)"
                ))
            }
            _ => return Err(format!("{value:?}: unknown unit {unit:?} (use ms, s or m)")),
        };
        rest = tail;
    }
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("{value:?}: {e}"))
}

/// [`parse`], and a bare number (`2`, `1.5`) is seconds. Zero is allowed.
pub fn parse_flag(text: &str) -> Result<Duration, String> {
    let value = text.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        let n: f64 = value
            .parse()
            .map_err(|_| format!("{value:?}: {EXPECTED}"))?;
        return Duration::try_from_secs_f64(n).map_err(|e| format!("{value:?}: {e}"));
    }
    parse(value)
}

/// [`parse_flag`] for a time budget, which must be positive.
pub fn parse_timeout(text: &str) -> Result<Duration, String> {
    let d = parse_flag(text)?;
    if d.is_zero() {
        return Err(format!("{:?}: the timeout must be positive", text.trim()));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    /// What the API server writes as `?timeout=`, and Go's syntax around it.
    #[rstest]
    #[case("10s", Some(Duration::from_secs(10)))]
    #[case("1m0s", Some(Duration::from_secs(60)))]
    #[case("1m30s", Some(Duration::from_secs(90)))]
    #[case("2.5s", Some(Duration::from_millis(2500)))]
    #[case("500ms", Some(Duration::from_millis(500)))]
    #[case("1h2m3s", Some(Duration::from_secs(3723)))]
    #[case("250us", Some(Duration::from_micros(250)))]
    #[case("250µs", Some(Duration::from_micros(250)))]
    #[case("250μs", Some(Duration::from_micros(250)))]
    #[case("1500ns", Some(Duration::from_nanos(1500)))]
    #[case("0", Some(Duration::ZERO))]
    #[case("0s", Some(Duration::ZERO))]
    #[case(" 3s ", Some(Duration::from_secs(3)))]
    #[case("", None)]
    #[case("10", None)]
    #[case("1m30", None)]
    #[case("s", None)]
    #[case("-1s", None)]
    #[case("1.2.3s", None)]
    #[case("5d", None)]
    fn go_durations(#[case] text: &str, #[case] want: Option<Duration>) {
        assert_eq!(parse(text).ok(), want, "{text:?}");
    }

    /// `regate test --timeout`: a bare number is seconds, zero is refused.
    #[rstest]
    #[case("200ms", Duration::from_millis(200))]
    #[case("5s", Duration::from_secs(5))]
    #[case("1.5s", Duration::from_millis(1500))]
    #[case("2", Duration::from_secs(2))]
    #[case("1m", Duration::from_secs(60))]
    #[case("5h", Duration::from_secs(5 * 3600))]
    #[case("1m30s", Duration::from_secs(90))]
    fn timeouts_parse(#[case] text: &str, #[case] want: Duration) {
        assert_eq!(parse_timeout(text), Ok(want));
    }

    #[rstest]
    #[case("")]
    #[case("0")]
    #[case("0s")]
    #[case("0ms")]
    #[case("-1s")]
    #[case("fast")]
    #[case("5d")]
    fn bad_timeouts_are_rejected(#[case] text: &str) {
        assert!(parse_timeout(text).is_err(), "{text:?} parsed");
    }

    /// `regate serve`'s flags: as `--timeout`, and zero in any spelling.
    #[rstest]
    #[case("0", Duration::ZERO)]
    #[case("0s", Duration::ZERO)]
    #[case("0ms", Duration::ZERO)]
    #[case("250ms", Duration::from_millis(250))]
    #[case("30", Duration::from_secs(30))]
    fn flags_parse(#[case] text: &str, #[case] want: Duration) {
        assert_eq!(parse_flag(text), Ok(want));
    }

    /// The messages the CLI prints (after clap's `invalid value ... for '--timeout <DURATION>'`).
    #[rstest]
    #[case("soon", "\"soon\": expected a duration such as 500ms, 5s or 1m")]
    #[case("", "\"\": expected a duration such as 500ms, 5s or 1m")]
    #[case("-1s", "\"-1s\": expected a duration such as 500ms, 5s or 1m")]
    #[case("5d", "\"5d\": unknown unit \"d\" (use ms, s or m)")]
    #[case("1m30", "\"1m30\": missing unit after 30 (use ms, s or m)")]
    #[case(" 0s ", "\"0s\": the timeout must be positive")]
    fn error_messages(#[case] text: &str, #[case] want: &str) {
        assert_eq!(parse_timeout(text), Err(want.to_string()));
    }

    #[test]
    fn an_overflowing_duration_is_an_error() {
        let err = parse_timeout("99999999999999999999999h").unwrap_err();
        assert!(err.starts_with("\"99999999999999999999999h\": "), "{err}");
    }
}
