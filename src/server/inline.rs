//! Which reviews are evaluated on the async worker that received them. Handing a review to the blocking
//! pool costs two thread switches and a cold cache on the other thread: 5-10 % of a review's CPU at
//! 1,000 reviews/s on one core (docs/benchmarks.md). A small review is therefore first evaluated where
//! it arrived, within a short time slice (`--inline-slice`). A review that overruns the slice is
//! evaluated again on the blocking pool with its full budget, and for [`PAUSE`] after that every review
//! goes there directly: a slow policy holds a worker for at most one slice per pause, so requests
//! beyond the evaluation slots are still shed at once.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Largest request body evaluated inline: conversion and evaluation grow with the object, and the
/// evaluator looks at the clock only every few hundred instructions.
pub const MAX_BODY: usize = 64 * 1024;

/// How long inline evaluation stays off after a review overran its slice.
pub const PAUSE: Duration = Duration::from_secs(1);

/// Decides whether a review is evaluated inline, and pauses inline evaluation after an overrun.
#[derive(Debug)]
pub struct InlineGate {
    /// The inline time slice; zero turns inline evaluation off.
    slice: Duration,
    epoch: Instant,
    /// Milliseconds since `epoch` until which inline evaluation is paused.
    paused_until_ms: AtomicU64,
}

impl InlineGate {
    pub fn new(slice: Duration) -> InlineGate {
        InlineGate {
            slice,
            epoch: Instant::now(),
            paused_until_ms: AtomicU64::new(0),
        }
    }

    /// The deadline of an inline evaluation of a `body_len`-byte review that must finish by
    /// `deadline`, or `None` when it is evaluated on the blocking pool.
    pub fn slice_deadline(
        &self,
        body_len: usize,
        now: Instant,
        deadline: Instant,
    ) -> Option<Instant> {
        if self.slice.is_zero()
            || body_len > MAX_BODY
            || self.millis(now) < self.paused_until_ms.load(Ordering::Relaxed)
        {
            return None;
        }
        Some((now + self.slice).min(deadline))
    }

    /// Records that an inline evaluation overran its slice at `now`: inline evaluation pauses.
    pub fn overran(&self, now: Instant) {
        let until = self
            .millis(now)
            .saturating_add(u64::try_from(PAUSE.as_millis()).unwrap_or(u64::MAX));
        self.paused_until_ms.fetch_max(until, Ordering::Relaxed);
    }

    fn millis(&self, now: Instant) -> u64 {
        u64::try_from(now.saturating_duration_since(self.epoch).as_millis()).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case::small_review(Duration::from_millis(2), 2_000, true)]
    #[case::body_at_the_limit(Duration::from_millis(2), MAX_BODY, true)]
    #[case::large_review(Duration::from_millis(2), MAX_BODY + 1, false)]
    #[case::turned_off(Duration::ZERO, 2_000, false)]
    fn small_reviews_are_evaluated_inline(
        #[case] slice: Duration,
        #[case] body_len: usize,
        #[case] inline: bool,
    ) {
        let gate = InlineGate::new(slice);
        let now = Instant::now();
        let deadline = now + Duration::from_secs(5);
        assert_eq!(
            gate.slice_deadline(body_len, now, deadline),
            inline.then(|| now + slice)
        );
    }

    #[test]
    fn the_slice_never_outlasts_the_request_deadline() {
        let gate = InlineGate::new(Duration::from_millis(2));
        let now = Instant::now();
        let deadline = now + Duration::from_micros(500);
        assert_eq!(gate.slice_deadline(100, now, deadline), Some(deadline));
    }

    #[test]
    fn an_overrun_pauses_inline_evaluation_for_a_while() {
        let gate = InlineGate::new(Duration::from_millis(2));
        let now = Instant::now();
        let deadline = now + Duration::from_secs(10);
        gate.overran(now);
        assert_eq!(gate.slice_deadline(100, now, deadline), None);
        let during = now + PAUSE - Duration::from_millis(10);
        assert_eq!(gate.slice_deadline(100, during, deadline), None);
        let after = now + PAUSE + Duration::from_millis(10);
        assert!(gate.slice_deadline(100, after, deadline).is_some());
    }
}
