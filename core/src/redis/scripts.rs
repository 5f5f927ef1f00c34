//! The Lua scripts: each one atomic on the server, one round trip per call.
//!
//! Time inside the limiter scripts is Redis's own clock (`TIME`, microseconds), so every
//! process judges one bucket by one clock whatever its host's clock says. Numbers are stored as
//! integer microseconds since the Unix epoch (about 1.8e15, exact in Lua's doubles up to 9e15).

use std::sync::LazyLock;

use redis::Script;

/// GCRA admission. KEYS[1] the bucket's TAT. ARGV: interval µs, burst, cost, max wait µs.
/// Returns `{admitted (0|1), wait µs, new TAT}`; reserves (advances the TAT) only when admitted.
pub(crate) static GCRA_ACQUIRE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local max_wait = tonumber(ARGV[4])
local stored = redis.call('GET', KEYS[1])
local tat = now
if stored then tat = math.max(tonumber(stored), now) end
local new_tat = tat + cost * interval
local wait = new_tat - burst * interval - now
if wait > max_wait then return {0, wait, 0} end
if wait < 0 then wait = 0 end
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.floor((new_tat - now) / 1000) + 1)
return {1, wait, new_tat}
",
    )
});

/// GCRA correction. KEYS[1] the bucket's TAT. ARGV: delta µs (negative: refund), the TAT this
/// caller left (0: unknown), tolerance µs. A refund is taken only when nobody queues behind it
/// (the TAT is still the caller's, or within the burst of now); a charge always.
/// Returns 1 when applied.
pub(crate) static GCRA_ADJUST: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local delta = tonumber(ARGV[1])
local tail = tonumber(ARGV[2])
local tolerance = tonumber(ARGV[3])
local stored = redis.call('GET', KEYS[1])
local tat = now
if stored then tat = tonumber(stored) end
if delta < 0 then
  if not stored then return 0 end
  if tat ~= tail and tat > now + tolerance then return 0 end
elseif tat < now then
  tat = now
end
local new_tat = tat + delta
if new_tat <= now then
  redis.call('DEL', KEYS[1])
  return 1
end
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.floor((new_tat - now) / 1000) + 1)
return 1
",
    )
});

/// A deadline that only moves later. KEYS[1] the deadline; ARGV[1] ms from now.
/// The key's time to live *is* the deadline: Redis expires it on its own clock.
/// Returns the remaining ms after the call.
pub(crate) static DEADLINE_EXTEND: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local ms = tonumber(ARGV[1])
local current = redis.call('PTTL', KEYS[1])
if current < ms then
  redis.call('SET', KEYS[1], '1', 'PX', ms)
  return ms
end
return current
",
    )
});

/// Dedupe claim. KEYS[1] the key; ARGV[1] the claim's time to live, ms.
/// Returns nil when the key was free (now claimed), else what is stored.
pub(crate) static DEDUPE_CLAIM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local v = redis.call('GET', KEYS[1])
if v then return v end
redis.call('SET', KEYS[1], 'p', 'PX', ARGV[1])
return false
",
    )
});

/// Dedupe release. KEYS[1] the key. Deletes it only while it is still a pending claim.
pub(crate) static DEDUPE_RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) == 'p' then
  return redis.call('DEL', KEYS[1])
end
return 0
",
    )
});
