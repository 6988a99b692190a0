//! Prometheus metrics (text exposition format, via `prometheus-client`): invocations by function and outcome,
//! latency histograms, queue depth, and the token broker's cache hits, refreshes and a histogram of providers'
//! refresh latency.

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use wasm_host_runtime::TokenBroker;

use crate::admission::Admission;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Invocation {
    function: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Function {
    function: String,
}

type Latency = Family<Function, Histogram, fn() -> Histogram>;
type ProviderLatency = Family<RefreshOutcome, Histogram, fn() -> Histogram>;

pub struct Metrics {
    registry: Registry,
    invocations: Family<Invocation, Counter>,
    latency: Latency,
}

impl Metrics {
    pub fn new(admission: Arc<Admission>, broker: Arc<TokenBroker>) -> Self {
        let mut registry = Registry::default();
        let invocations = Family::<Invocation, Counter>::default();
        registry.register("wasm_host_requests", "Requests answered, by function and outcome", invocations.clone());
        // 50 us to about 26 s.
        let latency: Latency = Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.00005, 2.0, 20)));
        registry.register("wasm_host_request_duration_seconds", "Time from request head to response head, by function", latency.clone());
        // 1 ms to about 33 s: a token endpoint answers in milliseconds; the HTTP client gives up at 30 s.
        let provider: ProviderLatency =
            Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.001, 2.0, 16)));
        registry.register(
            "wasm_host_provider_refresh_seconds",
            "Time providers' token endpoints took to answer a refresh request, by outcome",
            provider.clone(),
        );
        let observed = broker.observe_refreshes(Box::new(move |elapsed, ok| {
            let outcome = if ok { "ok" } else { "failed" };
            provider.get_or_create(&RefreshOutcome { outcome: outcome.to_owned() }).observe(elapsed.as_secs_f64());
        }));
        if !observed {
            tracing::warn!("the token broker reports its refreshes to another server's metrics; provider latency is not counted here");
        }
        registry.register_collector(Box::new(Live { admission, broker }));
        Self { registry, invocations, latency }
    }

    /// Counts one answered request.
    pub fn record(&self, function: &str, outcome: &str, seconds: f64) {
        self.invocations.get_or_create(&Invocation { function: function.to_owned(), outcome: outcome.to_owned() }).inc();
        self.latency.get_or_create(&Function { function: function.to_owned() }).observe(seconds);
    }

    /// The text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}

/// Values read at scrape time from their owners.
struct Live {
    admission: Arc<Admission>,
    broker: Arc<TokenBroker>,
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Live").field("admission", &self.admission).field("broker", &self.broker.stats()).finish()
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefreshOutcome {
    outcome: String,
}

impl Collector for Live {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let gauge = |v: usize| ConstGauge::new(v as i64);
        let queue = gauge(self.admission.queue_depth());
        queue.encode(encoder.encode_descriptor("wasm_host_queue_depth", "Requests waiting for an invocation slot", None, queue.metric_type())?)?;
        let running = gauge(self.admission.running());
        running.encode(encoder.encode_descriptor("wasm_host_invocations_running", "Invocations holding a slot", None, running.metric_type())?)?;
        let stats = self.broker.stats();
        let hits = ConstCounter::new(stats.cache_hits);
        hits.encode(encoder.encode_descriptor(
            "wasm_host_token_cache_hits",
            "Tokens handed out from memory, without reading the store",
            None,
            hits.metric_type(),
        )?)?;
        let mut family = encoder.encode_descriptor(
            "wasm_host_token_refreshes",
            "Refresh requests sent to providers, by outcome",
            None,
            prometheus_client::metrics::MetricType::Counter,
        )?;
        for (outcome, n) in [("ok", stats.refreshes_ok), ("failed", stats.refreshes_failed)] {
            ConstCounter::new(n).encode(family.encode_family(&RefreshOutcome { outcome: outcome.to_owned() })?)?;
        }
        Ok(())
    }
}
