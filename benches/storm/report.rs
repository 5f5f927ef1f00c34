//! The storm's results: one cell per (scenario, callers, strategy), as Markdown and JSON.

use std::fmt::Write;
use std::time::Duration;

use serde_json::json;

use crate::scenario::Scenario;

/// What one cell measured.
#[derive(Clone, Debug)]
pub(crate) struct Cell {
    pub(crate) scenario: &'static str,
    pub(crate) strategy: &'static str,
    pub(crate) callers: usize,
    pub(crate) calls: u64,
    pub(crate) successes: u64,
    pub(crate) failures: u64,
    pub(crate) reasons: std::collections::BTreeMap<String, u64>,
    pub(crate) unfinished: u64,
    pub(crate) requests: u64,
    pub(crate) throttled: u64,
    pub(crate) server_errors: u64,
    pub(crate) duplicates: u64,
    pub(crate) completion: Duration,
    pub(crate) minimum: Duration,
    pub(crate) limit_rate: f64,
    pub(crate) targets: bool,
    pub(crate) wall: Duration,
}

impl Cell {
    /// Successful calls per second ÷ the limit, over the completion time or the physical
    /// minimum, whichever is longer: a strategy that gives up early does not look fast.
    pub(crate) fn goodput(&self) -> f64 {
        let secs = self.completion.max(self.minimum).as_secs_f64();
        if secs <= 0.0 {
            return 0.0;
        }
        self.successes as f64 / secs / self.limit_rate
    }

    pub(crate) fn amplification(&self) -> f64 {
        self.requests as f64 / self.calls.max(1) as f64
    }

    pub(crate) fn throttled_share(&self) -> f64 {
        self.throttled as f64 / self.requests.max(1) as f64
    }

    pub(crate) fn slowdown(&self) -> f64 {
        self.completion.as_secs_f64() / self.minimum.as_secs_f64()
    }

    /// The targets for ratewise: goodput ≥ 0.97, amplification ≤ 1.03, 429s ≤ 1 %,
    /// no permanent failure, no duplicate, completion ≤ 1.05 × the minimum.
    pub(crate) fn misses(&self) -> Vec<&'static str> {
        let mut misses = Vec::new();
        if self.goodput() < 0.97 {
            misses.push("goodput");
        }
        if self.amplification() > 1.03 {
            misses.push("amplification");
        }
        if self.throttled_share() > 0.01 {
            misses.push("429s");
        }
        if self.failures + self.unfinished > 0 {
            misses.push("failures");
        }
        if self.duplicates > 0 {
            misses.push("duplicates");
        }
        if self.slowdown() > 1.05 {
            misses.push("completion");
        }
        misses
    }
}

pub(crate) fn markdown(scenarios: &[Scenario], cells: &[Cell]) -> String {
    let mut out = String::new();
    for scenario in scenarios {
        let _ = writeln!(
            out,
            "\n### {} — {}; {} calls; physical minimum {:.2} s\n",
            scenario.name,
            scenario.limit_text,
            scenario.calls,
            scenario.minimum.as_secs_f64()
        );
        let _ = writeln!(
            out,
            "| callers | strategy | goodput | amplification | 429s (% of requests) | 503s | permanent failures | unfinished | duplicates | completion ÷ min |"
        );
        let _ = writeln!(out, "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        for cell in cells.iter().filter(|c| c.scenario == scenario.name) {
            let mut completion = format!("{:.2}", cell.slowdown());
            if cell.unfinished > 0 {
                completion = format!("> {completion} (stopped)");
            }
            let mut strategy = cell.strategy.to_owned();
            if cell.strategy == "ratewise" && cell.targets {
                let misses = cell.misses();
                strategy = if misses.is_empty() {
                    "**ratewise** ✅".to_owned()
                } else {
                    format!("**ratewise** ❌ {}", misses.join(", "))
                };
            }
            let _ = writeln!(
                out,
                "| {} | {} | {:.3} | {:.2} | {} ({:.1} %) | {} | {} | {} | {} | {} |",
                cell.callers,
                strategy,
                cell.goodput(),
                cell.amplification(),
                cell.throttled,
                100.0 * cell.throttled_share(),
                cell.server_errors,
                cell.failures,
                cell.unfinished,
                cell.duplicates,
                completion
            );
        }
    }
    out
}

pub(crate) fn json(cells: &[Cell]) -> String {
    let rows: Vec<_> = cells
        .iter()
        .map(|c| {
            json!({
                "scenario": c.scenario,
                "strategy": c.strategy,
                "callers": c.callers,
                "calls": c.calls,
                "successes": c.successes,
                "permanent_failures": c.failures,
                "failure_reasons": c.reasons,
                "unfinished": c.unfinished,
                "requests": c.requests,
                "throttled": c.throttled,
                "server_errors": c.server_errors,
                "duplicates": c.duplicates,
                "completion_secs": c.completion.as_secs_f64(),
                "minimum_secs": c.minimum.as_secs_f64(),
                "goodput": c.goodput(),
                "amplification": c.amplification(),
                "completion_over_minimum": c.slowdown(),
                "targets_apply": c.targets && c.strategy == "ratewise",
                "target_misses": if c.strategy == "ratewise" && c.targets { c.misses() } else { Vec::new() },
                "wall_secs": c.wall.as_secs_f64(),
            })
        })
        .collect();
    serde_json::to_string_pretty(&json!({ "cells": rows })).unwrap_or_default()
}
