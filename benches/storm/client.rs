//! The strategies side by side: the testkit's baselines and ratewise's pipeline, each making
//! one logical call (with its idempotency key) through the same simulated transport.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::HeaderValue;
use ratewise::clock::SharedClock;
use ratewise::idempotency::IdempotencyKey;
use ratewise::provider::{Provider, RequestSpec};
use ratewise::upstream::Upstream;
use ratewise_testkit::baseline::{
    ArticleRetry, BackonRetry, Baseline, NaiveRetry, OpenAiPython, StripeNode,
};
use ratewise_testkit::{GenericProvider, SimTransport};

use crate::openai::{OpenAiLike, TOKENS_HEADER};
use crate::scenario::{Kind, RPM, Scenario, TPM};

/// The strategies, in table order.
pub(crate) const STRATEGIES: [&str; 6] = [
    "naive",
    "withRetry",
    "openai-python",
    "stripe-node",
    "backon",
    "ratewise",
];

/// One strategy, ready to make calls against one cell's upstream.
pub(crate) enum Client {
    Baseline(Box<dyn Baseline>, SimTransport),
    Ratewise(Upstream<GenericProvider>),
    RatewiseOpenAi(Upstream<OpenAiLike>),
}

impl Client {
    pub(crate) fn new(
        name: &str,
        scenario: &Scenario,
        transport: SimTransport,
        clock: SharedClock,
        seed: u64,
    ) -> Self {
        let baseline: Box<dyn Baseline> = match name {
            "naive" => Box::new(NaiveRetry::new()),
            "withRetry" => Box::new(ArticleRetry::new(clock, seed)),
            "openai-python" => Box::new(OpenAiPython::new(clock, seed)),
            "stripe-node" => Box::new(StripeNode::new(seed)),
            "backon" => Box::new(BackonRetry::new(seed)),
            _ => {
                return match scenario.kind {
                    Kind::OpenAi => Client::RatewiseOpenAi(pipeline(
                        OpenAiLike::new(RPM, TPM),
                        transport,
                        clock,
                        seed,
                    )),
                    // The API documents its sliding window ("100 in any trailing second"),
                    // as the OpenAI client is configured with its tier.
                    Kind::SlidingWindow => Client::Ratewise(pipeline(
                        GenericProvider::new().rolling_window(Duration::from_secs(1)),
                        transport,
                        clock,
                        seed,
                    )),
                    _ => Client::Ratewise(pipeline(GenericProvider::new(), transport, clock, seed)),
                };
            }
        };
        Client::Baseline(baseline, transport)
    }

    /// Makes logical call `i`; `Err` names why it failed.
    pub(crate) async fn call(&self, i: usize, scenario: &Scenario) -> Result<(), String> {
        let key = format!("call-{i:06}");
        let body = Bytes::from(format!("{{\"i\":{i}}}"));
        let tokens = scenario.tokens.get(i).copied();
        match self {
            Client::Baseline(baseline, transport) => {
                let mut request = http::Request::post("http://sim.test/v1/work")
                    .header(http::header::CONTENT_TYPE, "application/json")
                    .header("idempotency-key", key);
                if let Some(tokens) = tokens {
                    request = request.header(&TOKENS_HEADER, tokens);
                }
                let request = request.body(body).map_err(|e| e.to_string())?;
                baseline
                    .call(transport, &request)
                    .await
                    .result
                    .map(drop)
                    .map_err(|e| e.to_string())
            }
            Client::Ratewise(upstream) => execute(upstream, spec(key, body, tokens)).await,
            Client::RatewiseOpenAi(upstream) => execute(upstream, spec(key, body, tokens)).await,
        }
    }
}

fn pipeline<P: Provider>(
    provider: P,
    transport: SimTransport,
    clock: SharedClock,
    seed: u64,
) -> Upstream<P> {
    Upstream::builder(provider, "http://sim.test")
        .transport(Arc::new(transport))
        .clock(clock)
        .seed(seed)
        .build()
        .unwrap_or_else(|e| panic!("the pipeline builds: {e}"))
}

fn spec(key: String, body: Bytes, tokens: Option<u64>) -> RequestSpec {
    let mut spec = RequestSpec::post("/v1/work", "work.create").body("application/json", body);
    if let Ok(key) = IdempotencyKey::parse(&key) {
        spec = spec.idempotency_key(key);
    }
    if let Some(tokens) = tokens {
        spec = spec.header(TOKENS_HEADER.clone(), HeaderValue::from(tokens));
    }
    spec
}

async fn execute<P: Provider>(upstream: &Upstream<P>, spec: RequestSpec) -> Result<(), String> {
    match upstream.execute(spec).await {
        Ok(_) => Ok(()),
        Err(error) => {
            // The variant's name: `Throttled`, `RetryBudgetExhausted`, `Api` (+ status), …
            let debug = format!("{error:?}");
            let kind = debug
                .split([' ', '{', '('])
                .next()
                .unwrap_or("error")
                .to_owned();
            Err(match error.status() {
                Some(status) => format!("{kind} {}", status.as_u16()),
                None => kind,
            })
        }
    }
}

/// How long a cell may run in virtual time before its unfinished calls are abandoned.
pub(crate) fn cap(scenario: &Scenario) -> Duration {
    scenario.minimum * 3
}
