//! The simulated upstream: limits, faults, idempotency, handler and ledger behind one handle.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::{HeaderValue, StatusCode};
use ratewise_core::clock::{SharedClock, TokioClock};

use crate::chunked::ChunkedBody;
use crate::dialect::{Dialect, GenericDialect, ResponseContext};
use crate::fault::{Fault, FaultPlan, FaultState};
use crate::handler::{EchoHandler, Handler, HandlerContext};
use crate::idempotency::{IdempotencyError, IdempotencyStore, Lookup, Stored};
use crate::ledger::{Ledger, LedgerEntry, Outcome};
use crate::limit::{LimitSet, LimitStatus, ServerLimit, Slot};
use crate::server::SimServer;
use crate::transport::SimTransport;

/// What the simulated server did with one request.
#[derive(Debug)]
#[non_exhaustive]
pub enum Reply {
    /// It answered.
    Response(http::Response<Bytes>),
    /// It dropped the connection without answering.
    Reset,
}

/// A simulated rate-limited upstream: the scenario that [`SimTransport`] serves in virtual time
/// and [`SimServer`] serves over real HTTP.
///
/// Each request, in order: it is counted and given an arrival index; the [`FaultPlan`] may
/// answer it at once (throttle, server error, drop); every applicable [`ServerLimit`] must
/// admit it, else it gets the dialect's throttle response; a request carrying an idempotency key
/// is checked against the store (replay, 400, 409); then, after the latency, the [`Handler`]
/// answers it and a side effect is committed to the [`Ledger`]. Every response passes through
/// [`Dialect::decorate`]. Latency applies to every response: fixed plus seeded jitter, slept on
/// tokio's timer, so it is virtual under `start_paused`. Processing does not depend on the
/// client waiting: a client that times out leaves the server to commit anyway.
///
/// Cheap to clone: clones share one server.
///
/// ```
/// use std::time::Duration;
/// use ratewise_testkit::{FaultPlan, GenericDialect, ServerLimit, SimUpstream};
///
/// let upstream = SimUpstream::builder()
///     .limit(ServerLimit::token_bucket(100.0, 100))
///     .limit(ServerLimit::fixed_window(10, Duration::from_secs(1)).for_operation("POST /v1/charges"))
///     .faults(FaultPlan::new().outage(Duration::from_secs(60), Duration::from_secs(60)))
///     .dialect(GenericDialect::default())
///     .seed(7)
///     .build();
/// assert_eq!(upstream.ledger().requests(), 0);
/// ```
#[derive(Clone)]
pub struct SimUpstream {
    inner: Arc<Inner>,
}

struct Inner {
    dialect: Arc<dyn Dialect>,
    handler: Arc<dyn Handler>,
    clock: SharedClock,
    start: Instant,
    latency: Duration,
    jitter: Duration,
    ledger: Ledger,
    state: Mutex<State>,
}

struct State {
    limits: LimitSet,
    faults: FaultState,
    idempotency: IdempotencyStore,
    latency_rng: fastrand::Rng,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Builds a [`SimUpstream`]. Defaults: no limits, no faults, [`GenericDialect`],
/// [`EchoHandler`], seed 0, latency 10 ms without jitter, [`TokioClock`], idempotency keys
/// kept 24 h.
pub struct SimUpstreamBuilder {
    limits: Vec<ServerLimit>,
    faults: FaultPlan,
    dialect: Arc<dyn Dialect>,
    handler: Arc<dyn Handler>,
    seed: u64,
    latency: Duration,
    jitter: Duration,
    clock: Option<SharedClock>,
    idempotency_ttl: Duration,
}

impl SimUpstreamBuilder {
    /// The default latency of every response: 10 ms.
    pub const DEFAULT_LATENCY: Duration = Duration::from_millis(10);
    /// How long idempotency keys are kept by default: 24 h, as Stripe does.
    pub const DEFAULT_IDEMPOTENCY_TTL: Duration = Duration::from_secs(24 * 3600);

    fn new() -> Self {
        Self {
            limits: Vec::new(),
            faults: FaultPlan::new(),
            dialect: Arc::new(GenericDialect::default()),
            handler: Arc::new(EchoHandler),
            seed: 0,
            latency: Self::DEFAULT_LATENCY,
            jitter: Duration::ZERO,
            clock: None,
            idempotency_ttl: Self::DEFAULT_IDEMPOTENCY_TTL,
        }
    }

    /// Adds a limit; every applicable limit must admit a request (none by default).
    pub fn limit(mut self, limit: ServerLimit) -> Self {
        self.limits.push(limit);
        self
    }

    /// Sets the fault plan (default: none).
    pub fn faults(mut self, plan: FaultPlan) -> Self {
        self.faults = plan;
        self
    }

    /// Sets the dialect (default [`GenericDialect`]).
    pub fn dialect(mut self, dialect: impl Dialect) -> Self {
        self.dialect = Arc::new(dialect);
        self
    }

    /// Sets the success-path handler (default [`EchoHandler`]).
    pub fn handler(mut self, handler: impl Handler) -> Self {
        self.handler = Arc::new(handler);
        self
    }

    /// Seeds the RNGs of probabilistic faults and latency jitter (default 0): the same seed and
    /// the same arrivals give the same run.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Sets the fixed latency of every response (default 10 ms).
    pub fn latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }

    /// Adds a uniformly random extra latency in `[0, jitter]` per request (default none).
    pub fn jitter(mut self, jitter: Duration) -> Self {
        self.jitter = jitter;
        self
    }

    /// Sets the clock for fault windows, limits and wall-time headers (default
    /// [`TokioClock`], virtual under paused time).
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// How long an idempotency key is remembered (default 24 h).
    pub fn idempotency_ttl(mut self, ttl: Duration) -> Self {
        self.idempotency_ttl = ttl;
        self
    }

    /// The upstream. Time starts now: fault windows and fixed windows count from here.
    pub fn build(self) -> SimUpstream {
        let clock = self.clock.unwrap_or_else(TokioClock::shared);
        let start = clock.now();
        let state = State {
            limits: LimitSet::new(self.limits, start),
            faults: FaultState::new(self.faults, self.seed),
            idempotency: IdempotencyStore::new(self.idempotency_ttl),
            latency_rng: fastrand::Rng::with_seed(self.seed ^ 0x9e37_79b9_7f4a_7c15),
        };
        SimUpstream {
            inner: Arc::new(Inner {
                dialect: self.dialect,
                handler: self.handler,
                clock,
                start,
                latency: self.latency,
                jitter: self.jitter,
                ledger: Ledger::new(),
                state: Mutex::new(state),
            }),
        }
    }
}

impl fmt::Debug for SimUpstreamBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimUpstreamBuilder")
            .field("limits", &self.limits)
            .field("faults", &self.faults)
            .field("dialect", &self.dialect)
            .field("seed", &self.seed)
            .field("latency", &self.latency)
            .field("jitter", &self.jitter)
            .finish_non_exhaustive()
    }
}

/// What the locked part of arrival decided.
enum Decision {
    Throttle { retry_after: Option<Duration> },
    ServerError(StatusCode),
    Drop,
    Refuse(IdempotencyError),
    Replay(Stored),
    Handle,
}

/// What happens to a request once its latency has passed.
enum Plan {
    Respond {
        response: http::Response<Bytes>,
        replayed: bool,
    },
    Drop,
    Handle {
        request: http::Request<Bytes>,
        key: Option<String>,
    },
}

/// Releases what an admitted request holds (concurrency slots, an in-flight idempotency key)
/// when it finishes or is abandoned.
struct Guard {
    inner: Arc<Inner>,
    slots: Vec<Slot>,
    key: Option<String>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if self.slots.is_empty() && self.key.is_none() {
            return;
        }
        let mut state = self.inner.lock();
        state.limits.release(&self.slots);
        if let Some(key) = self.key.take() {
            state.idempotency.abandon(&key);
        }
    }
}

/// One request between arrival and answer.
struct Exchange {
    inner: Arc<Inner>,
    index: u64,
    operation: Arc<str>,
    arrived: Duration,
    arrived_wall: SystemTime,
    side_effect: bool,
    ledger_key: String,
    latency: Duration,
    extra_delay: Duration,
    reset: bool,
    /// Pieces of the body sent before the connection breaks, if it does.
    break_body: Option<usize>,
    statuses: Vec<LimitStatus>,
    plan: Plan,
    guard: Guard,
}

impl SimUpstream {
    /// A builder with the documented defaults.
    pub fn builder() -> SimUpstreamBuilder {
        SimUpstreamBuilder::new()
    }

    /// The ledger of everything this upstream received and committed.
    pub fn ledger(&self) -> Ledger {
        self.inner.ledger.clone()
    }

    /// The upstream's clock.
    pub fn clock(&self) -> SharedClock {
        self.inner.clock.clone()
    }

    /// Time since the upstream was built, on its clock.
    pub fn elapsed(&self) -> Duration {
        self.inner
            .clock
            .now()
            .saturating_duration_since(self.inner.start)
    }

    /// An in-memory transport to this upstream (virtual time under `start_paused`).
    pub fn transport(&self) -> SimTransport {
        SimTransport::new(self.clone())
    }

    /// Serves this upstream over HTTP on `127.0.0.1:0`.
    pub async fn serve_http(&self) -> std::io::Result<SimServer> {
        SimServer::start(self.clone()).await
    }

    /// Handles one request to completion in the current task.
    ///
    /// Dropping the future abandons the request like a crashed server: nothing is committed
    /// after that point. The transports use [`SimUpstream::spawn`] instead, so the server
    /// finishes even when the client stops waiting.
    pub async fn serve(&self, request: http::Request<Bytes>) -> Reply {
        self.arrive(request).finish().await
    }

    /// Receives `request` now (arrival index, faults, limits and idempotency are decided before
    /// this returns) and finishes it in a spawned task, independent of anyone awaiting the
    /// handle. `None` outside a tokio runtime (nothing is received then).
    pub fn spawn(&self, request: http::Request<Bytes>) -> Option<tokio::task::JoinHandle<Reply>> {
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let exchange = self.arrive(request);
        Some(runtime.spawn(exchange.finish()))
    }

    fn arrive(&self, request: http::Request<Bytes>) -> Exchange {
        let inner = &self.inner;
        let dialect = &inner.dialect;
        let now = inner.clock.now();
        let wall = inner.clock.wall();
        let arrived = now.saturating_duration_since(inner.start);
        let index = inner.ledger.arrive();
        let operation: Arc<str> = Arc::from(dialect.operation(&request));
        let side_effect = dialect.is_side_effect(&request);
        let key = dialect
            .idempotency_header()
            .and_then(|h| request.headers().get(h))
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        let ledger_key = key
            .clone()
            .unwrap_or_else(|| format!("body:{:016x}", fingerprint(request.body())));
        let mut guard = Guard {
            inner: inner.clone(),
            slots: Vec::new(),
            key: None,
        };
        let mut extra_delay = Duration::ZERO;
        let mut reset = false;
        let mut break_body = None;

        let (decision, statuses, latency) = {
            let mut state = inner.lock();
            let jitter = jitter(&mut state.latency_rng, inner.jitter);
            let latency = inner.latency.saturating_add(jitter);
            let fault = state.faults.pick(index, arrived);
            let headers = request.headers();
            let (decision, statuses) = match fault {
                Some(Fault::Throttle { retry_after }) => {
                    let statuses = state.limits.charge_failure(&operation, headers, now);
                    let statuses = if retry_after.is_some() {
                        statuses
                    } else {
                        Vec::new()
                    };
                    (Decision::Throttle { retry_after }, statuses)
                }
                Some(Fault::ThrottledBy { limit }) => {
                    state.limits.charge_failure(&operation, headers, now);
                    let refusal = LimitStatus {
                        name: limit,
                        limit: 1,
                        remaining: 0,
                        reset_after: Duration::ZERO,
                        exceeded: true,
                        in_flight: false,
                    };
                    (Decision::Throttle { retry_after: None }, vec![refusal])
                }
                Some(Fault::ServerError { status }) => {
                    let statuses = state.limits.charge_failure(&operation, headers, now);
                    (Decision::ServerError(status), statuses)
                }
                Some(Fault::ResetBeforeCommit) => {
                    let statuses = state.limits.charge_failure(&operation, headers, now);
                    (Decision::Drop, statuses)
                }
                other => {
                    match other {
                        Some(Fault::Slow { delay }) => extra_delay = delay,
                        Some(Fault::ResetAfterCommit) => reset = true,
                        Some(Fault::ResetMidBody { pieces }) => break_body = Some(pieces),
                        _ => {}
                    }
                    let admission = state.limits.admit(&operation, headers, now);
                    guard.slots = admission.slots;
                    let decision = if let Some(retry_after) = admission.refused {
                        Decision::Throttle { retry_after }
                    } else if let Some(key) = &key {
                        match state
                            .idempotency
                            .lookup(key, &operation, request.body(), now)
                        {
                            Lookup::Fresh => {
                                guard.key = Some(key.clone());
                                Decision::Handle
                            }
                            Lookup::Replay(stored) => Decision::Replay(stored),
                            Lookup::Refuse(error) => Decision::Refuse(error),
                        }
                    } else {
                        Decision::Handle
                    };
                    (decision, admission.statuses)
                }
            };
            (decision, statuses, latency)
        };

        let ctx = ResponseContext::new(wall, &operation).with_limits(&statuses);
        let respond = |mut response: http::Response<Bytes>, replayed| {
            dialect.decorate(response.headers_mut(), &ctx);
            Plan::Respond { response, replayed }
        };
        let plan = match decision {
            Decision::Throttle { retry_after } => respond(
                dialect.throttle_response(&ctx.with_retry_after(retry_after)),
                false,
            ),
            Decision::ServerError(status) => {
                respond(dialect.server_error_response(status, &ctx), false)
            }
            Decision::Drop => Plan::Drop,
            Decision::Refuse(error) => {
                respond(dialect.idempotency_error_response(error, &ctx), false)
            }
            Decision::Replay(stored) => {
                let mut response = http::Response::new(stored.body);
                *response.status_mut() = stored.status;
                *response.headers_mut() = stored.headers;
                response
                    .headers_mut()
                    .insert(dialect.replayed_header(), HeaderValue::from_static("true"));
                respond(response, true)
            }
            Decision::Handle => Plan::Handle {
                request,
                key: guard.key.clone(),
            },
        };
        Exchange {
            inner: inner.clone(),
            index,
            operation,
            arrived,
            arrived_wall: wall,
            side_effect,
            ledger_key,
            latency,
            extra_delay,
            reset,
            break_body,
            statuses,
            plan,
            guard,
        }
    }
}

impl Exchange {
    async fn finish(mut self) -> Reply {
        let inner = self.inner.clone();
        tokio::time::sleep(self.latency).await;
        let mut committed = false;
        let mut replayed = false;
        let reply = match std::mem::replace(&mut self.plan, Plan::Drop) {
            Plan::Respond {
                response,
                replayed: r,
            } => {
                replayed = r;
                Reply::Response(response)
            }
            Plan::Drop => Reply::Reset,
            Plan::Handle { request, key } => {
                let wall = inner.clock.wall();
                let ctx = HandlerContext {
                    index: self.index,
                    operation: self.operation.clone(),
                    side_effect: self.side_effect,
                    wall,
                };
                let mut response = inner.handler.handle(&request, &ctx);
                committed = self.side_effect && response.status().is_success();
                if committed {
                    inner
                        .ledger
                        .commit(&self.operation, std::mem::take(&mut self.ledger_key));
                }
                if let Some(key) = key {
                    let stored = Stored {
                        status: response.status(),
                        headers: response.headers().clone(),
                        body: response.body().clone(),
                    };
                    inner.lock().idempotency.complete(&key, stored);
                    self.guard.key = None;
                }
                // The limits' state was taken at arrival: report it against the same wall time.
                let ctx = ResponseContext::new(self.arrived_wall, &self.operation)
                    .with_limits(&self.statuses);
                inner.dialect.decorate(response.headers_mut(), &ctx);
                Reply::Response(response)
            }
        };
        if !self.extra_delay.is_zero() {
            tokio::time::sleep(self.extra_delay).await;
        }
        let reply = match (reply, self.break_body) {
            _ if self.reset => Reply::Reset,
            (Reply::Response(mut response), Some(pieces)) => {
                let chunked = response
                    .extensions_mut()
                    .remove::<ChunkedBody>()
                    .unwrap_or_default();
                response
                    .extensions_mut()
                    .insert(chunked.break_after(pieces));
                Reply::Response(response)
            }
            (reply, _) => reply,
        };
        let outcome = match &reply {
            Reply::Response(r) => Outcome::Answered(r.status()),
            Reply::Reset => Outcome::Reset,
        };
        let finished = inner.clock.now().saturating_duration_since(inner.start);
        inner.ledger.finish(LedgerEntry {
            index: self.index,
            arrived: self.arrived,
            finished,
            operation: self.operation.clone(),
            outcome,
            committed,
            replayed,
        });
        reply
    }
}

impl fmt::Debug for SimUpstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimUpstream")
            .field("dialect", &self.inner.dialect)
            .field("latency", &self.inner.latency)
            .field("jitter", &self.inner.jitter)
            .field("ledger", &self.inner.ledger)
            .finish_non_exhaustive()
    }
}

fn jitter(rng: &mut fastrand::Rng, max: Duration) -> Duration {
    if max.is_zero() {
        return Duration::ZERO;
    }
    let nanos = u64::try_from(max.as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(rng.u64(0..=nanos))
}

/// FNV-1a over the body: the ledger key of a side effect without an idempotency key.
fn fingerprint(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}
