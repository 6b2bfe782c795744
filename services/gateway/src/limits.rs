//! Request budgets: login and register attempts per client address (a small burst, then one
//! attempt every few seconds) and across all clients, refreshes per client address, requests
//! per authenticated user, and live connections per user and per address. Over budget: 429 with
//! `Retry-After`.
//!
//! A client address is an IPv4 address or an IPv6 /64: one host of IPv6 commonly owns a whole
//! /64, so keying by the full address would give it 2^64 budgets.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota};
use uuid::Uuid;

use crate::config::GatewaySettings;
use crate::error::ApiError;

/// What budgets are kept per: an IPv4 address, or the /64 network of an IPv6 address.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(Ipv6Addr::from(prefix))
            }
        },
    }
}

#[derive(Debug)]
pub struct Limits {
    auth: DefaultKeyedRateLimiter<IpAddr>,
    auth_global: DefaultDirectRateLimiter,
    refresh: DefaultKeyedRateLimiter<IpAddr>,
    enroll: DefaultKeyedRateLimiter<IpAddr>,
    users: DefaultKeyedRateLimiter<Uuid>,
    clock: DefaultClock,
    sockets: Arc<Mutex<Sockets>>,
    max_sockets_per_user: usize,
    max_sockets_per_address: usize,
}

#[derive(Debug, Default)]
struct Sockets {
    per_user: HashMap<Uuid, usize>,
    per_address: HashMap<IpAddr, usize>,
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
        let auth_every = Duration::from_secs(settings.auth_refill_secs.max(1));
        Self {
            auth: DefaultKeyedRateLimiter::keyed(quota(auth_every, settings.auth_burst)),
            auth_global: DefaultDirectRateLimiter::direct(quota(
                Duration::from_secs(1) / settings.auth_global_per_second.max(1),
                settings.auth_global_burst,
            )),
            // A dashboard refreshes every few minutes per tab: twice the login budget, refilled
            // twice as fast, is generous for it and still stops a token-guessing flood.
            refresh: DefaultKeyedRateLimiter::keyed(quota(
                auth_every / 2,
                settings.auth_burst.saturating_mul(2),
            )),
            // A fleet rolled out behind one NAT enrols from one address: four times the login
            // budget, refilled four times as fast; a guessed token is still 256 random bits.
            enroll: DefaultKeyedRateLimiter::keyed(quota(
                auth_every / 4,
                settings.auth_burst.saturating_mul(4),
            )),
            users: DefaultKeyedRateLimiter::keyed(quota(user_every, settings.user_burst)),
            clock: DefaultClock::default(),
            sockets: Arc::new(Mutex::new(Sockets::default())),
            max_sockets_per_user: settings.ws_max_per_user,
            max_sockets_per_address: settings.ws_max_per_address,
        }
    }

    fn refused(&self, not_until: governor::NotUntil<<DefaultClock as Clock>::Instant>) -> ApiError {
        ApiError::RateLimited {
            retry_after_secs: not_until
                .wait_time_from(self.clock.now())
                .as_secs_f64()
                .ceil() as u64,
        }
    }

    /// One login or register attempt from `ip`: its address's budget, then everyone's.
    pub fn check_auth(&self, ip: IpAddr) -> Result<(), ApiError> {
        self.auth
            .check_key(&client_key(ip))
            .map_err(|not_until| self.refused(not_until))?;
        self.auth_global
            .check()
            .map_err(|not_until| self.refused(not_until))
    }

    /// One refused API token from `ip`: its address's sign-in budget only, so a flood of forged
    /// tokens locks out its sender, not everyone's logins.
    pub fn check_refused_token(&self, ip: IpAddr) -> Result<(), ApiError> {
        self.auth
            .check_key(&client_key(ip))
            .map_err(|not_until| self.refused(not_until))
    }

    /// One refresh from `ip`.
    pub fn check_refresh(&self, ip: IpAddr) -> Result<(), ApiError> {
        self.refresh
            .check_key(&client_key(ip))
            .map_err(|not_until| self.refused(not_until))
    }

    /// One enrolment attempt from `ip`.
    pub fn check_enroll(&self, ip: IpAddr) -> Result<(), ApiError> {
        self.enroll
            .check_key(&client_key(ip))
            .map_err(|not_until| self.refused(not_until))
    }

    /// One request from an authenticated user.
    pub fn check_user(&self, user: Uuid) -> Result<(), ApiError> {
        self.users
            .check_key(&user)
            .map_err(|not_until| self.refused(not_until))
    }

    /// A live connection from `ip`, held until the returned guard is dropped; 429 when the
    /// address already holds its share.
    pub fn open_socket(&self, ip: IpAddr) -> Result<SocketSlot, ApiError> {
        let key = client_key(ip);
        let mut sockets = self.sockets.lock().unwrap_or_else(|p| p.into_inner());
        let count = sockets.per_address.entry(key).or_default();
        if *count >= self.max_sockets_per_address {
            return Err(ApiError::RateLimited {
                retry_after_secs: 10,
            });
        }
        *count += 1;
        Ok(SocketSlot {
            sockets: self.sockets.clone(),
            address: key,
            user: None,
        })
    }

    /// Counts `slot`'s connection against `user`; `false` when the user already holds their
    /// share (the connection must then close).
    pub fn claim_socket_for(&self, slot: &mut SocketSlot, user: Uuid) -> bool {
        if slot.user == Some(user) {
            return true;
        }
        let mut sockets = self.sockets.lock().unwrap_or_else(|p| p.into_inner());
        let count = sockets.per_user.entry(user).or_default();
        if *count >= self.max_sockets_per_user {
            return false;
        }
        *count += 1;
        slot.user = Some(user);
        true
    }

    /// Forgets keys whose budget is full again (bounded memory under many clients).
    pub fn sweep(&self) {
        self.auth.retain_recent();
        self.refresh.retain_recent();
        self.enroll.retain_recent();
        self.users.retain_recent();
    }
}

/// One open live connection, counted against its address and (once authenticated) its user.
#[derive(Debug)]
pub struct SocketSlot {
    sockets: Arc<Mutex<Sockets>>,
    address: IpAddr,
    user: Option<Uuid>,
}

impl Drop for SocketSlot {
    fn drop(&mut self) {
        let mut sockets = self.sockets.lock().unwrap_or_else(|p| p.into_inner());
        fn release<K: std::hash::Hash + Eq>(map: &mut HashMap<K, usize>, key: &K) {
            if let Some(count) = map.get_mut(key) {
                *count -= 1;
                if *count == 0 {
                    map.remove(key);
                }
            }
        }
        release(&mut sockets.per_address, &self.address);
        if let Some(user) = self.user {
            release(&mut sockets.per_user, &user);
        }
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

    #[test]
    fn ipv6_addresses_share_the_budget_of_their_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().expect("ip");
        let b: IpAddr = "2001:db8:1:2:ffff:1:2:3".parse().expect("ip");
        let other: IpAddr = "2001:db8:1:3::1".parse().expect("ip");
        assert_eq!(client_key(a), client_key(b));
        assert_ne!(client_key(a), client_key(other));
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().expect("ip");
        assert_eq!(
            client_key(mapped),
            "192.0.2.1".parse::<IpAddr>().expect("ip")
        );
    }

    #[test]
    fn everyones_budget_stops_a_flood_from_many_addresses() {
        let settings = GatewaySettings {
            auth_global_burst: 10,
            auth_global_per_second: 1,
            ..GatewaySettings::default()
        };
        let limits = Limits::new(&settings);
        let refused = (0..50u8)
            .filter(|n| limits.check_auth(IpAddr::from([10, 0, 0, *n])).is_err())
            .count();
        assert_eq!(refused, 40);
    }

    #[test]
    fn sockets_are_counted_per_address_and_per_user_and_released() {
        let settings = GatewaySettings {
            ws_max_per_user: 2,
            ws_max_per_address: 3,
            ..GatewaySettings::default()
        };
        let limits = Limits::new(&settings);
        let ip: IpAddr = "192.0.2.9".parse().expect("ip");
        let user = Uuid::new_v4();
        let mut slots: Vec<SocketSlot> = (0..3)
            .map(|_| limits.open_socket(ip).expect("slot"))
            .collect();
        assert!(limits.open_socket(ip).is_err(), "a fourth from one address");
        assert!(limits.claim_socket_for(&mut slots[0], user));
        assert!(limits.claim_socket_for(&mut slots[1], user));
        assert!(
            !limits.claim_socket_for(&mut slots[2], user),
            "a third for one user"
        );
        slots.remove(0);
        assert!(
            limits.claim_socket_for(&mut slots[1], user),
            "released when one closes"
        );
        assert!(limits.open_socket(ip).is_ok());
    }
}
