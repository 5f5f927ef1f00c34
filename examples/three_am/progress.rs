//! One progress bar per strategy, ticking on the run's (virtual) clock.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// A bar of `jobs` jobs labelled `name`.
pub(crate) fn bar(name: &str, jobs: usize) -> ProgressBar {
    let bar = ProgressBar::new(jobs as u64);
    if let Ok(style) =
        ProgressStyle::with_template("{prefix:>22} [{bar:30.cyan/blue}] {pos:>5}/{len} jobs  {msg}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_prefix(name.to_owned());
    bar
}

/// The bar's message: the simulated time and what the server has seen so far.
pub(crate) fn status(at: Duration, requests: u64, throttled: u64) -> String {
    format!(
        "t={:>5.0}s  requests={requests:>7}  429s={throttled:>7}",
        at.as_secs_f64()
    )
}
