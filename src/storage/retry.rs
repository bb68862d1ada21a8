//! Retry, backoff and timeouts, shared by every remote backend.
//!
//! A backend describes one attempt of an operation and says whether its failure is
//! transient ([`Failure::Transient`]: connection errors, 5xx, throttling, a stalled or
//! truncated body) or final; [`retry`] does the rest: a timeout per attempt, exponential
//! backoff with full jitter between attempts (so parallel readers do not retry in
//! lockstep), and a clear error when every attempt failed.

use std::future::Future;
use std::time::Duration;

use super::error::{Cause, StorageError, StorageResult};

/// Limit on establishing a TCP connection (and the TLS handshake). Short on purpose: a
/// connection that takes longer is nearly always a wrong address or a firewall dropping
/// packets, and the attempt is retried anyway.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Attempts for the validation requests a backend makes when it opens: a wrong endpoint
/// or a dead server must be reported in seconds, not after a long retry schedule.
pub const PROBE_ATTEMPTS: u32 = 3;

/// Ceiling of one backoff sleep (the same as the AWS SDK's standard strategy).
pub const MAX_BACKOFF: Duration = Duration::from_secs(20);

/// How hard a backend tries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, at least 1.
    pub max_attempts: u32,
    /// Limit on one attempt, body included: a stalled request is aborted and retried.
    pub attempt_timeout: Duration,
}

impl RetryPolicy {
    /// Default attempts.
    pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;
    /// Default per-attempt timeout: long enough to send a 64 MiB object (the largest
    /// single PUT) over a slow link, short enough that a hung request is noticed.
    pub const DEFAULT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(120);

    /// The same policy with at most `attempts` attempts (for probes).
    pub fn with_attempts(self, attempts: u32) -> RetryPolicy {
        RetryPolicy {
            max_attempts: attempts.clamp(1, self.max_attempts.max(1)),
            ..self
        }
    }

    /// A limit on a whole operation that leaves room for every attempt and the longest
    /// backoffs: only a genuinely stuck operation reaches it.
    pub fn operation_timeout(&self) -> Duration {
        let attempts = self.max_attempts.max(1);
        self.attempt_timeout.saturating_mul(attempts) + MAX_BACKOFF.saturating_mul(attempts - 1)
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: Self::DEFAULT_MAX_ATTEMPTS,
            attempt_timeout: Self::DEFAULT_ATTEMPT_TIMEOUT,
        }
    }
}

/// Backoff before retry number `attempt` (1-based): exponential from 200 ms, capped,
/// with full jitter.
pub fn backoff(attempt: u32) -> Duration {
    let base = Duration::from_millis(200).saturating_mul(1 << attempt.min(16));
    base.min(MAX_BACKOFF).mul_f64(rand::random::<f64>())
}

/// How one attempt failed.
#[derive(Debug)]
pub enum Failure {
    /// Worth another attempt.
    Transient(Cause),
    /// Not worth another attempt: returned as it is.
    Final(StorageError),
}

impl From<StorageError> for Failure {
    fn from(e: StorageError) -> Self {
        Failure::Final(e)
    }
}

/// Runs `attempt` until it succeeds, fails finally, or `policy.max_attempts` attempts
/// failed transiently (then [`StorageError::Unavailable`] with `context` and the last
/// cause). Each attempt is bounded by `policy.attempt_timeout`.
pub async fn retry<T, F, Fut>(
    policy: RetryPolicy,
    context: &str,
    mut attempt: F,
) -> StorageResult<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Failure>>,
{
    let max = policy.max_attempts.max(1);
    let mut n = 1;
    loop {
        let cause = match tokio::time::timeout(policy.attempt_timeout, attempt()).await {
            Ok(Ok(v)) => return Ok(v),
            Ok(Err(Failure::Final(e))) => return Err(e),
            Ok(Err(Failure::Transient(cause))) => cause,
            Err(_) => format!("no answer within {:?}", policy.attempt_timeout).into(),
        };
        if n >= max {
            return Err(StorageError::Unavailable {
                context: context.to_string(),
                attempts: n,
                source: cause,
            });
        }
        tracing::warn!(attempt = n, "{context} failed, retrying: {cause}");
        tokio::time::sleep(backoff(n)).await;
        n += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn quick(attempts: u32) -> RetryPolicy {
        RetryPolicy {
            max_attempts: attempts,
            attempt_timeout: Duration::from_secs(5),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn transient_failures_are_retried_then_reported() {
        let calls = AtomicU32::new(0);
        let got = retry(quick(3), "GET x", || async {
            match calls.fetch_add(1, Ordering::SeqCst) {
                0 => Err(Failure::Transient("reset".into())),
                _ => Ok(7),
            }
        })
        .await;
        assert_eq!(got.unwrap(), 7);
        let err = retry(quick(3), "GET y", || async {
            Err::<(), _>(Failure::Transient("reset".into()))
        })
        .await
        .unwrap_err();
        assert!(
            matches!(err, StorageError::Unavailable { attempts: 3, .. }),
            "{err}"
        );
        assert_eq!(err.to_string(), "GET y: reset (gave up after 3 attempts)");
    }

    #[tokio::test(start_paused = true)]
    async fn final_failures_and_stalls() {
        let calls = AtomicU32::new(0);
        let err = retry(quick(5), "PUT x", || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err::<(), _>(Failure::Final(StorageError::NotFound("x".into())))
        })
        .await
        .unwrap_err();
        assert!(err.is_not_found());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        // A stalled attempt times out and counts as transient.
        let err = retry(quick(2), "GET z", || {
            std::future::pending::<Result<(), Failure>>()
        })
        .await
        .unwrap_err();
        assert!(err.to_string().contains("no answer within"), "{err}");
    }

    #[test]
    fn backoff_is_capped() {
        for n in 1..40 {
            assert!(backoff(n) <= MAX_BACKOFF);
        }
        assert_eq!(quick(3).with_attempts(10).max_attempts, 3);
        assert_eq!(quick(3).with_attempts(0).max_attempts, 1);
    }
}
