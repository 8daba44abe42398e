//! Duration parsers: `server::http::parse_go_duration` (the API server's `?timeout=`, Go's
//! `time.Duration` syntax) and `cli::test::parse_duration` (`--timeout` of `regate test`/`serve`).
//! Nothing may panic, and a Go duration that parses is never negative (Duration cannot be) and is the
//! sum of its parts: `<a><b>` (two well-formed parts) parses to the sum of `<a>` and `<b>`, within
//! rounding.
#![no_main]

use libfuzzer_sys::fuzz_target;
use regate::cli::test::parse_duration;
use regate::server::http::{parse_go_duration, query_timeout};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = parse_duration(text);
    let _ = query_timeout(Some(text));
    let whole = parse_go_duration(text);
    // Split after the first unit (the first digit that follows a non-digit): both halves must parse
    // when the whole does, and add up to it.
    let bytes = text.trim().as_bytes();
    let split = (1..bytes.len()).find(|&i| {
        let (a, b) = (bytes[i - 1], bytes[i]);
        !(a.is_ascii_digit() || a == b'.') && (b.is_ascii_digit() || b == b'.')
    });
    if let (Some(whole), Some(i)) = (whole, split) {
        let t = text.trim();
        let (a, b) = (parse_go_duration(&t[..i]), parse_go_duration(&t[i..]));
        let (Some(a), Some(b)) = (a, b) else {
            panic!(
                "{t:?} parses but its parts {:?} and {:?} do not",
                &t[..i],
                &t[i..]
            );
        };
        let sum = a.as_secs_f64() + b.as_secs_f64();
        let got = whole.as_secs_f64();
        assert!(
            (sum - got).abs() <= 1e-6 * sum.max(1.0),
            "{t:?} is {got}s but its parts add up to {sum}s"
        );
    }
});
