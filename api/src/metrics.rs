//! `/metrics` in the Prometheus text format.
//!
//! Counters and histograms go through the `metrics` facade (the engine records its own: executions,
//! transitions, task latency, store flushes); one process-wide Prometheus recorder renders them.

use std::collections::HashMap;
use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The process-wide recorder, installed on first use. `None` when another recorder was installed
/// first (an embedding program's own), in which case `/metrics` says so.
pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let buckets = [
                0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                1.0, 2.5, 5.0, 10.0,
            ];
            PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &buckets)
                .ok()?
                .install_recorder()
                .ok()
        })
        .as_ref()
}

pub fn render() -> String {
    match handle() {
        Some(handle) => handle.render(),
        None => "# metrics recorder unavailable: another recorder is installed\n".into(),
    }
}

/// The HTTP metrics of one (method, route, status), registered once: building the label set and
/// looking it up in the recorder's registry for every request cost more than the request's own
/// routing.
#[derive(Clone)]
pub struct HttpMetrics {
    pub requests: metrics::Counter,
    pub duration: metrics::Histogram,
}

/// By route, then (method, status): looked up without building a key.
type HttpCache = HashMap<String, Vec<(axum::http::Method, u16, HttpMetrics)>>;

static HTTP: OnceLock<std::sync::RwLock<HttpCache>> = OnceLock::new();

/// Past this many routes the handles are not cached (routes are few; this only bounds memory
/// if something unexpected ends up in the route label).
const MAX_CACHED_ROUTES: usize = 1024;
const MAX_CACHED_PER_ROUTE: usize = 64;

/// The handles for one request's labels.
pub fn http(method: &axum::http::Method, route: &str, status: u16) -> HttpMetrics {
    let cache = HTTP.get_or_init(Default::default);
    let find = |cache: &HttpCache| {
        cache.get(route).and_then(|entries| {
            entries
                .iter()
                .find(|(m, s, _)| m == method && *s == status)
                .map(|(_, _, found)| found.clone())
        })
    };
    if let Some(found) = find(
        &cache
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner()),
    ) {
        return found;
    }
    let made = HttpMetrics {
        requests: metrics::counter!(
            "stepyard_http_requests_total",
            "method" => method.to_string(),
            "route" => route.to_owned(),
            "status" => status.to_string()
        ),
        duration: metrics::histogram!(
            "stepyard_http_request_duration_seconds",
            "route" => route.to_owned()
        ),
    };
    let mut cache = cache
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if find(&cache).is_none() && (cache.len() < MAX_CACHED_ROUTES || cache.contains_key(route)) {
        let entries = cache.entry(route.to_owned()).or_default();
        // Any method name is valid HTTP: past a few dozen per route, stop caching.
        if entries.len() < MAX_CACHED_PER_ROUTE {
            entries.push((method.clone(), status, made.clone()));
        }
    }
    made
}
