//! Request budgets: login and register attempts per client IP (a small burst, then one attempt
//! every few seconds), and requests per authenticated user. Over budget: 429 with `Retry-After`.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use uuid::Uuid;

use crate::config::GatewaySettings;
use crate::error::ApiError;

#[derive(Debug)]
pub struct Limits {
    auth: DefaultKeyedRateLimiter<IpAddr>,
    users: DefaultKeyedRateLimiter<Uuid>,
    clock: DefaultClock,
}

fn quota(every: Duration, burst: u32) -> Quota {
    let burst = NonZeroU32::new(burst.max(1)).unwrap_or(NonZeroU32::MIN);
    Quota::with_period(every.max(Duration::from_micros(1)))
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
        .allow_burst(burst)
}

impl Limits {
    pub fn new(settings: &GatewaySettings) -> Self {
        let user_every = Duration::from_secs(1) / settings.user_per_second.max(1);
        Self {
            auth: DefaultKeyedRateLimiter::keyed(quota(
                Duration::from_secs(settings.auth_refill_secs.max(1)),
                settings.auth_burst,
            )),
            users: DefaultKeyedRateLimiter::keyed(quota(user_every, settings.user_burst)),
            clock: DefaultClock::default(),
        }
    }

    /// One login or register attempt from `ip`.
    pub fn check_auth(&self, ip: IpAddr) -> Result<(), ApiError> {
        self.auth
            .check_key(&ip)
            .map_err(|not_until| ApiError::RateLimited {
                retry_after_secs: not_until
                    .wait_time_from(self.clock.now())
                    .as_secs_f64()
                    .ceil() as u64,
            })
    }

    /// One request from an authenticated user.
    pub fn check_user(&self, user: Uuid) -> Result<(), ApiError> {
        self.users
            .check_key(&user)
            .map_err(|not_until| ApiError::RateLimited {
                retry_after_secs: not_until
                    .wait_time_from(self.clock.now())
                    .as_secs_f64()
                    .ceil() as u64,
            })
    }

    /// Forgets keys whose budget is full again (bounded memory under many clients).
    pub fn sweep(&self) {
        self.auth.retain_recent();
        self.users.retain_recent();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sixth_attempt_in_a_burst_is_refused_with_a_wait() {
        let limits = Limits::new(&GatewaySettings::default());
        let ip: IpAddr = "192.0.2.7".parse().expect("ip");
        for _ in 0..5 {
            limits.check_auth(ip).expect("within the burst");
        }
        match limits.check_auth(ip) {
            Err(ApiError::RateLimited { retry_after_secs }) => {
                assert!((1..=12).contains(&retry_after_secs))
            }
            other => panic!("expected 429, got {other:?}"),
        }
        limits
            .check_auth("192.0.2.8".parse().expect("ip"))
            .expect("another IP has its own budget");
    }
}
