//! The durable queue's Lua scripts: every state change of a job is one script, atomic on the
//! server, one round trip.
//!
//! Every script gets the same thirteen keys (see [`QueueKeys`](super::job_store)), in this order:
//!
//! | # | key | type | holds |
//! |---|---|---|---|
//! | 1 | `stream` | stream, consumer group `workers` | one entry `id=<job id>` per runnable job; pending (delivered, not acked) entries are the jobs in flight |
//! | 2 | `jobs` | hash | job id → the job, JSON: the only copy of each unfinished job |
//! | 3 | `inflight` | hash | job id → its stream entry id while a worker holds it |
//! | 4 | `parked` | sorted set | job id by the time its park ends (ms) |
//! | 5 | `retry` | sorted set | job id by the time of its next attempt (ms) |
//! | 6 | `ages` | sorted set | waiting job id by its push time (ms): the oldest job's age |
//! | 7 | `groupof` | hash | job id → its group |
//! | 8 | `holds` | hash | group → the time its hold ends (ms) |
//! | 9 | `losses` | hash | job id → how many times its worker vanished mid-run since it last settled |
//! | 10 | `dead` | stream | one entry `id, letter` per dead letter (letter: JSON) |
//! | 11 | `deadidx` | hash | job id → its entry in `dead` |
//! | 12 | `corrupt` | hash | job id → a stored job that no longer deserialises, kept for a person |
//! | 13 | `cursor` | string | where the next `XAUTOCLAIM` scan of the pending entries starts |
//!
//! Times are the callers' wall clocks in ms since the Unix epoch (the [`JobStore`](
//! crate::queue::JobStore) contract passes them in), so processes sharing a queue need clocks
//! kept in step (NTP); a skew of `s` shifts a park or a retry by `s`, never loses a job.

use std::sync::LazyLock;

use redis::Script;

/// The shared top of every script: key names and the helpers.
const PRELUDE: &str = r"
local STREAM, JOBS, INFLIGHT, PARKED, RETRY, AGES, GROUPOF, HOLDS, LOSSES, DEAD, DEADIDX, CORRUPT, CURSOR =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[10], KEYS[11], KEYS[12], KEYS[13]
local GROUP = 'workers'

-- The consumer group exists (again, after a Redis that lost its data).
local function ensure_group()
  redis.pcall('XGROUP', 'CREATE', STREAM, GROUP, '0', 'MKSTREAM')
end

local function field(fields, name)
  for i = 1, #fields, 2 do
    if fields[i] == name then return fields[i + 1] end
  end
  return nil
end

-- The end of the hold on job `id`'s group, when it is later than `t`.
local function hold_after(id, t)
  local g = redis.call('HGET', GROUPOF, id)
  if not g then return nil end
  local h = redis.call('HGET', HOLDS, g)
  if not h then return nil end
  h = tonumber(h)
  if h > t then return h end
  return nil
end

-- Job `id` waits in `set` until `at`, or until its group's hold ends if that is later.
local function wait_until(id, at, set)
  local h = hold_after(id, at)
  if h then
    redis.call('ZADD', PARKED, h, id)
  else
    redis.call('ZADD', set, at, id)
  end
end

-- Job `id` is runnable at `now`, unless its group is held. A hold that is over is forgotten.
local function make_runnable(id, now)
  local h = hold_after(id, now)
  if h then
    redis.call('ZADD', PARKED, h, id)
    return
  end
  local g = redis.call('HGET', GROUPOF, id)
  if g then
    local over = redis.call('HGET', HOLDS, g)
    if over and tonumber(over) <= now then redis.call('HDEL', HOLDS, g) end
  end
  redis.call('XADD', STREAM, '*', 'id', id)
end

-- Stores job `id` as waiting (body, group, push time).
local function store_job(id, body, group, enqueued)
  redis.call('HSET', JOBS, id, body)
  if group ~= '' then redis.call('HSET', GROUPOF, id, group) end
  redis.call('ZADD', AGES, enqueued, id)
end

-- Forgets job `id` entirely (done, dead, drained).
local function forget(id)
  redis.call('HDEL', JOBS, id)
  redis.call('HDEL', GROUPOF, id)
  redis.call('HDEL', LOSSES, id)
  redis.call('ZREM', AGES, id)
  redis.call('ZREM', PARKED, id)
  redis.call('ZREM', RETRY, id)
end

-- Takes job `id` out of flight for `consumer`: 'ours' (acked and removed from the stream),
-- 'other' (another worker holds it now: its outcome decides) or 'unknown' (not in flight).
local function take_in_flight(id, consumer)
  local eid = redis.call('HGET', INFLIGHT, id)
  if not eid then return 'unknown' end
  local pending = redis.call('XPENDING', STREAM, GROUP, eid, eid, 1)
  if pending[1] and pending[1][2] ~= consumer then return 'other' end
  redis.call('XACK', STREAM, GROUP, eid)
  redis.call('XDEL', STREAM, eid)
  redis.call('HDEL', INFLIGHT, id)
  redis.call('HDEL', LOSSES, id)
  return 'ours'
end
";

fn script(body: &str) -> Script {
    Script::new(&format!("{PRELUDE}\n{body}"))
}

/// Push. ARGV: id, body, group (`''`: none), enqueued ms, now ms, capacity.
/// Returns 1 when stored, 0 when the queue is full.
pub(crate) static PUSH: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
ensure_group()
local id, body, group = ARGV[1], ARGV[2], ARGV[3]
local enqueued, now, capacity = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
if redis.call('HEXISTS', JOBS, id) == 0 and redis.call('HLEN', JOBS) >= capacity then return 0 end
store_job(id, body, group, enqueued)
make_runnable(id, now)
return 1
",
    )
});

/// Reserve. ARGV: now ms, consumer, visibility timeout ms, promotion limit.
///
/// 1. Moves up to `limit` due jobs from `parked` and `retry` into the stream (or, when their
///    group is held, to `parked` until the hold ends).
/// 2. Reclaims (`XAUTOCLAIM`, cursor kept in `{stream}:cursor`) one entry whose worker has not
///    renewed it for the visibility timeout: its worker crashed. Counts the loss. The scan
///    cursor is kept in `cursor`, so successive calls walk the whole pending list.
/// 3. Else reads (`XREADGROUP`) the next new entry; an entry whose job is gone is dropped, one
///    whose group is held moves to `parked`.
///
/// Returns `{'job', id, body, losses, entry id}` or `{'idle', next due ms or ''}`.
pub(crate) static RESERVE: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
ensure_group()
local now, consumer, visibility, limit = tonumber(ARGV[1]), ARGV[2], ARGV[3], tonumber(ARGV[4])

for _, set in ipairs({PARKED, RETRY}) do
  local due = redis.call('ZRANGEBYSCORE', set, '-inf', now, 'LIMIT', 0, limit)
  for _, id in ipairs(due) do
    redis.call('ZREM', set, id)
    if redis.call('HEXISTS', JOBS, id) == 1 then make_runnable(id, now) end
  end
end

local cursor = redis.call('GET', CURSOR) or '0-0'
local claimed = redis.call('XAUTOCLAIM', STREAM, GROUP, consumer, visibility, cursor, 'COUNT', 1)
redis.call('SET', CURSOR, claimed[1])
for _, entry in ipairs(claimed[2]) do
  if entry then
    local eid = entry[1]
    local id = entry[2] and field(entry[2], 'id')
    local body = id and redis.call('HGET', JOBS, id)
    if body then
      redis.call('HSET', INFLIGHT, id, eid)
      local lost = redis.call('HINCRBY', LOSSES, id, 1)
      return {'job', id, body, tostring(lost), eid}
    end
    redis.call('XACK', STREAM, GROUP, eid)
    redis.call('XDEL', STREAM, eid)
  end
end

for _ = 1, limit do
  local read = redis.call('XREADGROUP', 'GROUP', GROUP, consumer, 'COUNT', 1, 'STREAMS', STREAM, '>')
  if not read then break end
  local entry = read[1][2][1]
  local eid = entry[1]
  local id = field(entry[2], 'id')
  local body = id and redis.call('HGET', JOBS, id)
  local hold = body and hold_after(id, now)
  if body and not hold then
    redis.call('HSET', INFLIGHT, id, eid)
    redis.call('ZREM', AGES, id)
    return {'job', id, body, '0', eid}
  end
  redis.call('XACK', STREAM, GROUP, eid)
  redis.call('XDEL', STREAM, eid)
  if hold then redis.call('ZADD', PARKED, hold, id) end
end

local next_at = nil
for _, set in ipairs({PARKED, RETRY}) do
  local first = redis.call('ZRANGE', set, 0, 0, 'WITHSCORES')
  if first[2] then
    local at = tonumber(first[2])
    if not next_at or at < next_at then next_at = at end
  end
end
if next_at then return {'idle', string.format('%d', next_at)} end
return {'idle', ''}
",
    )
});

/// Complete. ARGV: id. The job is done whoever holds it now: acks its entry and forgets it.
pub(crate) static COMPLETE: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
local id = ARGV[1]
local eid = redis.call('HGET', INFLIGHT, id)
if eid then
  redis.call('XACK', STREAM, GROUP, eid)
  redis.call('XDEL', STREAM, eid)
  redis.call('HDEL', INFLIGHT, id)
end
forget(id)
return 1
",
    )
});

/// Reschedule: retry, park or release. ARGV: id, consumer, body, group, enqueued ms, ready ms,
/// mode (`retry` | `park` | `park_group` | `release`), now ms.
/// Returns 1 when applied, 0 when another worker holds the job now (its outcome decides).
/// A job the store no longer knows (a Redis that lost its data) is stored again: at least once.
pub(crate) static RESCHEDULE: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
ensure_group()
local id, consumer, body, group = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local enqueued, ready, mode, now = tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7], tonumber(ARGV[8])
if take_in_flight(id, consumer) == 'other' then return 0 end
store_job(id, body, group, enqueued)
if mode == 'park_group' and group ~= '' then
  local current = tonumber(redis.call('HGET', HOLDS, group) or '0')
  if ready > current then redis.call('HSET', HOLDS, group, string.format('%d', ready)) end
end
if mode == 'release' then
  make_runnable(id, now)
elseif mode == 'retry' then
  wait_until(id, ready, RETRY)
else
  wait_until(id, ready, PARKED)
end
return 1
",
    )
});

/// Dead-letter. ARGV: id, consumer, letter (JSON). Returns 1 when recorded, 0 when another
/// worker holds the job now.
pub(crate) static DEAD_LETTER: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
local id, consumer, letter = ARGV[1], ARGV[2], ARGV[3]
if take_in_flight(id, consumer) == 'other' then return 0 end
forget(id)
local eid = redis.call('XADD', DEAD, '*', 'id', id, 'letter', letter)
redis.call('HSET', DEADIDX, id, eid)
return 1
",
    )
});

/// Quarantine a job whose body no longer deserialises. ARGV: id, consumer.
pub(crate) static QUARANTINE: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
local id, consumer = ARGV[1], ARGV[2]
if take_in_flight(id, consumer) == 'other' then return 0 end
local body = redis.call('HGET', JOBS, id)
if body then redis.call('HSET', CORRUPT, id, body) end
forget(id)
return 1
",
    )
});

/// Abandon: take an in-flight job out of the store and return it. ARGV: id, consumer.
/// Returns the body, or false when the job is not this consumer's.
pub(crate) static ABANDON: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
local id, consumer = ARGV[1], ARGV[2]
if take_in_flight(id, consumer) ~= 'ours' then return false end
local body = redis.call('HGET', JOBS, id)
forget(id)
return body
",
    )
});

/// Drain: remove every waiting job (not in flight) and return `id, body` pairs (flat). Their
/// stream entries stay behind and are dropped when read (their jobs are gone).
pub(crate) static DRAIN: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
local pairs_out = {}
for _, id in ipairs(redis.call('HKEYS', JOBS)) do
  if redis.call('HEXISTS', INFLIGHT, id) == 0 then
    table.insert(pairs_out, id)
    table.insert(pairs_out, redis.call('HGET', JOBS, id))
    forget(id)
  end
end
return pairs_out
",
    )
});

/// The dead-letter list, oldest first. ARGV[1]: `take` (and empty it) or `read`.
pub(crate) static DEAD_LETTERS: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
local letters = {}
for _, entry in ipairs(redis.call('XRANGE', DEAD, '-', '+')) do
  table.insert(letters, field(entry[2], 'letter'))
end
if ARGV[1] == 'take' then redis.call('DEL', DEAD, DEADIDX) end
return letters
",
    )
});

/// One dead letter. ARGV[1]: job id. Returns `{entry id, letter}`, or false when there is none.
pub(crate) static DEAD_ENTRY: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
local eid = redis.call('HGET', DEADIDX, ARGV[1])
if not eid then return false end
local entry = redis.call('XRANGE', DEAD, eid, eid)[1]
if not entry then return false end
return {eid, field(entry[2], 'letter')}
",
    )
});

/// Requeue a dead letter. ARGV: id, its dead entry id (as read), body (attempts reset), group,
/// enqueued ms, now ms. Returns 1 when requeued, 0 when the letter is gone or was replaced.
pub(crate) static REQUEUE: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
ensure_group()
local id, eid, body, group = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local enqueued, now = tonumber(ARGV[5]), tonumber(ARGV[6])
if redis.call('HGET', DEADIDX, id) ~= eid then return 0 end
redis.call('XDEL', DEAD, eid)
redis.call('HDEL', DEADIDX, id)
store_job(id, body, group, enqueued)
make_runnable(id, now)
return 1
",
    )
});

/// Stats: `{jobs, in flight, parked, scheduled, dead letters, oldest push ms or ''}`.
pub(crate) static STATS: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
local oldest = redis.call('ZRANGE', AGES, 0, 0, 'WITHSCORES')
return {
  redis.call('HLEN', JOBS),
  redis.call('HLEN', INFLIGHT),
  redis.call('ZCARD', PARKED),
  redis.call('ZCARD', RETRY),
  redis.call('XLEN', DEAD),
  oldest[2] and string.format('%d', tonumber(oldest[2])) or '',
}
",
    )
});

/// Renew leases. KEYS[1] the stream. ARGV: consumer, then entry ids this worker holds.
/// Resets the idle time of the entries still this consumer's (`XCLAIM ... JUSTID`, which does
/// not count a delivery); returns the entry ids it no longer holds.
pub(crate) static RENEW: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local lost = {}
for i = 2, #ARGV do
  local eid = ARGV[i]
  local pending = redis.call('XPENDING', KEYS[1], 'workers', eid, eid, 1)
  if pending[1] and pending[1][2] == ARGV[1] then
    redis.call('XCLAIM', KEYS[1], 'workers', ARGV[1], 0, eid, 'JUSTID')
  else
    table.insert(lost, eid)
  end
end
return lost
",
    )
});
