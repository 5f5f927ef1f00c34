//! Fault soak, per provider, in virtual time: 10,000 logical calls through the provider's
//! simulator with about 20 % mixed faults (429 storms with and without hints, 5xx bursts, a
//! 60 s outage, responses slower than the attempt timeout, connections reset after the server
//! committed). For every call: success, or a typed error that carries its idempotency key. The
//! ledger: no side effect twice, none lost (every success committed exactly once). While the
//! breaker is open, calls fail at once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use ratewise_core::clock::SharedClock;
use ratewise_core::error::{Error, Retryable};
use ratewise_core::idempotency::IdempotencyKey;
use ratewise_testkit::{Fault, FaultPlan};

/// The logical calls of one soak.
const CALLS: usize = 10_000;
/// Concurrent callers.
const TASKS: usize = 100;
/// The attempt timeout the clients use; slow faults exceed it.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);

/// About 20 % of requests faulted, of every kind, plus a 60 s outage 120 s in.
fn faults() -> FaultPlan {
    FaultPlan::new()
        .bursts(0.006, 5, Fault::throttle(Duration::from_secs(1)))
        .bursts(0.006, 5, Fault::throttle_without_hint())
        .bursts(
            0.006,
            5,
            Fault::server_error(StatusCode::SERVICE_UNAVAILABLE),
        )
        .random(0.03, Fault::server_error(StatusCode::INTERNAL_SERVER_ERROR))
        .random(0.02, Fault::slow(ATTEMPT_TIMEOUT * 2))
        .random(0.05, Fault::ResetAfterCommit)
        .outage(Duration::from_secs(120), Duration::from_secs(60))
}

/// How one call ended.
struct Ended {
    /// The call's index, `0..CALLS`.
    index: usize,
    key: IdempotencyKey,
    ok: bool,
    /// The error's variant (`"CircuitOpen"`, …) for failures.
    kind: Option<String>,
}

/// What a soak saw.
struct Report {
    ended: Vec<Ended>,
    errors: BTreeMap<String, usize>,
    fast_failures_while_open: usize,
}

impl Report {
    fn successes(&self) -> usize {
        self.ended.iter().filter(|e| e.ok).count()
    }
}

/// The variant name of a value, from its `Debug` (`CircuitOpen { .. }` → `CircuitOpen`).
fn variant(value: &impl std::fmt::Debug) -> String {
    let text = format!("{value:?}");
    text.split([' ', '{', '('])
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// What the harness reads from a failed call, whatever the crate's error type: core's
/// `Error<A>`, or a crate's own error wrapping it (SendGrid).
trait Failure: std::fmt::Debug + std::fmt::Display {
    /// The idempotency key the error carries.
    fn key(&self) -> Option<&IdempotencyKey>;
    /// The variant name (`"CircuitOpen"`, `"Ambiguous"`, …).
    fn kind(&self) -> String;
    /// How long the error asks the caller to wait.
    fn wait(&self) -> Option<Duration>;
}

impl<A: std::fmt::Debug> Failure for Error<A>
where
    Error<A>: std::fmt::Display,
{
    fn key(&self) -> Option<&IdempotencyKey> {
        self.idempotency_key()
    }
    fn kind(&self) -> String {
        variant(self)
    }
    fn wait(&self) -> Option<Duration> {
        self.retry_after()
    }
}

/// Whether the errors of a provider's calls carry the caller's key.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Keys {
    /// The crate attaches a caller-supplied key: every error must carry it.
    Carried,
    /// The crate has no way to attach one (OpenAI): nothing to check.
    Unsupported,
}

/// Runs `CALLS` calls from `TASKS` tasks. `call(i, key)` makes call `i` with `key`; `open()`
/// says whether the breaker is open right now. Checks every error carries its key and
/// describes itself, and that a call started while the breaker is open fails in under 1 ms.
async fn soak<E, F, Fut>(
    clock: SharedClock,
    keys: Keys,
    open: impl Fn() -> bool + Clone + Send + 'static,
    call: F,
) -> Report
where
    E: Failure + Send + 'static,
    F: Fn(usize, IdempotencyKey) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<(), E>> + Send,
{
    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let (call, open, clock) = (call.clone(), open.clone(), Arc::clone(&clock));
            tokio::spawn(async move {
                let mut ended = Vec::new();
                let mut fast = 0;
                for i in (task..CALLS).step_by(TASKS) {
                    let key = IdempotencyKey::new();
                    let was_open = open();
                    let start = clock.now();
                    let result = call(i, key.clone()).await;
                    let took = clock.now() - start;
                    match result {
                        Ok(()) => ended.push(Ended {
                            index: i,
                            key,
                            ok: true,
                            kind: None,
                        }),
                        Err(error) => {
                            if keys == Keys::Carried {
                                assert_eq!(error.key(), Some(&key), "{error:?}");
                            }
                            assert!(!error.to_string().is_empty());
                            let kind = error.kind();
                            if was_open && kind == "CircuitOpen" {
                                assert!(took < Duration::from_millis(1), "{took:?}");
                                fast += 1;
                            }
                            ended.push(Ended {
                                index: i,
                                key,
                                ok: false,
                                kind: Some(kind),
                            });
                            // A sane caller does not spin on a fail-fast error: it waits for
                            // what the error says before its next call.
                            if let Some(wait) = error.wait() {
                                tokio::time::sleep(wait.min(Duration::from_secs(60))).await;
                            }
                        }
                    }
                }
                (ended, fast)
            })
        })
        .collect();
    let mut report = Report {
        ended: Vec::new(),
        errors: BTreeMap::new(),
        fast_failures_while_open: 0,
    };
    for task in tasks {
        let (ended, fast) = task.await.unwrap();
        report.fast_failures_while_open += fast;
        for e in &ended {
            if let Some(kind) = &e.kind {
                *report.errors.entry(kind.clone()).or_default() += 1;
            }
        }
        report.ended.extend(ended);
    }
    assert_eq!(report.ended.len(), CALLS, "every call ended");
    report
}

/// The ledger check of a provider without server-side idempotency: a success committed exactly
/// once, a failure at most once, and a failure that did commit surfaced as `Ambiguous` (the
/// caller was told a retry could duplicate it). `committed(call)` counts the call's side
/// effects on the server. Returns how many failures committed.
fn at_most_once(report: &Report, committed: impl Fn(&Ended) -> usize) -> usize {
    let mut ambiguous_commits = 0;
    for ended in &report.ended {
        let n = committed(ended);
        if ended.ok {
            assert_eq!(
                n, 1,
                "call {}: a success committed exactly once",
                ended.index
            );
        } else {
            assert!(
                n <= 1,
                "call {}: a failure committed {n} times",
                ended.index
            );
            if n == 1 {
                assert_eq!(
                    ended.kind.as_deref(),
                    Some("Ambiguous"),
                    "call {}: a failure that committed says it may have",
                    ended.index
                );
                ambiguous_commits += 1;
            }
        }
    }
    ambiguous_commits
}

/// The faults fired, the breaker failed fast, and at least `min_ok` calls succeeded.
fn assert_soaked(name: &str, report: &Report, sim: &ratewise_testkit::SimUpstream, min_ok: usize) {
    let ledger = sim.ledger();
    eprintln!(
        "{name} soak: {} ok, errors {:?}, {} requests, statuses {:?}, {} resets, {} fast failures while open, {:?} virtual",
        report.successes(),
        report.errors,
        ledger.requests(),
        ledger.statuses(),
        ledger.resets(),
        report.fast_failures_while_open,
        sim.elapsed(),
    );
    assert!(
        ledger.resets() > 100,
        "{name}: resets fired: {}",
        ledger.resets()
    );
    // GitHub answers most throttles 403 (a secondary limit); no other soak sees a 403.
    let refusals = ledger.throttled() + ledger.with_status(StatusCode::FORBIDDEN);
    assert!(refusals > 100, "{name}: throttles fired: {refusals}");
    assert!(
        report.fast_failures_while_open > 0,
        "{name}: the outage opened the breaker: {:?}",
        report.errors
    );
    assert!(
        report.successes() >= min_ok,
        "{name}: {} of {CALLS} succeeded; errors {:?}",
        report.successes(),
        report.errors
    );
}

/// A policy every soak client uses: the attempt timeout the slow faults exceed, and a minute
/// of waiting at most.
fn soak_policy() -> ratewise_core::upstream::CallPolicy {
    ratewise_core::upstream::CallPolicy::new()
        .attempt_timeout(ATTEMPT_TIMEOUT)
        .max_wait(Duration::from_secs(60))
}

/// True while `breaker` is open.
fn is_open(breaker: &ratewise_core::breaker::CircuitBreaker) -> bool {
    matches!(
        breaker.state(),
        ratewise_core::breaker::BreakerState::Open { .. }
    )
}

#[cfg(feature = "stripe")]
mod stripe {
    use super::*;
    use ratewise_stripe::sim::{StripeDialect, StripeHandler};
    use ratewise_stripe::{ClientBuilder, CreatePaymentIntent, StripeClient};
    use ratewise_testkit::SimUpstream;

    #[tokio::test(start_paused = true)]
    async fn ten_thousand_payment_intents_through_mixed_faults_lose_and_duplicate_nothing() {
        let sim = SimUpstream::builder()
            .dialect(StripeDialect::new())
            .handler(StripeHandler::new())
            .faults(faults())
            .seed(21)
            .build();
        let client = StripeClient::builder("sk_live_soak")
            .base_url("http://stripe.sim")
            .transport(Arc::new(sim.transport()))
            .clock(sim.clock())
            .seed(21)
            .policy(soak_policy())
            .build()
            .unwrap();
        let breaker_client = client.clone();
        let report = soak(
            sim.clock(),
            Keys::Carried,
            move || is_open(breaker_client.upstream().breaker()),
            move |i, key| {
                let client = client.clone();
                async move {
                    client
                        .payment_intents()
                        .create(CreatePaymentIntent::new(100 + i as i64, "usd"))
                        .idempotency_key(key)
                        .send()
                        .await
                        .map(drop)
                }
            },
        )
        .await;

        let ledger = sim.ledger();
        const OP: &str = "POST /v1/payment_intents";
        for ended in &report.ended {
            let committed = ledger.side_effects_for(OP, ended.key.as_str());
            if ended.ok {
                assert_eq!(committed, 1, "a success committed exactly once");
            } else {
                assert!(committed <= 1, "a failure committed at most once");
            }
        }
        assert_eq!(ledger.duplicates(), 0);
        assert_soaked("stripe", &report, &sim, CALLS * 8 / 10);
    }
}

#[cfg(feature = "openai")]
mod openai {
    use super::*;
    use ratewise_openai::sim::{OpenAiDialect, OpenAiHandler};
    use ratewise_openai::{ClientBuilder, CreateEmbedding, OpenAiClient};
    use ratewise_testkit::SimUpstream;

    /// OpenAI has no idempotency key (PROVIDERS §1) and the crate offers no way to attach one:
    /// an embedding has no side effect, so every operation is safe to repeat and is retried
    /// through ambiguous failures. The check: every success reached the server, every failure
    /// is typed, the faults fired, the breaker failed fast.
    #[tokio::test(start_paused = true)]
    async fn ten_thousand_embeddings_through_mixed_faults_succeed_or_fail_typed() {
        // 2,000 requests a minute (tokens far above the volume): the run spans about five
        // virtual minutes, so the outage 120 s in meets it.
        let handler = OpenAiHandler::new(2_000, 1_000_000_000);
        let sim = SimUpstream::builder()
            .dialect(OpenAiDialect::new())
            .handler(handler.clone())
            .faults(faults())
            .seed(22)
            .build();
        let client = OpenAiClient::builder("sk-proj-soak")
            .base_url("http://openai.sim/v1")
            .transport(Arc::new(sim.transport()))
            .clock(sim.clock())
            .seed(22)
            .limits(2_000, 1_000_000_000)
            .policy(soak_policy())
            .build()
            .unwrap();
        let breaker_client = client.clone();
        let report = soak(
            sim.clock(),
            Keys::Unsupported,
            move || is_open(breaker_client.upstream().breaker()),
            move |i, _key| {
                let client = client.clone();
                async move {
                    client
                        .embeddings()
                        .create(CreateEmbedding::new(
                            "text-embedding-3-small",
                            format!("soak call {i}"),
                        ))
                        .await
                        .map(drop)
                }
            },
        )
        .await;

        // Repeats of a success (a retry after a reset) are allowed: an embedding changes
        // nothing on the server.
        let answered = sim.ledger().side_effects("POST /v1/embeddings");
        assert!(
            answered >= report.successes() as u64 && handler.stats().requests >= answered,
            "every success was answered by the handler: {answered} answered, {} ok",
            report.successes()
        );
        assert!(
            !report.errors.contains_key("Ambiguous"),
            "an embedding is safe to repeat: {:?}",
            report.errors
        );
        assert_soaked("openai", &report, &sim, CALLS * 9 / 10);
    }
}

#[cfg(feature = "github")]
mod github {
    use super::*;
    use ratewise_github::sim::GitHubSim;
    use ratewise_github::{ClientBuilder, CreateIssue, GitHubClient, GitHubLimits};
    use ratewise_testkit::SimUpstream;

    const OWNER: &str = "octo";
    const REPO: &str = "soak";
    const OP: &str = "POST /repos/octo/soak/issues";

    fn title(i: usize) -> String {
        format!("soak issue {i}")
    }

    /// The simulator's ledger key of a create without an idempotency key: FNV-1a of its body.
    fn body_key(i: usize) -> String {
        let body = serde_json::to_vec(&CreateIssue::new(title(i))).unwrap();
        let hash = body.iter().fold(0xcbf2_9ce4_8422_2325_u64, |hash, b| {
            (hash ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
        });
        format!("body:{hash:016x}")
    }

    /// GitHub has no idempotency key: a create is never retried after an ambiguous failure.
    /// The content-creation secondary limits (80/min, 500/h) would stretch 10,000 creates over
    /// 20 virtual hours; the simulated account and the client allow the volume instead (the
    /// soak is about faults, GitHub's pacing has its own tests in the crate).
    #[tokio::test(start_paused = true)]
    async fn ten_thousand_issue_creates_through_mixed_faults_never_duplicate() {
        let github = Arc::new(
            GitHubSim::new()
                .repo(OWNER, REPO)
                .primary(1_000_000, Duration::from_secs(3600))
                .content(1_000_000, 1_000_000),
        );
        let sim = github
            .install(SimUpstream::builder())
            .faults(faults())
            .seed(23)
            .build();
        let client = GitHubClient::builder("ghp_soak")
            .base_url("http://github.sim")
            .transport(Arc::new(sim.transport()))
            .clock(sim.clock())
            .seed(23)
            .limits(GitHubLimits::off())
            .policy(soak_policy())
            .build()
            .unwrap();
        let breaker_client = client.clone();
        let report = soak(
            sim.clock(),
            Keys::Carried,
            move || is_open(breaker_client.upstream().breaker()),
            move |i, key| {
                let client = client.clone();
                async move {
                    client
                        .issues(OWNER, REPO)
                        .create(CreateIssue::new(title(i)))
                        .idempotency_key(key)
                        .send()
                        .await
                        .map(drop)
                }
            },
        )
        .await;

        let ledger = sim.ledger();
        let ambiguous = at_most_once(&report, |e| {
            ledger.side_effects_for(OP, &body_key(e.index)) as usize
        });
        assert_eq!(ledger.duplicates(), 0);
        assert_eq!(
            github.issue_count(OWNER, REPO),
            report.successes() + ambiguous,
            "the repository holds every success and every ambiguous commit, once"
        );
        assert!(ambiguous > 0, "some failures were ambiguous commits");
        // Creates pause at least a minute after a secondary-limit refusal (GitHub's rule), so
        // fewer succeed than elsewhere. Before the pipeline took the breaker's permit after the
        // limiters, a half-open probe waiting out that pause failed every other call fast for
        // the minute: 3,731 ok and 5,331 CircuitOpen; now 8,040 ok and 374 CircuitOpen.
        assert_soaked("github", &report, &sim, CALLS * 7 / 10);
    }
}

#[cfg(feature = "twilio")]
mod twilio {
    use super::*;
    use std::collections::HashMap;

    use ratewise_core::limit::Rate;
    use ratewise_testkit::SimUpstream;
    use ratewise_twilio::sim::{TwilioDialect, TwilioHandler, account_concurrency};
    use ratewise_twilio::{ClientBuilder, CreateMessage, TwilioClient, TwilioLimits};

    /// A toll-free number upgraded to 25 MPS (on the client and the simulated account): 10,000
    /// one-segment messages take about 400 virtual seconds, so the outage 120 s in meets the
    /// run. A long code's 1 message/s would take nearly three virtual hours; a short code's
    /// 100/s would be over before the outage.
    const TOLL_FREE: &str = "+18005550100";

    /// Twilio has no idempotency key for creates: the check is at most once, ambiguity typed.
    #[tokio::test(start_paused = true)]
    async fn ten_thousand_messages_through_mixed_faults_never_duplicate() {
        let limits = TwilioLimits::new().sender_rate(TOLL_FREE, Rate::per_second(25));
        let handler = Arc::new(TwilioHandler::new().limits(limits.clone()));
        let sim = SimUpstream::builder()
            .dialect(TwilioDialect::new())
            .handler(handler.clone())
            .limit(account_concurrency(100))
            .faults(faults())
            .seed(24)
            .build();
        let client = TwilioClient::builder("AC00000000000000000000000000000001", "soak-token")
            .base_url("http://twilio.sim")
            .transport(Arc::new(sim.transport()))
            .clock(sim.clock())
            .seed(24)
            .limits(limits)
            .policy(soak_policy())
            .build()
            .unwrap();
        let breaker_client = client.clone();
        let report = soak(
            sim.clock(),
            Keys::Carried,
            move || is_open(breaker_client.upstream().breaker()),
            move |i, key| {
                let client = client.clone();
                async move {
                    client
                        .messages()
                        .create(
                            CreateMessage::new(format!("+1415555{:04}", i % 10_000), TOLL_FREE)
                                .body(format!("soak call {i}")),
                        )
                        .idempotency_key(key)
                        .send()
                        .await
                        .map(drop)
                }
            },
        )
        .await;

        let mut sent: HashMap<String, usize> = HashMap::new();
        for message in handler.sent() {
            *sent.entry(message.body).or_default() += 1;
        }
        let ambiguous = at_most_once(&report, |e| {
            sent.get(&format!("soak call {}", e.index))
                .copied()
                .unwrap_or_default()
        });
        let ledger = sim.ledger();
        assert_eq!(ledger.duplicates(), 0);
        assert_eq!(sent.values().sum::<usize>(), report.successes() + ambiguous);
        assert!(ambiguous > 0, "some failures were ambiguous commits");
        assert_soaked("twilio", &report, &sim, CALLS * 8 / 10);
    }
}

#[cfg(feature = "sendgrid")]
mod sendgrid {
    use super::*;
    use std::collections::HashMap;

    use ratewise_sendgrid::sim::{SendGridDialect, SendGridHandler};
    use ratewise_sendgrid::{ClientBuilder, Content, Mail, Personalization, SendGridClient};
    use ratewise_testkit::SimUpstream;

    /// SendGrid's own error wraps core's (`Call`); the rest are refusals before sending.
    impl Failure for ratewise_sendgrid::Error {
        fn key(&self) -> Option<&IdempotencyKey> {
            match self {
                Self::Call(error) => error.idempotency_key(),
                Self::InFlight { key } => Some(key),
                _ => None,
            }
        }
        fn kind(&self) -> String {
            match self {
                Self::Call(error) => variant(error),
                other => variant(other),
            }
        }
        fn wait(&self) -> Option<Duration> {
            match self {
                Self::Call(error) => error.retry_after(),
                _ => None,
            }
        }
    }

    /// SendGrid has no server-side idempotency; the client puts the key in `custom_args`, where
    /// the simulator records it. Pacing: the client's default 10 requests/s for `mail.send`
    /// (1,000 virtual seconds for the run); the simulator adds no window of its own.
    #[tokio::test(start_paused = true)]
    async fn ten_thousand_sends_through_mixed_faults_never_duplicate() {
        let handler = Arc::new(SendGridHandler::new());
        let sim = SimUpstream::builder()
            .dialect(SendGridDialect::new())
            .handler(Arc::clone(&handler))
            .faults(faults())
            .seed(25)
            .build();
        let client = SendGridClient::builder("SG.soak")
            .base_url("http://sendgrid.sim")
            .transport(Arc::new(sim.transport()))
            .clock(sim.clock())
            .seed(25)
            .policy(soak_policy())
            .build()
            .unwrap();
        let breaker_client = client.clone();
        let report = soak(
            sim.clock(),
            Keys::Carried,
            move || is_open(breaker_client.upstream().breaker()),
            move |i, key| {
                let client = client.clone();
                async move {
                    let mail = Mail::new("news@example.com")
                        .subject("Soak")
                        .content(Content::text(format!("call {i}")))
                        .personalization(Personalization::new(format!("reader{i}@example.com")));
                    client
                        .send_mail(mail)
                        .idempotency_key(key)
                        .send()
                        .await
                        .map(drop)
                }
            },
        )
        .await;

        let mut accepted: HashMap<String, usize> = HashMap::new();
        for message in handler.messages() {
            *accepted
                .entry(message.idempotency_key.unwrap_or_default())
                .or_default() += 1;
        }
        let ambiguous = at_most_once(&report, |e| {
            accepted.get(e.key.as_str()).copied().unwrap_or_default()
        });
        let ledger = sim.ledger();
        assert_eq!(handler.duplicates(), 0);
        assert_eq!(ledger.duplicates(), 0);
        assert!(ambiguous > 0, "some failures were ambiguous commits");
        assert_soaked("sendgrid", &report, &sim, CALLS * 8 / 10);
    }
}
