//! Reading a `metrics_util` debugging recorder as text, for the metrics tests.

use std::collections::BTreeMap;
use std::future::Future;

use metrics_util::debugging::{DebugValue, DebuggingRecorder};

/// A metric as `name{label=value,…}` (labels sorted), and its value as text.
pub(crate) fn read(recorder: &DebuggingRecorder) -> BTreeMap<String, String> {
    recorder
        .snapshotter()
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let key = key.key();
            let mut labels: Vec<String> = key
                .labels()
                .map(|l| format!("{}={}", l.key(), l.value()))
                .collect();
            labels.sort();
            let value = match value {
                DebugValue::Counter(n) => n.to_string(),
                DebugValue::Gauge(g) => g.0.to_string(),
                DebugValue::Histogram(samples) => {
                    format!("{:?}", samples.iter().map(|s| s.0).collect::<Vec<f64>>())
                }
            };
            (format!("{}{{{}}}", key.name(), labels.join(",")), value)
        })
        .collect()
}

/// Runs `scenario` on a paused current-thread runtime with a local debugging recorder: what it
/// returned, and every metric it emitted (see [`read`]).
pub(crate) fn recorded<T>(scenario: impl Future<Output = T>) -> (T, BTreeMap<String, String>) {
    let recorder = DebuggingRecorder::new();
    let runtime = paused_runtime();
    let output = metrics::with_local_recorder(&recorder, || runtime.block_on(scenario));
    (output, read(&recorder))
}

/// A current-thread runtime in paused (virtual) time.
pub(crate) fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap()
}
