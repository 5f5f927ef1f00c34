//! Secret hygiene, per provider: run a failing scenario (auth refused with the key echoed back
//! by the server, throttles, server errors, connection resets, a bad webhook signature) with
//! every `tracing` event captured at TRACE, collect the `Display` and `Debug` of every error,
//! client and builder, and assert that no credential appears anywhere.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::StatusCode;
use ratewise_testkit::{Fault, FaultPlan, Handler, HandlerContext, SimUpstream};

/// Every byte `tracing` writes while the guard lives.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn install(&self) -> tracing::subscriber::DefaultGuard {
        let writer = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::set_default(subscriber)
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// A hostile server: answers 401 quoting the `Authorization` header it received.
#[derive(Debug)]
struct EchoAuth;

impl Handler for EchoAuth {
    fn handle(&self, request: &http::Request<Bytes>, _: &HandlerContext) -> http::Response<Bytes> {
        let auth = request
            .headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let body = serde_json::json!({
            "error": {
                "type": "invalid_request_error",
                "message": format!("Invalid API Key provided: {auth}"),
            }
        });
        let mut response = http::Response::new(Bytes::from(body.to_string()));
        *response.status_mut() = StatusCode::UNAUTHORIZED;
        response
    }
}

fn assert_clean(secret: &str, what: &str, text: &str) {
    assert!(!text.is_empty(), "{what}: nothing was captured");
    // The whole secret, and its distinctive tail (a partial leak is still a leak).
    let tail = &secret[secret.len() - 12..];
    assert!(
        !text.contains(secret) && !text.contains(tail),
        "{what} leaks the secret:\n{text}"
    );
}

#[cfg(feature = "stripe")]
mod stripe {
    use super::*;
    use ratewise_stripe::webhook::WebhookVerifier;
    use ratewise_stripe::{ClientBuilder, CreatePaymentIntent, StripeClient};

    const KEY: &str = "sk_live_51HyGiene0nlyForTests9xQ2LmNpVb7";
    const WEBHOOK_SECRET: &str = "whsec_hygieneWebhookSecret0123456789abc";

    #[tokio::test(start_paused = true)]
    async fn no_stripe_credential_reaches_traces_errors_or_debug_output() {
        let captured = Captured::default();
        let _guard = captured.install();
        let mut seen = Vec::new();

        // The server echoes the key back in its 401 body.
        let sim = SimUpstream::builder().handler(EchoAuth).build();
        let client = StripeClient::builder(KEY)
            .base_url("http://stripe.sim")
            .transport(Arc::new(sim.transport()))
            .clock(sim.clock())
            .build()
            .unwrap();
        seen.push(format!("{client:?}"));
        seen.push(format!("{:?}", StripeClient::builder(KEY)));
        let err = client
            .payment_intents()
            .create(CreatePaymentIntent::new(2000, "usd"))
            .send()
            .await
            .unwrap_err();
        seen.push(format!("{err}"));
        seen.push(format!("{err:?}"));

        // Throttles, server errors and resets: retries log and still nothing leaks.
        let sim = SimUpstream::builder()
            .dialect(ratewise_stripe::sim::StripeDialect::new())
            .faults(
                FaultPlan::new()
                    .requests(0..3, Fault::throttle_without_hint())
                    .requests(3..5, Fault::server_error(StatusCode::SERVICE_UNAVAILABLE))
                    .requests(5..20, Fault::ResetAfterCommit),
            )
            .build();
        let client = StripeClient::builder(KEY)
            .base_url("http://stripe.sim")
            .transport(Arc::new(sim.transport()))
            .clock(sim.clock())
            .build()
            .unwrap();
        for _ in 0..4 {
            match client
                .payment_intents()
                .create(CreatePaymentIntent::new(100, "usd"))
                .send()
                .await
            {
                Ok(intent) => seen.push(format!("{intent:?}")),
                Err(err) => {
                    seen.push(format!("{err}"));
                    seen.push(format!("{err:?}"));
                }
            }
        }

        // A webhook with a wrong signature: the error says so without the secret.
        let verifier = WebhookVerifier::new(WEBHOOK_SECRET);
        seen.push(format!("{verifier:?}"));
        let err = verifier
            .verify(b"{}", "t=1,v1=deadbeef")
            .expect_err("a forged signature is refused");
        seen.push(format!("{err}"));
        seen.push(format!("{err:?}"));

        let all = format!("{}\n{}", seen.join("\n"), captured.text());
        assert_clean(KEY, "stripe", &all);
        assert_clean(WEBHOOK_SECRET, "stripe webhook", &all);
        assert!(
            all.contains("sk_live_***"),
            "the redaction is visible:\n{all}"
        );
    }
}
