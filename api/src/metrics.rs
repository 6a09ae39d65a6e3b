//! `/metrics` in the Prometheus text format.
//!
//! Counters and histograms go through the `metrics` facade (the engine records its own: executions,
//! transitions, task latency, store flushes); one process-wide Prometheus recorder renders them.

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
