//! The learned concurrency limit: slow start, a ceiling set by the first throttle, probing.

use std::time::Duration;

use ratewise_core::limit::{Cost, Feedback, LearnedConcurrencyLimiter, Limiter, Permit};

fn fill(limiter: &LearnedConcurrencyLimiter) -> Vec<Permit> {
    std::iter::from_fn(|| limiter.try_acquire(&Cost::request()).ok()).collect()
}

#[test]
fn slow_start_grows_the_ceiling_only_while_callers_fill_it() {
    let limiter = LearnedConcurrencyLimiter::new();
    let initial = LearnedConcurrencyLimiter::INITIAL;
    let mut held = fill(&limiter);
    assert_eq!(held.len() as u64, initial);
    // Each accepted call sent beside 9 others grows the ceiling by one.
    for _ in 0..5 {
        drop(held.pop());
        limiter.feedback(Feedback::Accepted);
        held.extend(fill(&limiter));
    }
    assert_eq!(limiter.ceiling(), initial + 5);
    assert_eq!(limiter.in_flight(), initial + 5);
    drop(held);
    // A call sent alone says nothing about the ceiling.
    let alone = limiter.try_acquire(&Cost::request()).unwrap();
    drop(alone);
    limiter.feedback(Feedback::Accepted);
    assert_eq!(limiter.ceiling(), initial + 5);
    assert!(!limiter.has_learned());
}

#[test]
fn a_throttle_sets_the_ceiling_to_what_the_server_held_and_growth_slows() {
    let limiter = LearnedConcurrencyLimiter::new();
    let mut held = fill(&limiter);
    let last = held.pop().unwrap();
    drop(last);
    limiter.feedback(Feedback::Throttled);
    assert!(limiter.has_learned());
    assert_eq!(limiter.ceiling(), 9, "9 others were in flight");
    // A throttle of a call sent beside fewer lowers it further; one beside more does not.
    drop(held.pop());
    limiter.feedback(Feedback::Throttled);
    assert_eq!(limiter.ceiling(), 8);
    drop(held.pop());
    limiter.feedback(Feedback::Accepted);
    held.extend(fill(&limiter));
    assert_eq!(limiter.ceiling(), 8, "growth after a throttle is slow");
    // Probing: one more slot per PROBE_ROUNDS rounds of full use.
    let rounds = 8 * LearnedConcurrencyLimiter::PROBE_ROUNDS - 1;
    for _ in 0..rounds {
        drop(held.pop());
        limiter.feedback(Feedback::Accepted);
        held.extend(fill(&limiter));
    }
    assert_eq!(limiter.ceiling(), 9);
}

#[tokio::test(start_paused = true)]
async fn a_waiting_caller_gets_the_slot_a_finished_call_frees() {
    let limiter = std::sync::Arc::new(LearnedConcurrencyLimiter::new());
    let held = fill(&limiter);
    let waiter = {
        let limiter = std::sync::Arc::clone(&limiter);
        tokio::spawn(async move {
            limiter
                .acquire(&Cost::request(), Duration::from_secs(5))
                .await
                .map(drop)
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!waiter.is_finished());
    drop(held);
    assert!(waiter.await.unwrap().is_ok());
    let held = fill(&limiter);
    let refused = limiter
        .acquire(&Cost::request(), Duration::from_millis(50))
        .await
        .unwrap_err();
    assert_eq!(
        refused.until, None,
        "a slot frees when a call finishes: unknown"
    );
    drop(held);
}

#[test]
fn a_throttle_with_a_hint_is_left_to_the_hint() {
    let limiter = LearnedConcurrencyLimiter::new();
    let mut held = fill(&limiter);
    drop(held.pop());
    limiter.feedback(Feedback::ThrottledWithHint);
    assert!(!limiter.has_learned());
    assert_eq!(limiter.ceiling(), LearnedConcurrencyLimiter::INITIAL);
    drop(held);
}
