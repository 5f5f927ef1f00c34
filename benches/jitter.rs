//! The backoff-and-jitter study: AWS's optimistic-concurrency contention model, re-run with
//! ratewise's own backoff.
//!
//! The model of Marc Brooker's "Exponential Backoff And Jitter" (AWS Architecture Blog, 2015):
//! `N` clients each write one row of a database that uses optimistic concurrency. A client
//! reads the row's version, then sends a write conditional on that version; the write succeeds
//! only if no other write landed in between. A client whose write fails backs off and starts
//! over (read, then write). Every network hop (request or response) takes
//! `|Normal(10 ms, 2 ms)|`; the backoff has base 5 ms and cap 2 s. Each cell runs 100 seeded
//! trials and reports the mean of:
//!
//! - **writes**: conditional writes sent by all clients (the work the database did; `N` is
//!   the least possible);
//! - **completion**: when the last client learned its write succeeded.
//!
//! Modes: no backoff (retry at once), exponential without jitter (`Jitter::None`), and the
//! three jittered forms of `ratewise::backoff::Backoff` (`Full`, the default; `Equal`;
//! `Decorrelated`). The simulation is a discrete-event loop on a virtual clock (no tokio, no
//! sleeping): the whole study is about a second of CPU. `cargo bench --bench jitter`.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Duration;

use ratewise::backoff::{Backoff, BackoffState, Jitter};

const CLIENTS: [usize; 4] = [10, 50, 100, 190];
const TRIALS: u64 = 100;
const BASE: Duration = Duration::from_millis(5);
const CAP: Duration = Duration::from_secs(2);

#[derive(Clone, Copy, Debug)]
enum Mode {
    NoBackoff,
    Exponential,
    Full,
    Equal,
    Decorrelated,
}

impl Mode {
    const ALL: [Mode; 5] = [
        Mode::NoBackoff,
        Mode::Exponential,
        Mode::Full,
        Mode::Equal,
        Mode::Decorrelated,
    ];

    fn name(self) -> &'static str {
        match self {
            Mode::NoBackoff => "no backoff",
            Mode::Exponential => "exponential, no jitter",
            Mode::Full => "full jitter (ratewise default)",
            Mode::Equal => "equal jitter",
            Mode::Decorrelated => "decorrelated jitter",
        }
    }

    fn backoff(self) -> Option<Backoff> {
        let jitter = match self {
            Mode::NoBackoff => return None,
            Mode::Exponential => Jitter::None,
            Mode::Full => Jitter::Full,
            Mode::Equal => Jitter::Equal,
            Mode::Decorrelated => Jitter::Decorrelated,
        };
        Some(Backoff::new().base(BASE).cap(CAP).jitter(jitter))
    }
}

/// What arrives where, and when.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    /// A client starts (or restarts after backing off): it sends a read.
    Start,
    /// The read reaches the database.
    ReadArrives,
    /// The read's answer (the version) reaches the client, which sends its write.
    ReadAnswered { version: u64 },
    /// The conditional write reaches the database.
    WriteArrives { version: u64 },
    /// The write's outcome reaches the client.
    WriteAnswered { won: bool },
}

struct Trial {
    rng: fastrand::Rng,
    /// (time in ns, sequence, client, event), earliest first.
    queue: BinaryHeap<Reverse<(u64, u64, usize, Event)>>,
    seq: u64,
    version: u64,
    writes: u64,
}

impl Trial {
    /// One network hop: |Normal(10 ms, 2 ms)|, by Box–Muller.
    fn hop(&mut self) -> u64 {
        let u1 = self.rng.f64().max(f64::MIN_POSITIVE);
        let u2 = self.rng.f64();
        let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
        ((10.0 + 2.0 * z).abs() * 1e6) as u64
    }

    fn at(&mut self, time: u64, client: usize, event: Event) {
        self.seq += 1;
        self.queue.push(Reverse((time, self.seq, client, event)));
    }
}

/// One trial: returns (writes, completion).
fn trial(mode: Mode, clients: usize, seed: u64) -> (u64, Duration) {
    let mut t = Trial {
        rng: fastrand::Rng::with_seed(seed),
        queue: BinaryHeap::new(),
        seq: 0,
        version: 0,
        writes: 0,
    };
    let mut backoffs: Vec<Option<BackoffState>> = (0..clients)
        .map(|_| {
            let rng = t.rng.fork();
            mode.backoff().map(|b| b.state(rng))
        })
        .collect();
    for client in 0..clients {
        t.at(0, client, Event::Start);
    }
    let mut done = 0;
    let mut last = 0;
    while let Some(Reverse((now, _, client, event))) = t.queue.pop() {
        match event {
            Event::Start => {
                let hop = t.hop();
                t.at(now + hop, client, Event::ReadArrives);
            }
            Event::ReadArrives => {
                let (hop, version) = (t.hop(), t.version);
                t.at(now + hop, client, Event::ReadAnswered { version });
            }
            Event::ReadAnswered { version } => {
                let hop = t.hop();
                t.at(now + hop, client, Event::WriteArrives { version });
            }
            Event::WriteArrives { version } => {
                t.writes += 1;
                let won = version == t.version;
                if won {
                    t.version += 1;
                }
                let hop = t.hop();
                t.at(now + hop, client, Event::WriteAnswered { won });
            }
            Event::WriteAnswered { won: true } => {
                done += 1;
                last = now;
            }
            Event::WriteAnswered { won: false } => {
                let wait = backoffs[client]
                    .as_mut()
                    .map_or(Duration::ZERO, BackoffState::next_delay);
                t.at(now + wait.as_nanos() as u64, client, Event::Start);
            }
        }
    }
    assert_eq!(done, clients, "every client finishes");
    (t.writes, Duration::from_nanos(last))
}

#[allow(clippy::disallowed_methods)] // the benchmark reports its own wall time
fn wall_now() -> std::time::Instant {
    std::time::Instant::now()
}

fn main() {
    let started = wall_now();
    println!(
        "\n### Backoff and jitter: optimistic-concurrency contention (AWS model; hop |N(10 ms, 2 ms)|, base 5 ms, cap 2 s, mean of {TRIALS} trials)\n"
    );
    println!("| clients | mode | writes | writes per client | completion (ms) |");
    println!("|---:|---|---:|---:|---:|");
    for clients in CLIENTS {
        for mode in Mode::ALL {
            let mut writes = 0u64;
            let mut completion = Duration::ZERO;
            for trial_index in 0..TRIALS {
                let seed = trial_index * 1_000 + clients as u64;
                let (w, c) = trial(mode, clients, seed);
                writes += w;
                completion += c;
            }
            let writes = writes as f64 / TRIALS as f64;
            let completion = completion.as_secs_f64() * 1e3 / TRIALS as f64;
            println!(
                "| {clients} | {} | {writes:.0} | {:.1} | {completion:.0} |",
                mode.name(),
                writes / clients as f64
            );
        }
    }
    eprintln!("jitter: {:.2} s wall", started.elapsed().as_secs_f64());
}
