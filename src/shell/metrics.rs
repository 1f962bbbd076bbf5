//! The filter's counters and gauges in Envoy's stats (`tokengate.*`).

use proxy_wasm::hostcalls;
use proxy_wasm::types::MetricType;
use std::cell::Cell;

use crate::decide::{Counter, DenyReason};

/// Counter and gauge ids, defined once per VM in `on_configure`.
#[derive(Default)]
pub struct Metrics {
    ids: Vec<(String, u32)>,
    /// `questions.in_flight` and `questions.waiting`, and what this VM added to them so far
    /// (every VM adds its own counts: the gauges are the sums over the workers).
    gauges: [(Option<u32>, Cell<i64>); 2],
}

impl Counter for Metrics {
    fn count(&self, name: &str) {
        if let Some((_, id)) = self.ids.iter().find(|(n, _)| n == name) {
            let _ = hostcalls::increment_metric(*id, 1);
        }
    }
}

impl Metrics {
    const FIXED: [&'static str; 16] = [
        "allowed",
        "jwt.signatures_checked_by_host",
        "introspection.callouts",
        "introspection.coalesced",
        "introspection.cache_hit",
        "introspection.cache_miss",
        "introspection.failed.client_rejected",
        "introspection.failed.no_response",
        "introspection.failed.bad_status",
        "introspection.failed.unparsable",
        "directory.cache_hit",
        "directory.cache_miss",
        "directory.callout_failed",
        "jwks.fetch_ok",
        "jwks.fetch_failed",
        "jwks.waited",
    ];

    pub fn define() -> Self {
        let define = |kind, name: &str| hostcalls::define_metric(kind, &format!("tokengate.{name}")).ok();
        let names = Self::FIXED.iter().map(|n| (*n).to_owned());
        let names = names.chain(DenyReason::METRIC_NAMES.iter().map(|r| format!("denied.{r}")));
        let ids = names
            .filter_map(|name| Some((name.clone(), define(MetricType::Counter, &name)?)))
            .collect();
        let gauge = |name| (define(MetricType::Gauge, name), Cell::new(0));
        let gauges = [gauge("questions.in_flight"), gauge("questions.waiting")];
        Self { ids, gauges }
    }

    /// Moves this VM's share of the gauges to `counts`.
    pub fn record(&self, counts: [usize; 2]) {
        for ((id, added), count) in self.gauges.iter().zip(counts) {
            let count = i64::try_from(count).unwrap_or(i64::MAX);
            if let (Some(id), delta @ (..=-1 | 1..)) = (id, count.saturating_sub(added.get())) {
                if hostcalls::increment_metric(*id, delta).is_ok() {
                    added.set(count);
                }
            }
        }
    }
}
