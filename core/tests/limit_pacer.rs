//! The quota pacer: holds at zero, spreads the rest to the reset, never trusts stale news.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use ratewise_core::clock::{Clock, ManualClock, SharedClock, TokioClock};
use ratewise_core::limit::{
    BudgetName, Cost, Feedback, Limiter, QuotaPacer, QuotaSnapshot, ThrottleReason,
};

const SEC: Duration = Duration::from_secs(1);

fn requests(remaining: u64, reset_at: Instant, observed_at: Instant) -> QuotaSnapshot {
    QuotaSnapshot::new(BudgetName::REQUESTS, remaining, reset_at, observed_at)
}

fn tokens(n: u64) -> Cost {
    Cost::none().with(BudgetName::TOKENS, n)
}

/// Calls `try_acquire` greedily every `step` for `total`, returning admission offsets.
fn greedy(
    pacer: &QuotaPacer,
    clock: &ManualClock,
    step: Duration,
    total: Duration,
) -> Vec<Duration> {
    let start = clock.elapsed();
    let mut admitted = Vec::new();
    while clock.elapsed() - start < total {
        while pacer.try_acquire(&Cost::request()).is_ok() {
            admitted.push(clock.elapsed() - start);
        }
        clock.advance(step);
    }
    admitted
}

#[test]
fn before_any_snapshot_and_without_initial_limit_it_admits_freely() {
    let clock = ManualClock::new();
    let pacer = QuotaPacer::new(BudgetName::REQUESTS).clock(clock.shared());
    for _ in 0..10_000 {
        let _permit = pacer.try_acquire(&Cost::request()).unwrap();
    }
    assert_eq!(pacer.remaining(), None);
    assert_eq!(pacer.limit(), None);
}

#[test]
fn with_discovery_one_call_goes_first_and_the_rest_wait_for_its_snapshot() {
    let clock = ManualClock::new();
    let pacer = QuotaPacer::new(BudgetName::REQUESTS)
        .discovery(SEC)
        .clock(clock.shared());
    let now = clock.now();
    assert!(pacer.try_acquire(&Cost::request()).is_ok(), "the probe");
    let held = pacer.try_acquire(&Cost::request()).unwrap_err();
    assert_eq!(
        held.retry_after(now),
        Some(SEC),
        "the rest wait for the answer"
    );
    // The answer: 2 left until the reset. Exactly two more get through before it.
    pacer.observe(&requests(2, now + 10 * SEC, now));
    let admitted = greedy(&pacer, &clock, Duration::from_millis(100), 9 * SEC);
    assert_eq!(admitted.len(), 2, "{admitted:?}");
}

#[test]
fn with_discovery_an_answer_without_a_snapshot_or_the_wait_running_out_frees_the_line() {
    let clock = ManualClock::new();
    let pacer = QuotaPacer::new(BudgetName::REQUESTS)
        .discovery(SEC)
        .clock(clock.shared());
    assert!(pacer.try_acquire(&Cost::request()).is_ok());
    assert!(pacer.try_acquire(&Cost::request()).is_err());
    pacer.feedback(Feedback::Accepted);
    for _ in 0..100 {
        assert!(pacer.try_acquire(&Cost::request()).is_ok());
    }

    let pacer = QuotaPacer::new(BudgetName::REQUESTS)
        .discovery(SEC)
        .clock(clock.shared());
    assert!(pacer.try_acquire(&Cost::request()).is_ok());
    assert!(pacer.try_acquire(&Cost::request()).is_err());
    clock.advance(SEC);
    assert!(
        pacer.try_acquire(&Cost::request()).is_ok(),
        "the probe never answered"
    );
    assert!(pacer.try_acquire(&Cost::request()).is_ok());
}

#[test]
fn before_any_snapshot_the_initial_limit_applies_per_window() {
    let clock = ManualClock::new();
    let pacer = QuotaPacer::new(BudgetName::REQUESTS)
        .initial(10, 60 * SEC)
        .clock(clock.shared());
    let first = greedy(&pacer, &clock, Duration::from_millis(100), 60 * SEC);
    assert_eq!(first.len(), 10, "{first:?}");
    assert!(
        first.iter().filter(|t| **t < SEC).count() <= 2,
        "spread: {first:?}"
    );
    // The next window is restored to the initial limit.
    assert_eq!(pacer.remaining(), Some(10));
    let second = greedy(&pacer, &clock, Duration::from_millis(100), 60 * SEC);
    assert_eq!(second.len(), 10);
}

#[test]
fn remaining_zero_holds_every_caller_until_the_reset() {
    let clock = ManualClock::new();
    let pacer = QuotaPacer::new(BudgetName::REQUESTS).clock(clock.shared());
    let now = clock.now();
    let reset_at = now + 30 * SEC;
    pacer.observe(&requests(0, reset_at, now).with_limit(5_000));

    let refused = pacer.try_acquire(&Cost::request()).unwrap_err();
    assert_eq!(refused.reason, ThrottleReason::QuotaExhausted);
    assert_eq!(refused.until, Some(reset_at));
    assert_eq!(refused.budget, BudgetName::REQUESTS);

    clock.advance(29 * SEC);
    assert!(pacer.try_acquire(&Cost::request()).is_err());
    clock.advance(SEC);
    assert!(pacer.try_acquire(&Cost::request()).is_ok());
    assert_eq!(pacer.remaining(), Some(4_999));
}

#[tokio::test(start_paused = true)]
async fn an_exhausted_budget_refuses_at_once_a_caller_that_will_not_wait_for_the_reset() {
    let clock = TokioClock::shared();
    let pacer = QuotaPacer::new(BudgetName::REQUESTS).clock(clock.clone());
    let now = clock.now();
    pacer.observe(&requests(0, now + 600 * SEC, now));

    let refused = pacer.acquire(&Cost::request(), 10 * SEC).await.unwrap_err();
    assert_eq!(refused.reason, ThrottleReason::QuotaExhausted);
    assert_eq!(refused.until, Some(now + 600 * SEC));
    assert_eq!(clock.now(), now, "refused without sleeping");

    let _permit = pacer.acquire(&Cost::request(), 700 * SEC).await.unwrap();
    assert_eq!(
        clock.now(),
        now + 600 * SEC,
        "admitted exactly at the reset"
    );
}

#[test]
fn the_remaining_quota_is_spread_evenly_to_the_reset() {
    let clock = ManualClock::new();
    let pacer = QuotaPacer::new(BudgetName::REQUESTS)
        .burst_share(0.0)
        .clock(clock.shared());
    let now = clock.now();
    pacer.observe(&requests(60, now + 60 * SEC, now));
    let admitted = greedy(&pacer, &clock, Duration::from_millis(50), 60 * SEC);
    assert_eq!(
        admitted.len(),
        60,
        "the whole quota is usable before the reset"
    );
    for second in 0..60u32 {
        let in_second = admitted
            .iter()
            .filter(|t| **t >= SEC * second && **t < SEC * (second + 1))
            .count();
        assert!(
            in_second <= 2,
            "{in_second} admitted in second {second}: {admitted:?}"
        );
    }
    assert!(admitted.iter().filter(|t| **t < 10 * SEC).count() <= 12);
}

#[test]
fn the_burst_share_lets_a_slice_of_the_quota_go_at_once() {
    let clock = ManualClock::new();
    let pacer = QuotaPacer::new(BudgetName::REQUESTS).clock(clock.shared());
    let now = clock.now();
    // GitHub: 5,000 an hour; 5 % of the hour ahead of schedule is 250 calls.
    pacer.observe(&requests(5_000, now + 3_600 * SEC, now).with_limit(5_000));
    let mut at_once = 0;
    while pacer.try_acquire(&Cost::request()).is_ok() {
        at_once += 1;
    }
    assert!((240..=260).contains(&at_once), "{at_once}");
    let refused = pacer.try_acquire(&Cost::request()).unwrap_err();
    assert_eq!(refused.reason, ThrottleReason::WouldWait);
    assert!(refused.retry_after(clock.now()).unwrap() < SEC);
    // Then about one call per 0.75 s: the 4,750 left spread over the hour left.
    let paced = greedy(&pacer, &clock, Duration::from_millis(10), 72 * SEC);
    assert!((85..=110).contains(&paced.len()), "{}", paced.len());
}

#[test]
fn after_the_reset_passes_the_quota_is_restored_to_the_limit() {
    let clock = ManualClock::new();
    let pacer = QuotaPacer::new(BudgetName::REQUESTS).clock(clock.shared());
    let now = clock.now();
    pacer.observe(&requests(0, now + 10 * SEC, now).with_limit(5));
    clock.advance(10 * SEC);
    assert_eq!(pacer.remaining(), Some(5));
    // The window length is learned from the snapshot: 10 s.
    assert_eq!(pacer.reset_at(), Some(now + 20 * SEC));
    clock.advance(25 * SEC);
    assert_eq!(pacer.reset_at(), Some(now + 40 * SEC));
}

#[test]
fn after_the_reset_with_no_known_limit_it_admits_freely_again() {
    let clock = ManualClock::new();
    let pacer = QuotaPacer::new(BudgetName::REQUESTS).clock(clock.shared());
    let now = clock.now();
    pacer.observe(&requests(0, now + 10 * SEC, now));
    clock.advance(10 * SEC);
    assert_eq!(pacer.remaining(), None);
    assert!(pacer.try_acquire(&Cost::request()).is_ok());
}

#[test]
fn a_stale_snapshot_arriving_late_does_not_restore_quota() {
    let clock = ManualClock::new();
    let pacer = QuotaPacer::new(BudgetName::REQUESTS).clock(clock.shared());
    let t0 = clock.now();
    let reset_at = t0 + 3_600 * SEC;
    pacer.observe(&requests(50, reset_at, t0));
    pacer.observe(&requests(40, reset_at, t0 + 2 * SEC));
    // A response observed in between reaches `observe` last.
    pacer.observe(&requests(45, reset_at, t0 + SEC));
    assert_eq!(pacer.remaining(), Some(40));
    // Epoch-second rounding puts the same window's reset half a second off: still the same.
    pacer.observe(&requests(
        48,
        reset_at + Duration::from_millis(500),
        t0 + 3 * SEC,
    ));
    assert_eq!(pacer.remaining(), Some(40));
}

#[test]
fn a_later_reset_observed_out_of_order_is_not_a_new_window() {
    let clock = ManualClock::new();
    let pacer = QuotaPacer::new(BudgetName::REQUESTS).clock(clock.shared());
    let t0 = clock.now();
    pacer.observe(&requests(3, t0 + 60 * SEC, t0 + 5 * SEC));
    pacer.observe(&requests(59, t0 + 120 * SEC, t0 + 4 * SEC));
    assert_eq!(pacer.remaining(), Some(3));
    assert_eq!(pacer.reset_at(), Some(t0 + 60 * SEC));
}

#[test]
fn a_later_reset_observed_later_starts_a_new_window() {
    let clock = ManualClock::new();
    let pacer = QuotaPacer::new(BudgetName::REQUESTS).clock(clock.shared());
    let t0 = clock.now();
    pacer.observe(&requests(0, t0 + 60 * SEC, t0));
    clock.advance(5 * SEC);
    // OpenAI's rolling window: a newer response says it replenished, with a later reset.
    pacer.observe(&requests(40, t0 + 70 * SEC, t0 + 5 * SEC));
    assert_eq!(pacer.remaining(), Some(40));
    assert_eq!(pacer.reset_at(), Some(t0 + 70 * SEC));
}

#[test]
fn a_snapshot_whose_reset_has_passed_is_ignored_but_its_limit_is_learned() {
    let clock = ManualClock::new();
    let pacer = QuotaPacer::new(BudgetName::REQUESTS).clock(clock.shared());
    let t0 = clock.now();
    clock.advance(10 * SEC);
    pacer.observe(&requests(0, t0 + 5 * SEC, t0).with_limit(100));
    assert_eq!(pacer.remaining(), None);
    assert_eq!(pacer.limit(), Some(100));
}

#[test]
fn the_server_can_lower_an_assumed_window_but_not_raise_it() {
    let clock = ManualClock::new();
    let pacer = QuotaPacer::new(BudgetName::REQUESTS)
        .initial(100, 60 * SEC)
        .burst_share(1.0)
        .clock(clock.shared());
    for _ in 0..30 {
        let _permit = pacer.try_acquire(&Cost::request()).unwrap();
    }
    assert_eq!(pacer.remaining(), Some(70));
    let now = clock.now();
    // The first response counts only itself: the 29 others are still in flight.
    pacer.observe(&requests(99, now + 60 * SEC, now).with_limit(100));
    assert_eq!(pacer.remaining(), Some(70));
    // Another client spent most of the window.
    pacer.observe(&requests(20, now + 60 * SEC, now));
    assert_eq!(pacer.remaining(), Some(20));
}

#[test]
fn reconcile_refunds_and_charges_the_difference() {
    let clock = ManualClock::new();
    let pacer = QuotaPacer::new(BudgetName::TOKENS)
        .burst_share(1.0)
        .clock(clock.shared());
    let now = clock.now();
    pacer.observe(
        &QuotaSnapshot::new(BudgetName::TOKENS, 1_000, now + 60 * SEC, now).with_limit(1_000),
    );
    let _permit = pacer.try_acquire(&tokens(600)).unwrap();
    assert_eq!(pacer.remaining(), Some(400));
    pacer.reconcile(&tokens(600), &tokens(200));
    assert_eq!(pacer.remaining(), Some(800));
    pacer.reconcile(&tokens(100), &tokens(300));
    assert_eq!(pacer.remaining(), Some(600));
    pacer.reconcile(&tokens(200), &Cost::none());
    assert_eq!(pacer.remaining(), Some(800));
    // A refund never lifts the estimate above the limit.
    pacer.reconcile(&tokens(5_000), &Cost::none());
    assert_eq!(pacer.remaining(), Some(1_000));
}

#[test]
fn a_full_refund_gives_back_the_place_in_the_schedule() {
    let clock = ManualClock::new();
    let pacer = QuotaPacer::new(BudgetName::REQUESTS)
        .burst_share(0.0)
        .clock(clock.shared());
    let now = clock.now();
    pacer.observe(&requests(10, now + 100 * SEC, now));
    let _a = pacer.try_acquire(&Cost::request()).unwrap();
    let _b = pacer.try_acquire(&Cost::request()).unwrap();
    assert!(pacer.try_acquire(&Cost::request()).is_err());
    pacer.reconcile(&Cost::request(), &Cost::none());
    assert!(pacer.try_acquire(&Cost::request()).is_ok());
}

#[test]
fn a_cost_larger_than_the_limit_can_never_be_admitted() {
    let clock = ManualClock::new();
    let pacer = QuotaPacer::new(BudgetName::TOKENS).clock(clock.shared());
    let now = clock.now();
    pacer.observe(
        &QuotaSnapshot::new(BudgetName::TOKENS, 30_000, now + 60 * SEC, now).with_limit(30_000),
    );
    let refused = pacer.try_acquire(&tokens(31_538)).unwrap_err();
    assert_eq!(refused.reason, ThrottleReason::ExceedsCapacity);
    assert_eq!(refused.until, None);
}

#[tokio::test(start_paused = true)]
async fn fifty_concurrent_callers_after_remaining_ten_admit_ten_before_the_reset() {
    let clock = TokioClock::shared();
    let pacer = Arc::new(QuotaPacer::new(BudgetName::REQUESTS).clock(clock.clone()));
    let now = clock.now();
    let reset_at = now + 60 * SEC;
    pacer.observe(&requests(10, reset_at, now).with_limit(100));
    let times = run_callers(&pacer, &clock, 50, 120 * SEC).await;
    let before = times.iter().filter(|t| **t < reset_at).count();
    assert_eq!(before, 10);
    assert_eq!(times.len(), 50, "the rest go after the reset");
}

#[allow(clippy::unwrap_used)] // a test helper: a panicking caller fails the test
/// Spawns `n` callers of one request each, waiting at most `max_wait`; their admission times.
async fn run_callers(
    pacer: &Arc<QuotaPacer>,
    clock: &SharedClock,
    n: usize,
    max_wait: Duration,
) -> Vec<Instant> {
    let mut tasks = Vec::new();
    for _ in 0..n {
        let (pacer, clock) = (pacer.clone(), clock.clone());
        tasks.push(tokio::spawn(async move {
            pacer
                .acquire(&Cost::request(), max_wait)
                .await
                .ok()
                .map(|_permit| clock.now())
        }));
    }
    let mut times = Vec::new();
    for task in tasks {
        times.extend(task.await.unwrap());
    }
    times
}

#[allow(clippy::unwrap_used)] // a test helper: no runtime, no test
fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Many concurrent callers, each reporting the server's count back after a random delay
    /// (so snapshots arrive out of order): admissions before the reset never exceed what the
    /// first snapshot reported.
    #[test]
    fn the_pacer_never_admits_more_than_the_reported_remaining_before_the_reset(
        remaining in 0u64..25,
        reset_secs in 1u64..120,
        callers in 1usize..60,
        burst_share in 0.0f64..1.0,
        delays_ms in prop::collection::vec(0u64..3_000, 60),
        limit_known in any::<bool>(),
    ) {
        paused_runtime().block_on(async {
            let clock = TokioClock::shared();
            let pacer = Arc::new(
                QuotaPacer::new(BudgetName::REQUESTS).burst_share(burst_share).clock(clock.clone()),
            );
            let now = clock.now();
            let reset_at = now + Duration::from_secs(reset_secs);
            let first = requests(remaining, reset_at, now);
            pacer.observe(&if limit_known { first.with_limit(remaining.max(1)) } else { first });
            let server_used = Arc::new(AtomicU64::new(0));
            let times = Arc::new(Mutex::new(Vec::new()));
            let mut tasks = Vec::new();
            for delay in delays_ms.iter().copied().take(callers) {
                let (pacer, clock) = (pacer.clone(), clock.clone());
                let (server_used, times) = (server_used.clone(), times.clone());
                tasks.push(tokio::spawn(async move {
                    let Ok(_permit) = pacer.acquire(&Cost::request(), 300 * SEC).await else {
                        return;
                    };
                    let admitted_at = clock.now();
                    times.lock().unwrap().push(admitted_at);
                    if admitted_at >= reset_at {
                        return;
                    }
                    // The server counts the call, answers, and the answer travels back.
                    let used = server_used.fetch_add(1, Ordering::SeqCst) + 1;
                    tokio::time::sleep(Duration::from_millis(delay)).await;
                    pacer.observe(&requests(remaining.saturating_sub(used), reset_at, admitted_at));
                }));
            }
            for task in tasks {
                task.await.unwrap();
            }
            let times = times.lock().unwrap();
            let before = times.iter().filter(|t| **t < reset_at).count() as u64;
            prop_assert!(before <= remaining, "{} admitted before the reset, {} reported", before, remaining);
            prop_assert_eq!(pacer.waiting(), 0);
            Ok(())
        })?;
    }

    /// Snapshots of one window observed in any order only ever lower the estimate, ending at
    /// the lowest reported.
    #[test]
    fn out_of_order_snapshots_never_restore_quota(
        order in Just((0usize..12).collect::<Vec<_>>()).prop_shuffle(),
        spends in prop::collection::vec(0u64..20, 12),
        jitter_ms in prop::collection::vec(0u64..900, 12),
    ) {
        let clock = ManualClock::new();
        let pacer = QuotaPacer::new(BudgetName::REQUESTS).clock(clock.shared());
        let t0 = clock.now();
        let reset_at = t0 + 3_600 * SEC;
        // The true history: remaining decreases as time goes on.
        let mut left = 500u64;
        let history: Vec<QuotaSnapshot> = spends
            .iter()
            .zip(&jitter_ms)
            .enumerate()
            .map(|(i, (spend, jitter))| {
                left = left.saturating_sub(*spend);
                let observed = t0 + SEC * u32::try_from(i).unwrap();
                // Epoch-second resets wobble within the tolerance.
                let reset = reset_at + Duration::from_millis(*jitter);
                requests(left, reset, observed).with_limit(5_000)
            })
            .collect();
        clock.advance(20 * SEC);
        let mut previous = u64::MAX;
        for i in order {
            pacer.observe(&history[i]);
            let now = pacer.remaining().unwrap();
            prop_assert!(now <= previous, "{} after {}", now, previous);
            previous = now;
        }
        prop_assert_eq!(pacer.remaining(), Some(left));
    }

    /// Callers cancelled at random points leave nobody in line and every unit accounted for;
    /// the survivors are admitted in arrival order.
    #[test]
    fn cancelled_callers_leak_nothing_and_the_rest_are_served_in_order(
        remaining in 0u64..15,
        cancel_after_ms in prop::collection::vec(0u64..40_000, 1..40),
    ) {
        paused_runtime().block_on(async {
            let clock = TokioClock::shared();
            let pacer = Arc::new(QuotaPacer::new(BudgetName::REQUESTS).clock(clock.clone()));
            let now = clock.now();
            let reset_at = now + 30 * SEC;
            pacer.observe(&requests(remaining, reset_at, now).with_limit(15));
            let order = Arc::new(Mutex::new(Vec::new()));
            let mut tasks = Vec::new();
            for (i, ms) in cancel_after_ms.iter().copied().enumerate() {
                let (pacer, clock, order) = (pacer.clone(), clock.clone(), order.clone());
                tasks.push(tokio::spawn(async move {
                    let cost = Cost::request();
                    let call = pacer.acquire(&cost, 60 * SEC);
                    if let Ok(Ok(_permit)) = tokio::time::timeout(Duration::from_millis(ms), call).await {
                        order.lock().unwrap().push((i, clock.now()));
                    }
                }));
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            for task in tasks {
                task.await.unwrap();
            }
            prop_assert_eq!(pacer.waiting(), 0);
            let order = order.lock().unwrap().clone();
            let indices: Vec<usize> = order.iter().map(|(i, _)| *i).collect();
            let mut sorted = indices.clone();
            sorted.sort_unstable();
            prop_assert_eq!(&indices, &sorted, "served out of order");
            let before = order.iter().filter(|(_, t)| *t < reset_at).count() as u64;
            prop_assert!(before <= remaining);
            // No reservation leaked: the estimate is exactly what was not admitted.
            if clock.now() < reset_at {
                prop_assert_eq!(pacer.remaining(), Some(remaining - before));
            } else {
                // Restored to the limit at the reset, for another 30 s window.
                let after = order.len() as u64 - before;
                prop_assert_eq!(pacer.remaining(), Some(15 - after));
            }
            Ok(())
        })?;
    }
}

#[tokio::test(start_paused = true)]
async fn a_small_caller_never_overtakes_a_big_one_that_arrived_first() {
    let clock = TokioClock::shared();
    let pacer = Arc::new(
        QuotaPacer::new(BudgetName::TOKENS)
            .burst_share(1.0)
            .clock(clock.clone()),
    );
    let now = clock.now();
    pacer.observe(
        &QuotaSnapshot::new(BudgetName::TOKENS, 100, now + 10 * SEC, now).with_limit(1_000),
    );
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for (name, amount) in [("big", 800), ("small", 10)] {
        let (pacer, order) = (pacer.clone(), order.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = pacer.acquire(&tokens(amount), 60 * SEC).await.unwrap();
            order.lock().unwrap().push(name);
        }));
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    // The small one fits the 100 left, but waits its turn behind the big one.
    assert_eq!(pacer.waiting(), 2);
    assert!(
        pacer.try_acquire(&tokens(1)).is_err(),
        "no barging past the line"
    );
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(*order.lock().unwrap(), ["big", "small"]);
}

#[test]
fn a_rolling_budget_admits_again_as_each_unit_comes_back_not_at_the_reset() {
    let clock = ManualClock::new();
    let pacer = QuotaPacer::new(BudgetName::REQUESTS)
        .rolling(SEC)
        .clock(clock.shared());
    let start = clock.now();
    // The server: 10 per trailing second, 9 left after the first call, whole again in 1 s.
    assert!(pacer.try_acquire(&Cost::request()).is_ok());
    pacer.observe(&requests(9, start + SEC, start).with_limit(10));
    for _ in 0..9 {
        assert!(pacer.try_acquire(&Cost::request()).is_ok());
    }
    let refused = pacer.try_acquire(&Cost::request()).unwrap_err();
    assert_eq!(refused.reason, ThrottleReason::QuotaExhausted);
    assert_eq!(
        refused.until,
        Some(start + SEC),
        "the first unit comes back"
    );
    // At full use the server says "nothing left, whole again in a second": a fixed-window
    // reading would wait for that; the rolling one admits as units come back.
    clock.advance(SEC);
    pacer.observe(&requests(0, clock.now() + SEC, clock.now()).with_limit(10));
    let per_step = greedy(&pacer, &clock, Duration::from_millis(100), 3 * SEC);
    assert_eq!(
        per_step.len(),
        30,
        "10 per second, at the limit: {per_step:?}"
    );
}

#[test]
fn a_rolling_budget_spent_by_another_client_waits_for_the_reset() {
    let clock = ManualClock::new();
    let pacer = QuotaPacer::new(BudgetName::REQUESTS)
        .rolling(10 * SEC)
        .clock(clock.shared());
    let now = clock.now();
    assert!(pacer.try_acquire(&Cost::request()).is_ok());
    clock.advance(2 * SEC);
    // 10 per 10 s; we spent 1, yet the server says 4 left: 5 are someone else's, back by 6 s.
    let at = clock.now();
    pacer.observe(&requests(4, now + 6 * SEC, at).with_limit(10));
    assert_eq!(pacer.remaining(), Some(4));
    for _ in 0..4 {
        assert!(pacer.try_acquire(&Cost::request()).is_ok());
    }
    let refused = pacer.try_acquire(&Cost::request()).unwrap_err();
    assert_eq!(refused.until, Some(now + 6 * SEC));
    clock.advance(4 * SEC);
    assert_eq!(
        pacer.remaining(),
        Some(5),
        "the other client's units came back"
    );
}

#[tokio::test(start_paused = true)]
async fn a_rolling_budget_holds_a_waiting_caller_until_a_unit_comes_back() {
    let clock = TokioClock::shared();
    let pacer = QuotaPacer::new(BudgetName::REQUESTS)
        .rolling(SEC)
        .initial(2, SEC)
        .clock(Arc::clone(&clock));
    let start = clock.now();
    let _a = pacer.acquire(&Cost::request(), SEC).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _b = pacer.acquire(&Cost::request(), SEC).await.unwrap();
    let _c = pacer.acquire(&Cost::request(), SEC).await.unwrap();
    assert_eq!(
        clock.now() - start,
        SEC,
        "the first unit came back one window later"
    );
    let refused = pacer
        .acquire(&Cost::request(), Duration::from_millis(100))
        .await
        .unwrap_err();
    assert_eq!(refused.until, Some(start + Duration::from_millis(1300)));
}
