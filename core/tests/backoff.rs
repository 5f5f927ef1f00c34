//! Backoff invariants, for any base, cap, attempt number and seed.

#![allow(clippy::unwrap_used)] // test helpers may fail loudly

use std::time::Duration;

use fastrand::Rng;
use proptest::prelude::*;
use ratewise_core::backoff::{Backoff, Jitter};

fn duration() -> impl Strategy<Value = Duration> {
    prop_oneof![
        (0u64..=120_000).prop_map(Duration::from_millis),
        any::<u64>().prop_map(Duration::from_nanos),
        Just(Duration::MAX),
    ]
}

fn attempt() -> impl Strategy<Value = u32> {
    prop_oneof![0u32..80, any::<u32>(), Just(u32::MAX)]
}

/// `min(cap, base·2ⁿ)` computed independently, in u128 nanoseconds saturated to u64.
fn ceiling(base: Duration, cap: Duration, n: u32) -> Duration {
    let sat = |d: Duration| d.as_nanos().min(u128::from(u64::MAX));
    let grown = if n >= 128 {
        u128::MAX
    } else {
        sat(base).saturating_mul(1u128 << n.min(127))
    };
    let grown = if sat(base) == 0 { 0 } else { grown };
    Duration::from_nanos(u64::try_from(grown.min(sat(cap))).unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn full_jitter_is_between_zero_and_the_capped_exponential(
        base in duration(), cap in duration(), n in attempt(), seed in any::<u64>()
    ) {
        let b = Backoff::new().base(base).cap(cap).jitter(Jitter::Full);
        let d = b.delay(n, None, &mut Rng::with_seed(seed));
        prop_assert!(d <= ceiling(base, cap, n));
        prop_assert!(d <= cap);
        prop_assert_eq!(b.ceiling(n), ceiling(base, cap, n));
    }

    #[test]
    fn equal_jitter_is_between_half_and_the_full_ceiling(
        base in duration(), cap in duration(), n in attempt(), seed in any::<u64>()
    ) {
        let b = Backoff::new().base(base).cap(cap).jitter(Jitter::Equal);
        let d = b.delay(n, None, &mut Rng::with_seed(seed));
        let full = ceiling(base, cap, n);
        prop_assert!(d >= full / 2 && d <= full, "{:?} not in [{:?}, {:?}]", d, full / 2, full);
    }

    #[test]
    fn decorrelated_is_between_base_and_three_times_the_previous_delay(
        base in (1u64..=5_000).prop_map(Duration::from_millis),
        cap in (1u64..=60_000).prop_map(Duration::from_millis),
        seed in any::<u64>(),
        steps in 1usize..40,
    ) {
        let b = Backoff::new().base(base).cap(cap).jitter(Jitter::Decorrelated);
        let mut state = b.state(Rng::with_seed(seed));
        let mut previous = base;
        for _ in 0..steps {
            let d = state.next_delay();
            let low = base.min(cap);
            let high = (previous * 3).min(cap).max(low);
            prop_assert!(d >= low && d <= high, "{:?} not in [{:?}, {:?}]", d, low, high);
            previous = d;
        }
    }

    #[test]
    fn no_jitter_is_exactly_the_capped_exponential(base in duration(), cap in duration(), n in attempt()) {
        let b = Backoff::new().base(base).cap(cap).jitter(Jitter::None);
        prop_assert_eq!(b.delay(n, None, &mut Rng::with_seed(0)), ceiling(base, cap, n));
    }

    #[test]
    fn no_jitter_ever_exceeds_the_cap_or_overflows(
        base in duration(), cap in duration(), n in attempt(), seed in any::<u64>(),
        previous in proptest::option::of(duration()),
    ) {
        for jitter in [Jitter::Full, Jitter::Equal, Jitter::Decorrelated, Jitter::None] {
            let b = Backoff::new().base(base).cap(cap).jitter(jitter);
            prop_assert!(b.delay(n, previous, &mut Rng::with_seed(seed)) <= cap);
        }
    }
}

#[test]
fn full_jitter_draws_spread_over_the_whole_range() {
    let b = Backoff::new(); // 200 ms base: ceiling of retry 3 is 1.6 s
    let mut rng = Rng::with_seed(11);
    let draws: Vec<_> = (0..1000).map(|_| b.delay(3, None, &mut rng)).collect();
    assert!(draws.iter().any(|d| *d < Duration::from_millis(160)));
    assert!(draws.iter().any(|d| *d > Duration::from_millis(1440)));
    assert!(draws.iter().all(|d| *d <= Duration::from_millis(1600)));
}

#[test]
fn the_same_type_serves_queue_scale_backoff_in_hours() {
    let b = Backoff::new()
        .base(Duration::from_secs(60))
        .cap(Duration::from_secs(6 * 3600))
        .jitter(Jitter::None);
    let delays: Vec<_> = b.state(Rng::with_seed(1)).take(10).collect();
    assert_eq!(delays[0], Duration::from_secs(60));
    assert_eq!(delays[8], Duration::from_secs(60 << 8));
    assert_eq!(delays[9], Duration::from_secs(6 * 3600));
}
