//! Counts of HTTP requests by route and status. A route is a row of the route table (its
//! method and path pattern, never the raw path), or, for a request that matched no row, its
//! method alone (one of a fixed few, any other as `OTHER`), so the label set stays bounded
//! whatever clients send. The statuses the API answers have one relaxed atomic each per route;
//! any other status goes to a small map behind a lock, which the API never reaches in practice.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use super::text::Exposition;

/// A row of the route table, as it is labelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteLabel {
    pub method: &'static str,
    pub pattern: &'static str,
}

/// The `route` label of a request that matched no row.
pub const UNMATCHED: &str = "(unmatched)";

/// The methods an unmatched request is counted under; anything else is `OTHER`.
const UNMATCHED_METHODS: [&str; 8] = [
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "OTHER",
];

/// Statuses counted without a lock: every status the API answers.
const STATUSES: [u16; 17] = [
    200, 201, 202, 204, 400, 401, 403, 404, 405, 408, 409, 413, 415, 422, 429, 500, 503,
];

/// Which route a request is counted under.
#[derive(Clone, Copy, Debug)]
pub enum RouteSlot {
    /// The row at this index of the table given to [`HttpRequests::new`].
    Row(usize),
    /// No row matched; the request's method.
    Unmatched(&'static str),
}

pub struct HttpRequests {
    routes: Vec<RouteLabel>,
    /// `STATUSES.len()` counters per route row, then per unmatched method.
    counts: Box<[AtomicU64]>,
    /// (slot, status) for statuses outside `STATUSES`.
    other: Mutex<BTreeMap<(usize, u16), u64>>,
}

impl HttpRequests {
    pub fn new(routes: Vec<RouteLabel>) -> HttpRequests {
        let slots = routes.len() + UNMATCHED_METHODS.len();
        HttpRequests {
            routes,
            counts: (0..slots * STATUSES.len())
                .map(|_| AtomicU64::new(0))
                .collect(),
            other: Mutex::new(BTreeMap::new()),
        }
    }

    /// The unmatched slot of a method.
    pub fn unmatched_method(method: &str) -> &'static str {
        UNMATCHED_METHODS
            .iter()
            .find(|m| **m == method)
            .copied()
            .unwrap_or("OTHER")
    }

    fn slot(&self, route: RouteSlot) -> usize {
        match route {
            RouteSlot::Row(index) if index < self.routes.len() => index,
            RouteSlot::Row(_) => self.routes.len() + UNMATCHED_METHODS.len() - 1,
            RouteSlot::Unmatched(method) => {
                let offset = UNMATCHED_METHODS
                    .iter()
                    .position(|m| *m == method)
                    .unwrap_or(UNMATCHED_METHODS.len() - 1);
                self.routes.len() + offset
            }
        }
    }

    /// Counts one answered request.
    pub fn record(&self, route: RouteSlot, status: u16) {
        let slot = self.slot(route);
        match STATUSES.iter().position(|s| *s == status) {
            Some(index) => {
                self.counts[slot * STATUSES.len() + index].fetch_add(1, Ordering::Relaxed);
            }
            None => {
                let mut other = self
                    .other
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                *other.entry((slot, status)).or_insert(0) += 1;
            }
        }
    }

    fn labels(&self, slot: usize) -> (&'static str, &'static str) {
        match self.routes.get(slot) {
            Some(route) => (route.method, route.pattern),
            None => (
                UNMATCHED_METHODS
                    .get(slot - self.routes.len())
                    .copied()
                    .unwrap_or("OTHER"),
                UNMATCHED,
            ),
        }
    }

    /// The samples of `name` (a counter family already started): one per route and status
    /// seen at least once.
    pub fn expose(&self, out: &mut Exposition, name: &str) {
        let mut samples: BTreeMap<(usize, u16), u64> = self
            .other
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone();
        for (i, count) in self.counts.iter().enumerate() {
            let count = count.load(Ordering::Relaxed);
            if count > 0 {
                samples.insert((i / STATUSES.len(), STATUSES[i % STATUSES.len()]), count);
            }
        }
        for ((slot, status), count) in samples {
            let (method, route) = self.labels(slot);
            let status = status.to_string();
            out.sample(
                name,
                &[("method", method), ("route", route), ("status", &status)],
                count as f64,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_counted_by_route_row_or_unmatched_method_and_status() {
        let requests = HttpRequests::new(vec![
            RouteLabel {
                method: "GET",
                pattern: "/a/{id}",
            },
            RouteLabel {
                method: "POST",
                pattern: "/a",
            },
        ]);
        requests.record(RouteSlot::Row(0), 200);
        requests.record(RouteSlot::Row(0), 200);
        requests.record(RouteSlot::Row(1), 422);
        requests.record(RouteSlot::Row(1), 418);
        let method = HttpRequests::unmatched_method("BREW");
        requests.record(RouteSlot::Unmatched(method), 404);
        requests.record(
            RouteSlot::Unmatched(HttpRequests::unmatched_method("GET")),
            404,
        );
        let mut out = Exposition::new();
        requests.expose(&mut out, "r");
        assert_eq!(
            out.finish(),
            "r{method=\"GET\",route=\"/a/{id}\",status=\"200\"} 2\n\
             r{method=\"POST\",route=\"/a\",status=\"418\"} 1\n\
             r{method=\"POST\",route=\"/a\",status=\"422\"} 1\n\
             r{method=\"GET\",route=\"(unmatched)\",status=\"404\"} 1\n\
             r{method=\"OTHER\",route=\"(unmatched)\",status=\"404\"} 1\n"
        );
    }
}
