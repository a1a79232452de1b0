//! Exponential backoff with jitter: the one rule behind every retry (the API client's requests,
//! the engine's polls and listings, inbox files, the sandbox's webhook deliveries).
//!
//! A function, not `backon`: each caller waits its own way (a sleep in the client, a due time
//! in the engine's schedule, a timer on the sandbox's test clock), so all they share is how
//! long; `backon` brings its own sleeping loop, which only the client could use.

use std::time::Duration;

use rand::Rng;

/// The wait after the `attempt`-th retry (0-based): `base · 2^attempt`, capped at `max`, then
/// scaled to between half and all of it by `jitter` (0 to 1), so that clients that failed
/// together do not come back in lockstep.
pub fn delay(base: Duration, max: Duration, attempt: u32, jitter: f64) -> Duration {
    let exponential = base.saturating_mul(1u32 << attempt.min(30)).min(max);
    exponential.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
}

/// [`delay`] with a random jitter.
pub fn jittered(base: Duration, max: Duration, attempt: u32) -> Duration {
    delay(base, max, attempt, rand::rng().random::<f64>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap_and_the_jitter_keeps_at_least_half() {
        let (base, max) = (Duration::from_secs(5), Duration::from_secs(3600));
        assert_eq!(delay(base, max, 0, 1.0), Duration::from_secs(5));
        assert_eq!(delay(base, max, 3, 1.0), Duration::from_secs(40));
        assert_eq!(delay(base, max, 3, 0.0), Duration::from_secs(20));
        assert_eq!(delay(base, max, 64, 1.0), max);
        assert_eq!(delay(base, max, 64, 7.0), max, "jitter is clamped");
        for attempt in 0..40 {
            let wait = jittered(base, max, attempt);
            let full = delay(base, max, attempt, 1.0);
            assert!(wait >= full / 2 && wait <= full, "{attempt}: {wait:?}");
        }
    }
}
