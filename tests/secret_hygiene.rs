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

/// A hostile server: answers 401 quoting the `Authorization` header it received, in Stripe's
/// and OpenAI's `error.message` and in GitHub's top-level `message`.
#[derive(Debug)]
struct EchoAuth;

impl Handler for EchoAuth {
    fn handle(&self, request: &http::Request<Bytes>, _: &HandlerContext) -> http::Response<Bytes> {
        let auth = request
            .headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let message = format!("{ECHO}{auth}");
        let body = serde_json::json!({
            "message": message,
            "error": {
                "type": "invalid_request_error",
                "message": message,
            }
        });
        let mut response = http::Response::new(Bytes::from(body.to_string()));
        *response.status_mut() = StatusCode::UNAUTHORIZED;
        response
    }
}

/// How [`EchoAuth`] starts its message.
const ECHO: &str = "Invalid API Key provided: ";

/// The echoed credential reached the output, scrubbed: the redaction is in effect, not the
/// echo lost.
fn assert_echo_scrubbed(what: &str, text: &str) {
    let echoed: Vec<&str> = text
        .match_indices(ECHO)
        .map(|(at, _)| &text[at + ECHO.len()..])
        .collect();
    assert!(
        !echoed.is_empty(),
        "{what}: the echo was not surfaced:\n{text}"
    );
    // `Bearer ***`, `Basic ***`, `Bearer ghp_***`: the credential's place, scrubbed.
    assert!(
        echoed
            .iter()
            .all(|rest| rest.chars().take(24).collect::<String>().contains("***")),
        "{what}: an echo is not scrubbed:\n{text}"
    );
}

/// Throttles, server errors and resets for the first 20 requests: retries log, calls fail, and
/// still nothing may leak.
fn hostile_faults() -> FaultPlan {
    FaultPlan::new()
        .requests(0..3, Fault::throttle_without_hint())
        .requests(3..5, Fault::server_error(StatusCode::SERVICE_UNAVAILABLE))
        .requests(5..20, Fault::ResetAfterCommit)
}

/// Pushes an outcome's `Display` and `Debug` (the value's `Debug` on success).
fn record<T: std::fmt::Debug, E: std::fmt::Debug + std::fmt::Display>(
    seen: &mut Vec<String>,
    result: &Result<T, E>,
) {
    match result {
        Ok(value) => seen.push(format!("{value:?}")),
        Err(err) => {
            seen.push(format!("{err}"));
            seen.push(format!("{err:?}"));
        }
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
            .faults(hostile_faults())
            .build();
        let client = StripeClient::builder(KEY)
            .base_url("http://stripe.sim")
            .transport(Arc::new(sim.transport()))
            .clock(sim.clock())
            .build()
            .unwrap();
        for _ in 0..4 {
            let result = client
                .payment_intents()
                .create(CreatePaymentIntent::new(100, "usd"))
                .send()
                .await;
            record(&mut seen, &result);
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
        assert_echo_scrubbed("stripe", &all);
        assert_clean(WEBHOOK_SECRET, "stripe webhook", &all);
        assert!(
            all.contains("sk_live_***"),
            "the redaction is visible:\n{all}"
        );
    }
}

#[cfg(feature = "openai")]
mod openai {
    use super::*;
    use ratewise_openai::sim::OpenAiDialect;
    use ratewise_openai::{ClientBuilder, CreateEmbedding, OpenAiClient};

    const KEY: &str = "sk-proj-HyGiene0nlyForTests9xQ2LmNpVb7Kd3";

    #[tokio::test(start_paused = true)]
    async fn no_openai_key_reaches_traces_errors_or_debug_output() {
        let captured = Captured::default();
        let _guard = captured.install();
        let mut seen = Vec::new();

        let sim = SimUpstream::builder().handler(EchoAuth).build();
        let client = OpenAiClient::builder(KEY)
            .base_url("http://openai.sim/v1")
            .transport(Arc::new(sim.transport()))
            .clock(sim.clock())
            .build()
            .unwrap();
        seen.push(format!("{client:?}"));
        seen.push(format!("{:?}", OpenAiClient::builder(KEY)));
        let result = client
            .embeddings()
            .create(CreateEmbedding::new("text-embedding-3-small", "hello"))
            .await;
        assert!(result.is_err(), "the echoed 401 is refused");
        record(&mut seen, &result);

        let sim = SimUpstream::builder()
            .dialect(OpenAiDialect::new())
            .faults(hostile_faults())
            .build();
        let client = OpenAiClient::builder(KEY)
            .base_url("http://openai.sim/v1")
            .transport(Arc::new(sim.transport()))
            .clock(sim.clock())
            .build()
            .unwrap();
        for _ in 0..4 {
            let result = client
                .embeddings()
                .create(CreateEmbedding::new("text-embedding-3-small", "hello"))
                .await;
            record(&mut seen, &result);
        }

        let all = format!("{}\n{}", seen.join("\n"), captured.text());
        assert_clean(KEY, "openai", &all);
        assert_echo_scrubbed("openai", &all);
    }
}

#[cfg(feature = "github")]
mod github {
    use super::*;
    use ratewise_github::sim::GitHubSim;
    use ratewise_github::{ClientBuilder, CreateIssue, GitHubClient};

    const TOKEN: &str = "ghp_HyGiene0nlyForTests9xQ2LmNpVb7Kd3Zt";

    #[tokio::test(start_paused = true)]
    async fn no_github_token_reaches_traces_errors_or_debug_output() {
        let captured = Captured::default();
        let _guard = captured.install();
        let mut seen = Vec::new();

        let sim = SimUpstream::builder().handler(EchoAuth).build();
        let client = GitHubClient::builder(TOKEN)
            .base_url("http://github.sim")
            .transport(Arc::new(sim.transport()))
            .clock(sim.clock())
            .build()
            .unwrap();
        seen.push(format!("{client:?}"));
        seen.push(format!("{:?}", GitHubClient::builder(TOKEN)));
        let result = client
            .issues("octo", "hygiene")
            .create(CreateIssue::new("a bug"))
            .send()
            .await;
        assert!(result.is_err(), "the echoed 401 is refused");
        record(&mut seen, &result);

        let github = Arc::new(GitHubSim::new().repo("octo", "hygiene"));
        let sim = github
            .install(SimUpstream::builder())
            .faults(hostile_faults())
            .build();
        let client = GitHubClient::builder(TOKEN)
            .base_url("http://github.sim")
            .transport(Arc::new(sim.transport()))
            .clock(sim.clock())
            .build()
            .unwrap();
        for i in 0..4 {
            let result = client
                .issues("octo", "hygiene")
                .create(CreateIssue::new(format!("bug {i}")))
                .send()
                .await;
            record(&mut seen, &result);
            let result = client.issues("octo", "hygiene").list().send().await;
            record(&mut seen, &result);
        }

        let all = format!("{}\n{}", seen.join("\n"), captured.text());
        assert_clean(TOKEN, "github", &all);
        assert_echo_scrubbed("github", &all);
    }
}

#[cfg(feature = "twilio")]
mod twilio {
    use super::*;
    use base64::Engine;
    use ratewise_twilio::sim::{TwilioDialect, TwilioHandler};
    use ratewise_twilio::webhook::RequestValidator;
    use ratewise_twilio::{ClientBuilder, CreateMessage, TwilioClient};

    const ACCOUNT: &str = "AC00000000000000000000000000000001";
    const TOKEN: &str = "hygieneAuthToken0nlyForTests9xQ2L";
    const WEBHOOK_TOKEN: &str = "hygieneWebhookToken0123456789abcd";

    fn create() -> CreateMessage {
        CreateMessage::new("+14155552671", "+18005550100").body("hi")
    }

    #[tokio::test(start_paused = true)]
    async fn no_twilio_credential_reaches_traces_errors_or_debug_output() {
        let captured = Captured::default();
        let _guard = captured.install();
        let mut seen = Vec::new();

        let sim = SimUpstream::builder().handler(EchoAuth).build();
        let client = TwilioClient::builder(ACCOUNT, TOKEN)
            .base_url("http://twilio.sim")
            .transport(Arc::new(sim.transport()))
            .clock(sim.clock())
            .build()
            .unwrap();
        seen.push(format!("{client:?}"));
        seen.push(format!("{:?}", TwilioClient::builder(ACCOUNT, TOKEN)));
        let result = client.messages().create(create()).send().await;
        assert!(result.is_err(), "the echoed 401 is refused");
        record(&mut seen, &result);

        let sim = SimUpstream::builder()
            .dialect(TwilioDialect::new())
            .handler(Arc::new(TwilioHandler::new()))
            .faults(hostile_faults())
            .build();
        let client = TwilioClient::builder(ACCOUNT, TOKEN)
            .base_url("http://twilio.sim")
            .transport(Arc::new(sim.transport()))
            .clock(sim.clock())
            .build()
            .unwrap();
        for _ in 0..4 {
            let result = client.messages().create(create()).send().await;
            record(&mut seen, &result);
        }

        // A webhook with a wrong signature.
        let validator = RequestValidator::new(WEBHOOK_TOKEN);
        seen.push(format!("{validator:?}"));
        let result = validator.validate(
            "https://example.com/sms",
            [("Body", "hi"), ("From", "+14155552671")],
            "bm90IHRoZSBzaWduYXR1cmU=",
        );
        assert!(result.is_err(), "a forged signature is refused");
        record(&mut seen, &result);

        let basic = base64::engine::general_purpose::STANDARD.encode(format!("{ACCOUNT}:{TOKEN}"));
        let all = format!("{}\n{}", seen.join("\n"), captured.text());
        assert_clean(TOKEN, "twilio", &all);
        assert_echo_scrubbed("twilio", &all);
        assert_clean(&basic, "twilio basic credential", &all);
        assert_clean(WEBHOOK_TOKEN, "twilio webhook", &all);
    }
}

#[cfg(feature = "sendgrid")]
mod sendgrid {
    use super::*;
    use ratewise_sendgrid::sim::{SendGridDialect, SendGridHandler};
    use ratewise_sendgrid::{ClientBuilder, Content, Mail, Personalization, SendGridClient};

    const KEY: &str = "SG.HyGiene0nlyForTests.9xQ2LmNpVb7Kd3ZtWq";

    fn mail() -> Mail {
        Mail::new("news@example.com")
            .subject("Hi")
            .content(Content::text("Hello"))
            .personalization(Personalization::new("reader@example.com"))
    }

    #[tokio::test(start_paused = true)]
    async fn no_sendgrid_key_reaches_traces_errors_or_debug_output() {
        let captured = Captured::default();
        let _guard = captured.install();
        let mut seen = Vec::new();

        let sim = SimUpstream::builder().handler(EchoAuth).build();
        let client = SendGridClient::builder(KEY)
            .base_url("http://sendgrid.sim")
            .transport(Arc::new(sim.transport()))
            .clock(sim.clock())
            .build()
            .unwrap();
        seen.push(format!("{client:?}"));
        seen.push(format!("{:?}", SendGridClient::builder(KEY)));
        let send = client.send_mail(mail());
        seen.push(format!("{send:?}"));
        let result = send.send().await;
        assert!(result.is_err(), "the echoed 401 is refused");
        record(&mut seen, &result);

        let sim = SimUpstream::builder()
            .dialect(SendGridDialect::new())
            .handler(Arc::new(SendGridHandler::new()))
            .faults(hostile_faults())
            .build();
        let client = SendGridClient::builder(KEY)
            .base_url("http://sendgrid.sim")
            .transport(Arc::new(sim.transport()))
            .clock(sim.clock())
            .build()
            .unwrap();
        for _ in 0..4 {
            let result = client.send_mail(mail()).send().await;
            record(&mut seen, &result);
        }

        let all = format!("{}\n{}", seen.join("\n"), captured.text());
        assert_clean(KEY, "sendgrid", &all);
        assert_echo_scrubbed("sendgrid", &all);
    }
}
