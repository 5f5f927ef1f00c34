//! The client end to end over the simulated GitHub, in virtual time.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::{StreamExt, pin_mut};
use http::StatusCode;
use ratewise_core::error::Retryable;
use ratewise_core::hint::Clamp;
use ratewise_core::limit::ThrottleReason;
use ratewise_core::transport::{Transport, TransportError};
use ratewise_core::upstream::CallPolicy;
use ratewise_testkit::{Fault, FaultPlan, SimUpstream};

use super::*;
use crate::{ClientBuilder, CreateIssue, Error, GitHubClient, GitHubLimits, StateFilter, limits};

const OWNER: &str = "octo";
const REPO: &str = "sync";

fn upstream(github: &Arc<GitHubSim>, faults: FaultPlan) -> SimUpstream {
    github
        .install(SimUpstream::builder())
        .faults(faults)
        .seed(3)
        .build()
}

fn builder(sim: &SimUpstream) -> crate::GitHubClientBuilder {
    client_to(sim, Arc::new(sim.transport()))
}

fn client_to(sim: &SimUpstream, transport: Arc<dyn Transport>) -> crate::GitHubClientBuilder {
    GitHubClient::builder("ghp_sim")
        .base_url("http://github.sim")
        .transport(transport)
        .clock(sim.clock())
        .seed(7)
}

fn repo() -> Arc<GitHubSim> {
    Arc::new(GitHubSim::new().repo(OWNER, REPO))
}

/// Secondary-limit refusals the server sent (every 403/429 of a run without primary refusals).
fn refusals(sim: &SimUpstream) -> u64 {
    let ledger = sim.ledger();
    ledger.with_status(StatusCode::FORBIDDEN) + ledger.throttled()
}

/// What one run of the sync workload did.
#[derive(Debug)]
struct Report {
    failed: usize,
    secondary: u64,
    conditional: u64,
    not_modified: u64,
    charged_core: u64,
    server_core_used: u64,
    elapsed: Duration,
}

/// 300 issue creations and 3,000 reads (mostly repeated GETs) from 32 tasks.
async fn sync_workload(limits: GitHubLimits) -> Report {
    let github = Arc::new(
        GitHubSim::new()
            .repo(OWNER, REPO)
            .primary(15_000, Duration::from_secs(3600)),
    );
    let sim = upstream(&github, FaultPlan::new());
    let client = builder(&sim)
        .limits(limits)
        .policy(
            CallPolicy::new()
                .max_attempts(8)
                .max_wait(Duration::from_secs(3600))
                .clamp(Clamp::new(Duration::from_secs(3600))),
        )
        .build()
        .unwrap();
    let tasks: Vec<_> = (0..32_usize)
        .map(|task| {
            let client = client.clone();
            tokio::spawn(async move {
                let creates = 9 + usize::from(task < 12);
                let reads = 93 + usize::from(task < 24);
                let issues = client.issues(OWNER, REPO);
                let mut mine: Vec<u64> = Vec::new();
                let mut failed = 0;
                for step in 0..(creates + reads) {
                    let write = step % 11 == 0 && mine.len() < creates;
                    let outcome = if write || (step >= reads && mine.len() < creates) {
                        let created = issues
                            .create(
                                CreateIssue::new(format!("task {task} issue {step}")).label("sync"),
                            )
                            .send()
                            .await;
                        created.map(|issue| mine.push(issue.number))
                    } else if step % 10 == 1 || mine.is_empty() {
                        client.repos(OWNER, REPO).get().send().await.map(drop)
                    } else if step % 10 == 2 {
                        issues.list().per_page(30).send().await.map(drop)
                    } else {
                        let number = mine[step % mine.len()];
                        issues.get(number).send().await.map(drop)
                    };
                    failed += usize::from(outcome.is_err());
                }
                failed
            })
        })
        .collect();
    let mut failed = 0;
    for task in tasks {
        failed += task.await.unwrap();
    }
    let ledger = sim.ledger();
    let secondary = refusals(&sim);
    let not_modified_server = ledger.with_status(StatusCode::NOT_MODIFIED);
    let charged_core = ledger.requests() - not_modified_server - secondary;
    let elapsed = sim.elapsed();
    let overview = client.rate_limit().get().send().await.unwrap();
    let cache = client.etag_cache().unwrap().stats();
    assert_eq!(cache.not_modified, not_modified_server);
    assert_eq!(
        github.issue_count(OWNER, REPO) as u64,
        ledger.total_side_effects()
    );
    Report {
        failed,
        secondary,
        conditional: cache.conditional,
        not_modified: cache.not_modified,
        charged_core,
        server_core_used: overview.resources["core"].used,
        elapsed,
    }
}

#[tokio::test(start_paused = true)]
async fn three_hundred_creations_and_three_thousand_reads_meet_no_secondary_limit_with_avoidance_on()
 {
    let on = sync_workload(GitHubLimits::new()).await;
    let off = sync_workload(GitHubLimits::off()).await;
    println!(
        "avoidance | secondary refusals | failed calls | 304 / conditional GETs | core used | virtual time"
    );
    for (name, r) in [("on", &on), ("off", &off)] {
        println!(
            "{name:>9} | {:>18} | {:>12} | {:>10} / {:<11} | {:>9} | {:>6.0} s",
            r.secondary,
            r.failed,
            r.not_modified,
            r.conditional,
            r.server_core_used,
            r.elapsed.as_secs_f64()
        );
    }
    assert_eq!(on.secondary, 0, "avoidance on: no secondary-limit response");
    assert_eq!(on.failed, 0);
    assert!(
        off.secondary > 0,
        "avoidance off trips the content limit: {off:?}"
    );
    for r in [&on, &off] {
        assert!(
            r.not_modified * 2 >= r.conditional && r.conditional > 1000,
            "at least half the repeated GETs were 304s: {r:?}"
        );
        assert_eq!(
            r.server_core_used, r.charged_core,
            "304s spent no primary budget: {r:?}"
        );
    }
    assert!(
        on.elapsed >= Duration::from_secs(299),
        "writes were a second apart"
    );
}

#[tokio::test(start_paused = true)]
async fn a_primary_limit_waits_for_the_reset_plus_a_second_then_succeeds() {
    let github = Arc::new(
        GitHubSim::new()
            .repo(OWNER, REPO)
            .primary(5, Duration::from_secs(60)),
    );
    let sim = upstream(&github, FaultPlan::new());
    // Another process spends the window first.
    let other = builder(&sim).build().unwrap();
    for _ in 0..5 {
        other
            .repos(OWNER, REPO)
            .get()
            .no_cache()
            .send()
            .await
            .unwrap();
    }
    let client = builder(&sim).build().unwrap();
    let start = sim.elapsed();
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move {
                client
                    .repos(OWNER, REPO)
                    .get()
                    .no_cache()
                    .send_with_meta()
                    .await
            })
        })
        .collect();
    for task in tasks {
        let meta = task.await.unwrap().unwrap();
        assert!(meta.rate_limit.unwrap().remaining < 5);
    }
    let waited = sim.elapsed() - start;
    assert!(
        waited >= Duration::from_secs(60) - start && waited < Duration::from_secs(70),
        "until the window reset + 1 s: {waited:?}"
    );
    let refused = refusals(&sim);
    assert!(
        (1..=4).contains(&refused),
        "only calls already in flight met the limit: {refused}"
    );
    let statuses = sim.ledger().statuses();
    assert_eq!(statuses.get(&200).copied(), Some(9));
}

#[tokio::test(start_paused = true)]
async fn a_primary_limit_past_the_callers_wait_is_a_typed_error_carrying_the_reset() {
    let github = Arc::new(
        GitHubSim::new()
            .repo(OWNER, REPO)
            .primary(2, Duration::from_secs(3600)),
    );
    let sim = upstream(&github, FaultPlan::new());
    let client = builder(&sim).build().unwrap();
    for _ in 0..2 {
        client
            .repos(OWNER, REPO)
            .get()
            .no_cache()
            .send()
            .await
            .unwrap();
    }
    // The pacer knows the window is spent: the next call is refused before it is sent.
    let held = client
        .repos(OWNER, REPO)
        .get()
        .no_cache()
        .send()
        .await
        .unwrap_err();
    let Error::Throttled { throttled, .. } = &held else {
        panic!("{held:?}")
    };
    assert_eq!(throttled.budget, limits::resource("core"));
    assert_eq!(throttled.reason, ThrottleReason::QuotaExhausted);
    assert!(throttled.until.is_some());
    let wait = held.retry_after().unwrap();
    assert!(
        wait > Duration::from_secs(3500) && wait <= Duration::from_secs(3602),
        "{wait:?}"
    );
    assert_eq!(sim.ledger().requests(), 2, "nothing was sent");
    // A fresh client learns it from the 403/429 itself: a wait past the clamp is handed back.
    let fresh = builder(&sim).build().unwrap();
    let refused = fresh.repos(OWNER, REPO).get().send().await.unwrap_err();
    assert!(
        matches!(refused, Error::RetryAfterTooLong { .. }),
        "{refused:?}"
    );
    assert!(refused.is_retryable());
    assert!(refused.retry_after().unwrap() > Duration::from_secs(3500));
    assert_eq!(refusals(&sim), 1);
}

#[tokio::test(start_paused = true)]
async fn a_secondary_limit_without_avoidance_is_waited_out_and_the_create_happens_once() {
    let github = Arc::new(GitHubSim::new().repo(OWNER, REPO).content(3, 500));
    let sim = upstream(&github, FaultPlan::new());
    let client = builder(&sim).limits(GitHubLimits::off()).build().unwrap();
    for i in 0..5 {
        let issue = client
            .issues(OWNER, REPO)
            .create(CreateIssue::new(format!("issue {i}")))
            .send()
            .await
            .unwrap();
        assert_eq!(issue.number, i + 1);
    }
    assert_eq!(sim.ledger().total_side_effects(), 5);
    assert_eq!(
        refusals(&sim),
        1,
        "one refusal, then the whole client paused"
    );
    assert!(sim.elapsed() >= Duration::from_secs(60));
    assert_eq!(
        client.upstream().provider().secondary_level(),
        0,
        "reset by the success"
    );
}

#[tokio::test(start_paused = true)]
async fn the_same_load_with_avoidance_on_meets_no_secondary_limit() {
    let github = Arc::new(GitHubSim::new().repo(OWNER, REPO).content(3, 500));
    let sim = upstream(&github, FaultPlan::new());
    let client = builder(&sim)
        .limits(GitHubLimits::new().content(Some(3), Some(500)))
        .policy(CallPolicy::new().max_wait(Duration::from_secs(600)))
        .build()
        .unwrap();
    for i in 0..5 {
        client
            .issues(OWNER, REPO)
            .create(CreateIssue::new(format!("issue {i}")))
            .send()
            .await
            .unwrap();
    }
    assert_eq!(refusals(&sim), 0);
    let arrivals: Vec<Duration> = sim.ledger().entries().iter().map(|e| e.arrived).collect();
    assert!(
        arrivals
            .windows(2)
            .all(|w| w[1] - w[0] >= Duration::from_secs(1)),
        "writes a second apart: {arrivals:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn permanent_errors_are_not_retried_and_keep_githubs_body() {
    let sim = upstream(&repo(), FaultPlan::new());
    let client = builder(&sim).build().unwrap();
    let missing = client.repos(OWNER, "nope").get().send().await.unwrap_err();
    assert_eq!(missing.status(), Some(StatusCode::NOT_FOUND));
    assert!(!missing.is_retryable());
    let invalid = client
        .issues(OWNER, REPO)
        .create(CreateIssue::new(""))
        .send()
        .await
        .unwrap_err();
    let Error::Api {
        status,
        error: Some(api),
        request_id,
        ..
    } = &invalid
    else {
        panic!("{invalid:?}")
    };
    assert_eq!(*status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(api.errors[0].code.as_deref(), Some("missing_field"));
    assert!(
        request_id
            .as_deref()
            .is_some_and(|id| id.starts_with("SIM0:"))
    );
    assert_eq!(sim.ledger().requests(), 2, "neither was retried");
}

#[tokio::test(start_paused = true)]
async fn an_ambiguous_create_is_not_retried_and_says_a_retry_could_duplicate() {
    for fault in [
        Fault::ResetAfterCommit,
        Fault::server_error(StatusCode::BAD_GATEWAY),
    ] {
        let sim = upstream(&repo(), FaultPlan::new().request(0, fault));
        let client = builder(&sim).build().unwrap();
        let key = crate::IdempotencyKey::new();
        let error = client
            .issues(OWNER, REPO)
            .create(CreateIssue::new("maybe twice"))
            .idempotency_key(key.clone())
            .send()
            .await
            .unwrap_err();
        assert!(matches!(error, Error::Ambiguous { .. }), "{error:?}");
        assert!(error.to_string().contains("could duplicate"), "{error}");
        assert_eq!(
            error.idempotency_key(),
            Some(&key),
            "the error names its call"
        );
        assert_eq!(sim.ledger().requests(), 1);
    }
    // The same fault on a read is retried: a GET is safe to repeat.
    let sim = upstream(
        &repo(),
        FaultPlan::new().request(0, Fault::ResetAfterCommit),
    );
    let client = builder(&sim).build().unwrap();
    client.repos(OWNER, REPO).get().send().await.unwrap();
    assert_eq!(sim.ledger().requests(), 2);
}

/// Refuses the first connection, then delegates.
#[derive(Debug)]
struct RefuseFirst {
    inner: ratewise_testkit::SimTransport,
    refused: std::sync::atomic::AtomicBool,
}

#[async_trait]
impl Transport for RefuseFirst {
    async fn send(
        &self,
        request: http::Request<Bytes>,
        timeout: Duration,
    ) -> Result<http::Response<Bytes>, TransportError> {
        if !self.refused.swap(true, Ordering::Relaxed) {
            return Err(TransportError::Connect {
                message: "connection refused".to_owned(),
            });
        }
        self.inner.send(request, timeout).await
    }
}

#[tokio::test(start_paused = true)]
async fn a_create_is_retried_after_a_refused_connection_and_after_a_rate_limit() {
    let sim = upstream(&repo(), FaultPlan::new());
    let transport = Arc::new(RefuseFirst {
        inner: sim.transport(),
        refused: false.into(),
    });
    let client = client_to(&sim, transport).build().unwrap();
    let meta = client
        .issues(OWNER, REPO)
        .create(CreateIssue::new("once"))
        .send_with_meta()
        .await
        .unwrap();
    assert_eq!(meta.attempts, 2);
    assert_eq!(sim.ledger().total_side_effects(), 1);
    // A rate-limit response is certainly not processed either.
    let sim = upstream(
        &repo(),
        FaultPlan::new().request(0, Fault::throttle(Duration::from_secs(5))),
    );
    let client = builder(&sim).build().unwrap();
    let meta = client
        .issues(OWNER, REPO)
        .create(CreateIssue::new("once"))
        .send_with_meta()
        .await
        .unwrap();
    assert_eq!(meta.attempts, 2);
    assert_eq!(sim.ledger().total_side_effects(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_repeated_get_is_a_free_304_until_the_resource_changes() {
    let sim = upstream(&repo(), FaultPlan::new());
    let client = builder(&sim).build().unwrap();
    let issues = client.issues(OWNER, REPO);
    issues
        .create(CreateIssue::new("watched"))
        .send()
        .await
        .unwrap();
    let first = issues.get(1).send_with_meta().await.unwrap();
    let second = issues.get(1).send_with_meta().await.unwrap();
    assert!(!first.not_modified);
    assert!(second.not_modified);
    assert_eq!(first.value, second.value);
    assert_eq!(first.etag, second.etag);
    let used = |m: &crate::Meta<crate::Issue>| m.rate_limit.as_ref().and_then(|r| r.used);
    assert_eq!(used(&first), used(&second), "the 304 was not charged");
    let plain = issues.get(1).no_cache().send_with_meta().await.unwrap();
    assert!(!plain.not_modified, "opted out");
    issues.comment(1, "changed").send().await.unwrap();
    let changed = issues.get(1).send_with_meta().await.unwrap();
    assert!(!changed.not_modified);
    assert_eq!(changed.value.comments, 1);
    assert_ne!(changed.etag, first.etag);
    assert_eq!(sim.ledger().with_status(StatusCode::NOT_MODIFIED), 1);
    let stats = client.etag_cache().unwrap().stats();
    assert_eq!((stats.conditional, stats.not_modified), (2, 1));
}

#[tokio::test(start_paused = true)]
async fn lists_follow_the_link_header_also_under_an_enterprise_root() {
    let sim = upstream(&repo(), FaultPlan::new());
    let client = builder(&sim)
        .enterprise("http://ghe.sim")
        .limits(GitHubLimits::new().write_interval(None))
        .build()
        .unwrap();
    let issues = client.issues(OWNER, REPO);
    for i in 0..7 {
        issues
            .create(CreateIssue::new(format!("issue {i}")))
            .send()
            .await
            .unwrap();
    }
    let before = sim.ledger().requests();
    for pass in 0..2 {
        let stream = issues
            .list()
            .state(StateFilter::All)
            .per_page(3)
            .pages()
            .into_stream();
        pin_mut!(stream);
        let mut numbers = Vec::new();
        while let Some(issue) = stream.next().await {
            numbers.push(issue.unwrap().number);
        }
        assert_eq!(numbers, vec![7, 6, 5, 4, 3, 2, 1], "pass {pass}");
    }
    assert_eq!(sim.ledger().requests() - before, 6, "three pages, twice");
    assert_eq!(
        sim.ledger().with_status(StatusCode::NOT_MODIFIED),
        3,
        "the second walk was all 304s, and their cached Link still led on"
    );
}

#[tokio::test(start_paused = true)]
async fn searches_are_spaced_two_seconds_apart_and_spend_the_search_budget() {
    let sim = upstream(&repo(), FaultPlan::new());
    let client = builder(&sim).build().unwrap();
    let issues = client.issues(OWNER, REPO);
    issues
        .create(CreateIssue::new("Crash on start"))
        .send()
        .await
        .unwrap();
    issues
        .create(CreateIssue::new("Typo in docs"))
        .send()
        .await
        .unwrap();
    let start = sim.elapsed();
    for _ in 0..3 {
        let meta = client
            .search()
            .issues("repo:octo/sync is:open crash")
            .no_cache()
            .send_with_meta()
            .await
            .unwrap();
        assert_eq!(meta.value.total_count, 1);
        assert_eq!(meta.rate_limit.unwrap().resource, "search");
    }
    assert!(sim.elapsed() - start >= Duration::from_secs(4));
}

#[tokio::test(start_paused = true)]
async fn repositories_files_pulls_and_rate_limits_read_as_typed_values() {
    let github = Arc::new(
        GitHubSim::new()
            .repo(OWNER, REPO)
            .file(
                OWNER,
                REPO,
                "docs/README.md",
                "# Hello\n".repeat(20).as_bytes(),
            )
            .pull(OWNER, REPO, "Add sync", "feature", "main"),
    );
    let sim = upstream(&github, FaultPlan::new());
    let client = builder(&sim).build().unwrap();
    let repo = client.repos(OWNER, REPO).get().send().await.unwrap();
    assert_eq!(repo.full_name, "octo/sync");
    let file = client
        .repos(OWNER, REPO)
        .content("docs/README.md")
        .send()
        .await
        .unwrap();
    assert_eq!(file.text(), Some("# Hello\n".repeat(20).as_str()));
    let pulls = client.pulls(OWNER, REPO).list().send().await.unwrap();
    assert_eq!(pulls[0].head.name, "feature");
    let before = client.rate_limit().get().send().await.unwrap();
    let after = client.rate_limit().get().send().await.unwrap();
    assert_eq!(before.resources["core"].used, 3);
    assert_eq!(after.resources["core"].used, 3, "/rate_limit is free");
}
