//! The filter's counters and gauges in Envoy's stats (`tokengate.*`).

use proxy_wasm::hostcalls;
use proxy_wasm::types::MetricType;
use std::cell::Cell;

use tokengate_core::host::Counter;
use tokengate_core::metrics::Metric;

/// Counter and gauge ids, defined once per VM in `on_configure`.
#[derive(Default)]
pub struct Metrics {
    ids: Vec<(Metric, u32)>,
    /// `questions.in_flight` and `questions.waiting`, and what this VM added to them so far
    /// (every VM adds its own counts: the gauges are the sums over the workers).
    gauges: [(Option<u32>, Cell<i64>); 2],
}

impl Counter for Metrics {
    fn count(&self, metric: Metric) {
        if let Some((_, id)) = self.ids.iter().find(|(m, _)| *m == metric) {
            let _ = hostcalls::increment_metric(*id, 1);
        }
    }
}

impl Metrics {
    pub fn define() -> Self {
        let define = |kind, name: &str| hostcalls::define_metric(kind, name).ok();
        let ids = Metric::ALL
            .into_iter()
            .filter_map(|metric| Some((metric, define(MetricType::Counter, metric.name())?)))
            .collect();
        let gauge = |name| (define(MetricType::Gauge, name), Cell::new(0));
        let gauges = [
            gauge("tokengate.questions.in_flight"),
            gauge("tokengate.questions.waiting"),
        ];
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
