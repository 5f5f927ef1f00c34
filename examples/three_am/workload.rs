//! The night of the incident: a simulated Stripe, the backlog, the webhooks, the degradation.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use ratewise_stripe::sim::{StripeDialect, StripeHandler};
use ratewise_testkit::{Fault, FaultPlan, Handler, HandlerContext, ServerLimit, SimUpstream};

use crate::args::Args;

/// When the upstream degrades (seconds after 3:14), and for how long.
pub(crate) const DEGRADED_FROM: Duration = Duration::from_secs(30);
pub(crate) const DEGRADED_FOR: Duration = Duration::from_secs(15);

/// A Stripe whose every committed PaymentIntent is counted per order, so a second charge for
/// one order shows, whatever idempotency the client did or did not use.
#[derive(Debug, Default)]
pub(crate) struct Charges {
    stripe: StripeHandler,
    per_order: Mutex<HashMap<u64, u32>>,
}

impl Charges {
    /// Charges beyond the first, summed over orders.
    pub(crate) fn duplicates(&self) -> u64 {
        self.lock()
            .values()
            .map(|n| u64::from(n.saturating_sub(1)))
            .sum()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, u32>> {
        self.per_order
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// The order number in a PaymentIntent form (`metadata[order]=N`, brackets raw or encoded).
fn order_of(body: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(body).ok()?;
    text.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key == "metadata[order]" || key == "metadata%5Border%5D").then(|| value.parse().ok())?
    })
}

/// Shares one [`Charges`] with the simulator.
#[derive(Debug, Clone)]
pub(crate) struct Counting(pub Arc<Charges>);

impl Handler for Counting {
    fn handle(
        &self,
        request: &http::Request<Bytes>,
        ctx: &HandlerContext,
    ) -> http::Response<Bytes> {
        let response = self.0.stripe.handle(request, ctx);
        if response.status() == StatusCode::OK
            && request.method() == http::Method::POST
            && request.uri().path() == "/v1/payment_intents"
            && let Some(order) = order_of(request.body())
        {
            *self.0.lock().entry(order).or_default() += 1;
        }
        response
    }
}

/// The simulated Stripe of that night: the account's write limit as a token bucket that also
/// charges refused requests (so a retry storm keeps the account throttled, as Stripe's
/// "rate-limiting your IP entirely" did), 1 % of connections reset after the charge committed,
/// and a 15 s degradation (every request a 503) half a minute in. `--lenient-server` stops
/// charging refused requests.
pub(crate) fn stripe(args: &Args, charges: &Arc<Charges>) -> SimUpstream {
    SimUpstream::builder()
        .dialect(StripeDialect::new())
        .handler(Counting(Arc::clone(charges)))
        .limit(
            ServerLimit::token_bucket(f64::from(args.limit), args.limit.max(4) / 4)
                .count_failures(!args.lenient),
        )
        .faults(
            FaultPlan::new()
                .outage(DEGRADED_FROM, DEGRADED_FOR)
                .random(0.01, Fault::ResetAfterCommit),
        )
        .latency(Duration::from_millis(40))
        .seed(args.seed)
        .build()
}

/// The PaymentIntent of order `order`, as a form.
pub(crate) fn form(order: u64) -> String {
    format!(
        "amount={}&currency=usd&metadata[order]={order}",
        1_000 + order % 9_000
    )
}

/// The orders arriving over the night: the backlog at once, then the webhooks at their rate.
/// Calls `push(order)` at each arrival, in virtual (or real) time.
pub(crate) async fn arrivals<F, Fut>(args: &Args, push: F)
where
    F: Fn(u64) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for order in 0..args.jobs as u64 {
        push(order).await;
    }
    let every = Duration::from_secs(1) / args.webhook_rate.max(1);
    for i in 0..args.webhook_jobs() as u64 {
        tokio::time::sleep(every).await;
        push(args.jobs as u64 + i).await;
    }
}
