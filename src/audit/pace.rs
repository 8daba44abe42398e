//! The audit's rate limit against the API server: every request it makes (list pages, report writes
//! and deletions) first waits for its turn, at most `--api-qps` requests per second. A plain interval
//! with no burst: an audit is a long, steady stream of requests, and a burst would land on the API
//! server at the moment admission needs it most (a rollout after a policy change).

use std::time::Duration;

use tokio::time::Instant;

/// Spaces requests at least `interval` apart.
#[derive(Debug)]
pub struct Pacer {
    interval: Duration,
    next: Option<Instant>,
}

impl Pacer {
    /// At most `qps` requests per second; `0` means no limit.
    pub fn per_second(qps: u32) -> Pacer {
        let interval = match qps {
            0 => Duration::ZERO,
            n => Duration::from_secs(1) / n,
        };
        Pacer {
            interval,
            next: None,
        }
    }

    /// Waits until the next request may be sent.
    pub async fn wait(&mut self) {
        if self.interval.is_zero() {
            return;
        }
        let now = Instant::now();
        let at = self.next.filter(|at| *at > now).unwrap_or(now);
        tokio::time::sleep_until(at).await;
        self.next = Some(at + self.interval);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn requests_are_spaced_by_the_interval_without_a_burst() {
        let mut pacer = Pacer::per_second(10);
        let start = Instant::now();
        for _ in 0..5 {
            pacer.wait().await;
        }
        assert_eq!(start.elapsed(), Duration::from_millis(400));
    }

    #[tokio::test(start_paused = true)]
    async fn zero_means_no_limit() {
        let mut pacer = Pacer::per_second(0);
        let start = Instant::now();
        for _ in 0..100 {
            pacer.wait().await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
    }
}
