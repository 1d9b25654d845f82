/**
 * Acquire one of a pool of keys (a single key is a pool of one): a key the caller holds already
 * (a retried acquire), else the first key whose turn it is, else a place in every key's queue, all
 * with one arrival number, so that waiters are served first come first served across the pool.
 *
 * Waiters queue per key, first come first served: a sorted set of members "x:<token hash>" or
 * "s:<token hash>" (the mode asked for) by arrival, and a hash of the time each keeps its place
 * until (its wait window plus a grace period). A free key goes to the first waiter that still asks;
 * consecutive shared waiters at the head share it up to its limit; waiters that stopped asking are
 * dropped on the way. While someone waits or watches (the record's `w`), releases and expiry
 * changes are PUBLISHed on the key's channel so that waiting requests need not ask Redis again.
 *
 * The reply names the key it is about (index, 1-based), and: granted (the lease, how many leases
 * it found ended by expiry), retried (the lease), held (the lease the caller waits for, its place),
 * queued (its place, when to look again), limit (the limit in force), quota (which, its bound),
 * unknown, forbidden, mode_conflict, superseded (by: the holder of the newer waiter of its group).
 *
 * Supersede: a waiter that joins a key's queue with a group (say deploy/main) takes the place of
 * the one of its group waiting there before it, which is answered "superseded" at its next ask
 * (its request is woken for it). The queue's hash keeps, beside each waiter's deadline, what a
 * status shows of it ("i:<member>") and, per group, its newest waiter ("g:<group>").
 */
import {
  GC_SLACK_MS,
  type PoolOutcome,
  PRIORITY_AGE_MS,
  QUEUE_GRACE_MS,
  STALE_WAITERS_PER_CALL,
} from "../types.js";
import { at, leaseOf, num, quotaOf } from "./codec.js";
import { defineScript } from "./define.js";

/** The queue's scores count milliseconds from here (see place_score). */
const PLACE_EPOCH_MS = 1_700_000_000_000;

export const ACQUIRE = defineScript({
  name: "acquire",
  writes: true,
  /** The fencing counter, and the counter of arrivals in any queue (first come first served). */
  keys: ["fence", "queueSeq"] as const,
  /**
   * token: its hash; ttlMs: '' for none; registeredOnly: '1' for the /locks API; queueWindowMs: ''
   * not to queue; mode: 'x' or 's'; limit: shared holders admitted; group: its supersede group ('':
   * none).
   */
  args: [
    "token",
    "holder",
    "ttlMs",
    "reason",
    "registeredOnly",
    "queueWindowMs",
    "maxWaiters",
    "mode",
    "limit",
    "priority",
    "group",
    "actorId",
    "actorName",
  ] as const,
  /** Per key: its record, queue, queue deadlines, shared holders, history; its channel ('' = don't publish) and name. */
  each: {
    keys: ["lock", "queue", "queueUntil", "holders", "history"] as const,
    args: ["channel", "name"] as const,
  },
  body: `local me, mode, limit = A.token, A.mode, tonumber(A.limit)
local actor = {A.actorId, A.actorName}
local shared = mode == 's'
local member = mode .. ':' .. me
local exp = 0
if A.ttlMs ~= '' then exp = now + tonumber(A.ttlMs) end
local arrival = nil

-- The pool's keys (one key: a pool of one), each with its record.
local keys = EACH
for _, k in ipairs(keys) do
  k.r = load(k.lock)
  k.watched = k.r.w == '1'
end

-- A newcomer's place: its arrival time, earlier by ${PRIORITY_AGE_MS} ms per point of priority (so a
-- minute's wait counts as a point), then its arrival number for those of one millisecond: the
-- number's last 12 bits (a wrap within one millisecond may swap two arrivals of that millisecond).
-- Counted from 2023-11 (${PLACE_EPOCH_MS}), the score stays below 2^53, so exact, until 2093;
-- written out whole, since Lua would pass a number on with only 14 digits.
local function place_score(seq)
  local at = now - ${PLACE_EPOCH_MS} - tonumber(A.priority) * ${PRIORITY_AGE_MS}
  return string.format('%.0f', at * 4096 + (seq % 4096))
end

-- A waiter superseded by a newer one of its group: where its next ask reads by whom (until its
-- place would have ended, and an hour more, whatever it had asked for).
local function superseded_key(k, m)
  return key_of('superseded', m .. ':' .. k.name)
end

-- The group's previous waiter on this key (its newest before the caller) is superseded: it may
-- not come back, even if it had left the queue meanwhile (a dropped connection, a timeout), or it
-- would supersede the newer one in turn. If it still waits, it leaves the queue, its request is
-- woken ('s' event) to read so, and the history says by whom. A waiter that joined the queue again
-- in another group, or the caller's own token in another mode, is not the group's any more.
local function supersede(k)
  local old = redis.call('HGET', k.queueUntil, 'g:' .. A.group)
  if not old or string.sub(old, 3) == me then return end
  local rank = redis.call('ZRANK', k.queue, old)
  local got = {false, false}
  if rank then got = redis.call('HMGET', k.queueUntil, old, 'i:' .. old) end
  local info = split(got[2] or '')
  if rank and got[2] and info[2] ~= A.group then return end
  local until_ms = tonumber(got[1]) or now
  redis.call('SET', superseded_key(k, old), A.holder, 'PX', math.max(until_ms - now, 0) + ${GC_SLACK_MS})
  if not rank then return end
  unqueue(k.queue, k.queueUntil, {old})
  publish(k.channel, 's', old)
  -- The one after it is first now, and may find the key free (as after a leave).
  local next = rank == 0 and redis.call('ZRANGE', k.queue, 0, 0)[1]
  if next then publish(k.channel, 'r', next .. ' ' .. (redis.call('HGET', k.queueUntil, next) or '0')) end
  note(k.history, k.r, 'superseded', now, {'', '', '', info[3] or '', '', mode_of(old)}, nil, actor, A.holder)
end

-- Join a key's queue, or keep one's place, until the end of the wait window plus the grace period.
-- Returns the 1-based place (0: not queuing, -1: the queue is full).
local function queue_me(k)
  if A.queueWindowMs == '' then return 0 end
  local r = k.r
  local rank = redis.call('ZRANK', k.queue, member)
  local created = false
  local fields = {}
  if not rank then
    -- The newest of a group takes the place of the one of its group waiting before it.
    if A.group ~= '' then
      supersede(k)
      fields = {'g:' .. A.group, member}
    end
    rank = redis.call('ZCARD', k.queue)
    if rank >= tonumber(A.maxWaiters) then return -1 end
    arrival = arrival or place_score(redis.call('INCR', K.queueSeq))
    redis.call('ZADD', k.queue, arrival, member)
    -- Its priority may put it ahead of earlier waiters.
    rank = redis.call('ZRANK', k.queue, member)
    created = rank == 0
    -- What a status shows of a waiter: its priority, group, holder, and since when it waits.
    append(fields, {'i:' .. member, table.concat({A.priority, A.group, A.holder, now}, US)})
    -- From now on the holders' changes are published. (A key with no record yet is being handed
    -- to the first waiter, whose grant marks it.)
    if r.exp and not k.watched then set(r, 'w', '1') end
  end
  local until_ms = now + tonumber(A.queueWindowMs) + ${QUEUE_GRACE_MS}
  redis.call('HSET', k.queueUntil, member, until_ms, unpack(fields))
  -- The queue's keys outlive its last waiter by GC_SLACK_MS at most: their Redis expiry (kept in
  -- the record as qx) moves only when a waiter's place outgrows it, or when the queue is new.
  if created or until_ms > (tonumber(r.qx) or 0) then
    local qx = until_ms + ${GC_SLACK_MS}
    redis.call('PEXPIREAT', k.queue, qx)
    redis.call('PEXPIREAT', k.queueUntil, qx)
    if r.exp then set(r, 'qx', qx) end
  end
  return rank + 1
end

local function acquire()
-- 1. What each key says to the caller: refusals first, then a retried acquire (it holds one
-- already: its lease now ends ttl from now).
for _, k in ipairs(keys) do
  local r = k.r
  if A.registeredOnly == '1' and not r.cred then return reply('unknown', nil, {index = k.i}) end
  if r.cred and r.cred ~= me then return reply('forbidden', nil, {index = k.i}) end
  -- A /locks lock has one holder: its key.
  if shared and r.cred then return reply('mode_conflict', nil, {index = k.i}) end
  k.excl = live(r)
  if k.excl and r.token == me then
    set_lease(r, exp)
    if k.watched then publish(k.channel, 'e', exp) end
    note(k.history, r, 'extended', now, lease_of(r), nil, actor)
    return reply('retried', lease_of(r), {index = k.i})
  end
  k.alive, k.ended = sharers(r, k.holders)
  for _, h in ipairs(k.alive) do
    if h.th == me then
      h.exp = exp
      set_shared(r, k.holders, me, table.concat({exp, h.fence, h.since, h.holder, h.reason}, US), exp, false)
      if k.watched then publish(k.channel, 'e', exp) end
      note(k.history, r, 'extended', now, shared_lease(h), nil, actor)
      return reply('retried', shared_lease(h), {index = k.i})
    end
  end
  -- Shared holders admit as many as the limit in force; a caller counting otherwise is told.
  local lim = tonumber(r.lim)
  if shared and #k.alive > 0 and lim ~= limit then return reply('limit', nil, {limit = lim, index = k.i}) end
end

-- A waiter superseded on any key of the pool is told so (by whom), whatever else changed; a
-- holder's retried acquire (above) is answered first. A pool's keys must all have room before
-- the caller supersedes anyone on one of them.
if A.group ~= '' then
  for _, k in ipairs(keys) do
    local by = redis.call('GET', superseded_key(k, member))
    if by then return reply('superseded', nil, {by = by, index = k.i}) end
  end
  if #keys > 1 and A.queueWindowMs ~= '' then
    for _, k in ipairs(keys) do
      if not redis.call('ZRANK', k.queue, member) and redis.call('ZCARD', k.queue) >= tonumber(A.maxWaiters) then
        local old = redis.call('HGET', k.queueUntil, 'g:' .. A.group)
        if not (old and redis.call('ZRANK', k.queue, old)) then
          return reply('quota', nil, {quota = 'waiters', max = A.maxWaiters, index = k.i})
        end
      end
    end
  end
end

-- 2. Whose turn it is, key by key. How many may take it now: exclusive needs it empty; shared
-- needs no exclusive holder and a slot. A record that is not watched has nobody queued: whoever
-- joins a queue marks the record (or, when there is none yet, the grant to the head does), and a
-- release clears the mark only when nobody queues. At most STALE_WAITERS_PER_CALL that stopped
-- asking are dropped per call; with more ahead nobody can tell whose turn it is yet.
local function turn_of(k)
  local r = k.r
  k.free = 0
  if not shared then
    if not k.excl and #k.alive == 0 then k.free = 1 end
  elseif not k.excl then
    k.free = limit - #k.alive
  end
  k.turn = 'empty'
  if k.free <= 0 or (r.exp and not k.watched) then return end
  local dropped = 0
  local window = 1
  if shared then window = math.max(k.free, 1) end
  while true do
    local members = redis.call('ZRANGE', k.queue, 0, window)
    if #members == 0 then return end
    local untils = redis.call('HMGET', k.queueUntil, unpack(members))
    local waiting, stale = {}, {}
    for j, m in ipairs(members) do
      local u = tonumber(untils[j])
      if u and u > now then waiting[#waiting + 1] = {m, u} else stale[#stale + 1] = m end
    end
    if #stale > 0 then
      if dropped + #stale > ${STALE_WAITERS_PER_CALL} then
        k.turn = 'unsettled'
        return
      end
      unqueue(k.queue, k.queueUntil, stale)
      dropped = dropped + #stale
      -- They stopped asking (their wait ended without a word): a queue timeout each.
      for _, m in ipairs(stale) do note(k.history, r, 'queue_timeout', now, {'', '', '', '', '', mode_of(m)}) end
    else
      k.head = waiting[1]
      k.behind = #members > 1
      -- Exclusive: only the first may take it. Shared: every waiter ahead must be shared, and
      -- leave a slot; a newcomer behind a queue seen whole takes a slot they leave free.
      k.turn = 'wait'
      local ahead = 0
      local seen_whole = #members <= window
      for j, w in ipairs(waiting) do
        if w[1] == member then
          if (not shared and j == 1) or (shared and ahead < k.free) then
            k.turn = 'mine'
            k.after = waiting[j + 1]
          end
          return
        end
        if not shared or string.sub(w[1], 1, 2) == 'x:' then return end
        ahead = ahead + 1
        if ahead >= k.free then return end
        if j == #waiting and seen_whole and shared then k.turn = 'mine' end
      end
      return
    end
  end
end

-- A key with no record yet needs room in the namespace: at its cap, a later key of the pool that
-- has one is taken instead, and only when none has is the caller told the namespace is full.
local chosen, full = nil, nil
for _, k in ipairs(keys) do
  turn_of(k)
  if k.free > 0 and (k.turn == 'empty' or k.turn == 'mine') then
    if k.r.exp or room() then
      chosen = k
      break
    end
    full = full or k
  end
end
if not chosen and full then return reply('quota', nil, {quota = 'locks', max = MAX_RECORDS, index = full.i}) end

-- 3. None is the caller's: wait in every queue. A newcomer whose priority puts it ahead of the
-- waiters there may find it is its turn now, on a key with room. Held (no slot anywhere): say by
-- whom — an exclusive waiter waits for the last shared lease, a shared one for the first.
local places = {}
if not chosen then
  for _, k in ipairs(keys) do
    local p = queue_me(k)
    if p < 0 then return reply('quota', nil, {quota = 'waiters', max = A.maxWaiters, index = k.i}) end
    places[k.i] = p
  end
  for _, k in ipairs(keys) do
    if k.free > 0 and k.watched and places[k.i] > 0 and places[k.i] <= k.free then
      turn_of(k)
      if k.turn == 'mine' and (k.r.exp or room()) then
        chosen = k
        break
      end
    end
  end
end
if not chosen then
  local first = keys[1]
  local position, wake, free_somewhere = nil, nil, false
  for _, k in ipairs(keys) do
    local p = places[k.i]
    if not position or p < position then position = p end
    if k.free > 0 then
      free_somewhere = true
      local w = now
      if k.turn == 'wait' and k.head then w = k.head[2] end
      if not wake or w < wake then wake = w end
    end
  end
  if free_somewhere then return reply('queued', nil, {position = position, wake_at = wake, index = first.i}) end
  -- Held everywhere: name the lease on the key that frees first for the caller, since its end is
  -- when the caller looks again (a lease that just expires sends no event).
  local which = 'last'
  if shared then which = 'first' end
  local blocking, ends, at = nil, nil, nil
  for _, k in ipairs(keys) do
    local l, e
    if k.excl then
      l, e = lease_of(k.r), tonumber(k.r.exp)
    else
      local h = pick(k.alive, which)
      l, e = shared_lease(h), h.exp
    end
    if e == 0 then e = math.huge end
    if not ends or e < ends then blocking, ends, at = l, e, k end
  end
  return reply('held', blocking, {position = position, index = at.i})
end

-- 4. Granted the chosen key; the caller leaves the other keys' queues.
local k, r = chosen, chosen.r
local fence = next_fence(K.fence)
local queued = k.turn == 'mine'
-- A grant to a waiter keeps the key watched while others wait behind it.
local watched = k.watched or (queued and k.behind)
local w = ''
if watched then w = '1' end
-- Leases that ran out since the key was last granted: into the history now, at the time they
-- ended (the history reads them from the record until then).
local lapsed = {}
local old_exp = tonumber(r.exp) or -1
if r.token and r.token ~= '' and old_exp > 0 and old_exp <= now then
  lapsed[#lapsed + 1] = {at = old_exp, lease = lease_of(r), since = tonumber(r.since)}
  -- Recorded once: a shared grant leaves the exclusive fields in place.
  r.exp = '-1'
end
-- Every ended entry goes with a grant: those that ran out (into the history), and those kept as
-- released (a retried release past a new grant is not a retry).
local gone, gone_th = k.ended, {}
if #gone == 0 and #k.alive == 0 then gone = lapsed_sharers(r, k.holders) end
for _, h in ipairs(gone) do
  if h.exp and h.exp > 0 then
    lapsed[#lapsed + 1] = {at = h.exp, lease = shared_lease(h), since = tonumber(h.since)}
  end
  gone_th[#gone_th + 1] = h.th
end
table.sort(lapsed, function(a, b) return a.at < b.at end)
for _, e in ipairs(lapsed) do note(k.history, r, 'expired', e.at, e.lease, e.at - (e.since or e.at)) end
-- A new record's name joins the namespace's names (the listing); then the fields written with the
-- grant: when its history's Redis expiry moves.
if not r.exp then redis.call('ZADD', K.names, 0, k.name) end
local more = {}
local hx = history_expiry(r)
if hx then
  more[#more + 1] = 'hx'
  more[#more + 1] = hx
  r.hx_set = hx
end
local granted
if shared then
  chunked('HDEL', k.holders, gone_th)
  local entry = table.concat({exp, fence, now, A.holder, A.reason}, US)
  if #k.alive == 0 then r.sh = '0' end
  set_shared(r, k.holders, me, entry, exp, #k.alive == 0, 'lim', limit, 'w', w, unpack(more))
  granted = {fence, now, exp, A.holder, A.reason, 's'}
else
  if #gone_th > 0 then
    chunked('HDEL', k.holders, gone_th)
    more[#more + 1] = 'sh'
    more[#more + 1] = 0
  end
  local fields = {'token', me, 'fence', fence, 'since', now, 'w', w, 'holder', A.holder, 'reason', A.reason}
  set_lease(r, exp, unpack(append(fields, more)))
  granted = {fence, now, exp, A.holder, A.reason, 'x'}
end
note(k.history, r, 'granted', now, granted, nil, actor)
local expired = #lapsed
if queued then
  unqueue(k.queue, k.queueUntil, {member})
  if watched then
    publish(k.channel, 'e', exp)
    -- The next shared waiter may share it too: wake it.
    if shared and k.after and k.free > 1 and string.sub(k.after[1], 1, 2) == 's:' then
      publish(k.channel, 'r', k.after[1] .. ' ' .. k.after[2])
    end
  end
end
for _, other in ipairs(keys) do
  local rank = other ~= k and redis.call('ZRANK', other.queue, member)
  if rank then
    unqueue(other.queue, other.queueUntil, {member})
    -- It was first there: the next waiter is first now and may find that key free (as after a leave).
    local next = rank == 0 and redis.call('ZRANGE', other.queue, 0, 0)[1]
    if next then publish(other.channel, 'r', next .. ' ' .. (redis.call('HGET', other.queueUntil, next) or '0')) end
  end
end
local waited = 0
if queued then waited = 1 end
return reply('granted', granted, {expired = expired, queued = waited, index = k.i})
end

return acquire()
`,
  decode(r): PoolOutcome {
    const base = { ...at(r), index: num(r.index) - 1 };
    switch (r.outcome) {
      case "granted":
        return {
          ...base,
          outcome: "granted",
          lease: leaseOf(r),
          expired: num(r.expired),
          ...(num(r.queued) === 1 ? { queued: true } : {}),
        };
      case "retried":
        return { ...base, outcome: "retried", lease: leaseOf(r) };
      case "held":
        return { ...base, outcome: "held", lease: leaseOf(r), position: num(r.position) };
      case "queued":
        return { ...base, outcome: "queued", position: num(r.position), wakeAt: num(r.wake_at) };
      case "limit":
        return { ...base, outcome: "limit", limit: num(r.limit) };
      case "quota":
        return { ...base, ...quotaOf(r) };
      case "superseded":
        return { ...base, outcome: "superseded", by: r.by ? String(r.by) : null };
      case "unknown":
      case "forbidden":
      case "mode_conflict":
        return { ...base, outcome: r.outcome };
      default:
        throw new Error(`acquire script: unknown outcome ${String(r.outcome)}`);
    }
  },
});
