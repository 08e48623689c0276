//! Fault injection for the fake Graph: rules that fire on chosen routes a chosen number of
//! times, and seeded random faults that replay identically from their seed.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// A misbehaviour of the service or the network.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// 429 `activityLimitReached`, with `Retry-After: n` seconds when `Some(n)`.
    Throttle(Option<u64>),
    /// 503 `serviceNotAvailable`, with `Retry-After` when `Some(n)`.
    Unavailable(Option<u64>),
    /// 429 `activityLimitReached` with this `Retry-After` value as it is: an HTTP date,
    /// or something unreadable.
    ThrottleWith(String),
    /// 500 `generalException`.
    ServerError,
    /// The connection is closed before the request is handled.
    Drop,
    /// The request is handled, then the connection is closed without an answer (for an
    /// upload fragment: the bytes were received).
    DropAfter,
    /// The request is handled and its answer cut after a few bytes.
    Truncate,
    /// An upload fragment is checked, only its first `n` bytes are kept, and the connection
    /// is closed: a partial acceptance that leaves the next range mid-fragment.
    AcceptPartly(u64),
    /// The upload session addressed expires (404 from then on).
    ExpireSession,
    /// A delta request is answered 410 `resyncRequired` with a `Location` to start over.
    Resync,
}

/// A rule: `fault` on requests whose route starts with `route_prefix`, after skipping
/// `skip` matching requests, `times` times.
#[derive(Clone, Debug)]
pub struct FaultRule {
    route_prefix: String,
    fault: Fault,
    skip: u32,
    times: u32,
}

impl FaultRule {
    /// `fault` once, on the next request whose route (as counted in the request log, e.g.
    /// `PUT /items/{id}:/{path}:/content` or `PUT /upload/{session}`) starts with `route_prefix`.
    pub fn new(route_prefix: impl Into<String>, fault: Fault) -> Self {
        Self {
            route_prefix: route_prefix.into(),
            fault,
            skip: 0,
            times: 1,
        }
    }

    /// Fires `times` times in all.
    pub fn times(mut self, times: u32) -> Self {
        self.times = times;
        self
    }

    /// Lets `skip` matching requests through first (counted from when the rule is added,
    /// whatever other rules do to them).
    pub fn after(mut self, skip: u32) -> Self {
        self.skip = skip;
        self
    }
}

/// Random faults from a seed: each request fails with `probability`, picking among `kinds`.
#[derive(Clone, Debug)]
pub struct RandomFaults {
    /// The seed; the same seed and request sequence give the same faults.
    pub seed: u64,
    /// The chance of a fault per request, in `[0, 1]`.
    pub probability: f64,
    /// The faults drawn from.
    pub kinds: Vec<Fault>,
    /// Only requests whose route starts with this are affected (`""`: all).
    pub route_prefix: String,
}

#[derive(Default)]
pub(crate) struct Faults {
    rules: Vec<FaultRule>,
    random: Option<(RandomFaults, SmallRng)>,
    /// Every fault injected, with its route, in order.
    pub log: Vec<(String, Fault)>,
}

impl Faults {
    pub fn add(&mut self, rule: FaultRule) {
        self.rules.push(rule);
    }

    pub fn set_random(&mut self, random: Option<RandomFaults>) {
        self.random = random.map(|r| {
            let rng = SmallRng::seed_from_u64(r.seed);
            (r, rng)
        });
    }

    pub fn clear(&mut self) {
        self.rules.clear();
        self.random = None;
    }

    /// The fault for this request, if any fires.
    pub fn pick(&mut self, route: &str) -> Option<Fault> {
        // Every matching rule counts every matching request; the first due one fires.
        let mut chosen = None;
        for rule in self.rules.iter_mut() {
            if rule.times == 0 || !route.starts_with(&rule.route_prefix) {
                continue;
            }
            if rule.skip > 0 {
                rule.skip -= 1;
            } else if chosen.is_none() {
                rule.times -= 1;
                chosen = Some(rule.fault.clone());
            }
        }
        self.rules.retain(|r| r.times > 0);
        if chosen.is_none()
            && let Some((random, rng)) = self.random.as_mut()
            && route.starts_with(&random.route_prefix)
            && !random.kinds.is_empty()
            && rng.gen_bool(random.probability.clamp(0.0, 1.0))
        {
            let k = rng.gen_range(0..random.kinds.len());
            chosen = random.kinds.get(k).cloned();
        }
        if let Some(fault) = &chosen {
            self.log.push((route.to_owned(), fault.clone()));
        }
        chosen
    }
}
