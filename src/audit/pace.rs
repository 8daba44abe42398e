//! The audit's request discipline against the API server. Every request it makes (list pages, report
//! writes and deletions) first waits for its turn, at most `--api-qps` requests per second: a plain
//! interval with no burst, since an audit is a long, steady stream of requests and a burst would land on
//! the API server at the moment admission needs it most (a rollout after a policy change). A request the
//! API server turns away for now (429 from API Priority and Fairness or a CRD whose storage is still
//! initialising, 5xx, a dropped connection) is tried again after a growing pause ([`retrying`]).

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

/// Pauses before the retries of a request the API server turned away for now.
const BACKOFF: [Duration; 4] = [
    Duration::from_millis(250),
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(2),
];

/// True for an error that may pass if the request is sent again: the API server asked to slow down
/// (429) or failed for now (5xx), or the connection failed.
pub fn is_transient(error: &kube::Error) -> bool {
    match error {
        kube::Error::Api(status) => status.code == 429 || (500..600).contains(&status.code),
        kube::Error::HyperError(_) | kube::Error::Service(_) => true,
        _ => false,
    }
}

/// Runs `request`, and again after each pause of [`BACKOFF`] while it fails with a transient error.
pub async fn retrying<T, F, Fut>(mut request: F) -> kube::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = kube::Result<T>>,
{
    for pause in BACKOFF {
        match request().await {
            Err(error) if is_transient(&error) => {
                tracing::debug!(error = %error, pause_ms = pause.as_millis() as u64, "audit: API request retried");
                tokio::time::sleep(pause).await;
            }
            result => return result,
        }
    }
    request().await
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

    fn status(code: u16) -> kube::Error {
        kube::Error::Api(kube::core::ErrorResponse {
            status: "Failure".into(),
            message: "storage is (re)initializing".into(),
            reason: "TooManyRequests".into(),
            code,
        })
    }

    #[tokio::test(start_paused = true)]
    async fn transient_errors_are_retried_with_growing_pauses_and_others_are_not() {
        let start = Instant::now();
        let mut calls = 0;
        let result: kube::Result<u32> = retrying(|| {
            calls += 1;
            let n = calls;
            async move {
                if n < 3 {
                    Err(status(429))
                } else {
                    Ok(n)
                }
            }
        })
        .await;
        assert_eq!(result.unwrap(), 3);
        assert_eq!(start.elapsed(), Duration::from_millis(750));

        // A refusal is final at once; a transient error is tried once more after each pause.
        for (code, expected_calls) in [(403, 1), (503, BACKOFF.len() + 1)] {
            let mut calls = 0;
            let result: kube::Result<()> = retrying(|| {
                calls += 1;
                async move { Err(status(code)) }
            })
            .await;
            assert!(result.is_err(), "{code}");
            assert_eq!(calls, expected_calls, "{code}");
        }
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
