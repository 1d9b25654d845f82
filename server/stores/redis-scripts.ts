/**
 * Every lock operation as one Lua script: one round trip, decided atomically by Redis against its
 * own clock (TIME), never the web server's. The memory store (memory.ts) implements the same
 * operations; the contract suite keeps them equal. On Upstash every command a script runs is billed,
 * so the scripts spend as few as they can (see the README's Costs).
 *
 * One Redis string per key, its record (packed: RECORD_FIELDS), read once by a script and written
 * back once as it ends: token (sha256 of the exclusive holder's lease token; unset after a forced
 * release), exp (ms; 0 = no expiry, -1 = released), fence, since, holder, reason, cred (registered
 * locks of the /locks API only), rel (when it was released), gc (the key's Redis expiry, set with
 * each write), hx (its history's), w ('1': someone may be waiting or watching, so changes are
 * PUBLISHed), qx (the Redis expiry of the key's queue), sh (no shared holder's lease ends later than
 * this; 0: none) and lim (how many shared holders the key admits while it has any).
 * Shared holders live in a second hash per key, one field per holder's token hash:
 * "exp<US>fence<US>since<US>holder<US>reason" (US: the unit separator, which no field may contain).
 * A lease is live by its exp against Redis's clock. Records also carry a Redis expiry so that they
 * clean themselves up: GC_SLACK_MS (an hour) past their leases, moved only when a lease outgrows
 * it, so that renewals and the next acquire of a key in use need no PEXPIREAT; a /locks lock's
 * expiry is its retention past its last write.
 * Fencing tokens come from one counter (INCR). A counter that is new, or that Redis lost, starts
 * at Redis's clock in microseconds: above every token handed out before, unless that counter had
 * handed out over a thousand tokens per millisecond since it started.
 *
 * Replies are flat arrays: outcome, now, then a lease (fence, since, exp, holder, reason, mode 'x'
 * or 's'), then what the operation adds (ACQUIRE: the caller's place in the queue, and for 'queued'
 * when to look again; 'limit': the limit in force).
 *
 * Waiters queue per key, first come first served: a sorted set of members "x:<token hash>" or
 * "s:<token hash>" (the mode asked for) by arrival, and a hash of the time each keeps its place
 * until (its wait window plus a grace period). A free key goes to the first waiter that still asks;
 * consecutive shared waiters at the head share it up to its limit; waiters that stopped asking are
 * dropped on the way. While someone waits or watches (`w`), releases and expiry changes are
 * PUBLISHed on the key's channel so that waiting requests need not ask Redis again.
 */
import { sha1Hex } from "../crypto.js";
import {
  GC_SLACK_MS,
  QUEUE_GRACE_MS,
  RECLAIM_PER_CALL,
  RELEASED_GRACE_MS,
  STALE_WAITERS_PER_CALL,
} from "./types.js";

export interface LuaScript {
  name: string;
  source: string;
  sha1: string;
}

/**
 * The record's fields, in the order they are packed: one string per key, the fields' values joined
 * by UNIT_SEPARATOR, an empty value for a field that is not set, trailing empty values left out.
 * (A hash of these fields takes twice the memory: a listpack's per-entry overhead and its 64-byte
 * value limit, past which it becomes a hash table, plus the field names.)
 */
export const RECORD_FIELDS = [
  "token",
  "exp",
  "gc",
  "fence",
  "since",
  "holder",
  "reason",
  "hx",
  "w",
  "sh",
  "lim",
  "qx",
  "rel",
  "cred",
] as const;

export type RecordField = (typeof RECORD_FIELDS)[number];

/** What separates the parts of a record, of a shared holder's entry, of a history event (no holder id or reason may contain it). */
export const UNIT_SEPARATOR = "\u001f";

/** A packed record's fields (null: not set); a key with no record gives every field null. */
export function unpackRecord(packed: string | null): Record<RecordField, string | null> {
  const parts = packed == null ? [] : packed.split(UNIT_SEPARATOR);
  return Object.fromEntries(RECORD_FIELDS.map((f, i) => [f, parts[i] || null])) as Record<
    RecordField,
    string | null
  >;
}

const PRELUDE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local US = '\\31'
-- Every script that writes records ends its KEYS with the namespace's index (a sorted set of its
-- key names by when Redis drops their records) and its ARGV with the store's key prefix, the
-- namespace, its cap on records, how long a /locks lock outlives its last write, and how many
-- events (and how long) a key's history keeps.
local INDEX = KEYS[#KEYS]
local BASE, NS = ARGV[#ARGV - 5], ARGV[#ARGV - 4]
-- A Redis key of the namespace's (kind: lock, queue, holders, history…; see redisKeys).
local function key_of(kind, name)
  return BASE .. ':' .. kind .. ':' .. NS .. ':' .. name
end
-- The namespace's records' keys start with this; the index and the names hold what follows.
local RECORD_PREFIX = ''
if BASE and NS then RECORD_PREFIX = key_of('lock', '') end
local MAX_RECORDS = tonumber(ARGV[#ARGV - 3])
local RETENTION = tonumber(ARGV[#ARGV - 2])
local HMAX = tonumber(ARGV[#ARGV - 1])
local HRET = tonumber(ARGV[#ARGV])
local FIELDS = {${RECORD_FIELDS.map((f) => `'${f}'`).join(", ")}}

local function split(s)
  local out, from = {}, 1
  while true do
    local i = string.find(s, US, from, true)
    if not i then
      out[#out + 1] = string.sub(s, from)
      return out
    end
    out[#out + 1] = string.sub(s, from, i - 1)
    from = i + 1
  end
end
-- Every record a script reads; those it changed (dirty) are written back, packed, as it ends.
local records = {}
local function load(key)
  local r = {key = key}
  local packed = redis.call('GET', key)
  if packed then
    local v = split(packed)
    for i, f in ipairs(FIELDS) do
      if v[i] and v[i] ~= '' then r[f] = v[i] end
    end
  end
  records[#records + 1] = r
  return r
end
-- Set fields of a record (name, value, name, value…; '' or nil unsets one): written as the script ends.
local function set(r, ...)
  local n = select('#', ...)
  local a = {...}
  for i = 1, n, 2 do
    local v = a[i + 1]
    if v ~= nil then v = tostring(v) end
    if v == '' then v = nil end
    r[a[i]] = v
  end
  r.dirty = true
end
-- Write back the records that changed, with their Redis expiry (gc; '0': none). Every written
-- record has an exp.
local function save()
  for _, r in ipairs(records) do
    if r.dirty and r.exp then
      local parts, last = {}, 0
      for i, f in ipairs(FIELDS) do
        parts[i] = r[f] or ''
        if parts[i] ~= '' then last = i end
      end
      local packed = table.concat(parts, US, 1, last)
      local gc = tonumber(r.gc)
      if gc and gc > 0 then
        redis.call('SET', r.key, packed, 'PXAT', r.gc)
      else
        redis.call('SET', r.key, packed)
      end
      r.dirty = false
    end
  end
end
local function append(to, from)
  for _, v in ipairs(from) do to[#to + 1] = v end
  return to
end
-- A command over many members (HDEL, ZREM, LPUSH) in chunks: Lua's unpack takes a few thousand
-- values at most, and a script that fails part-way has already made its changes. The last reply.
local CHUNK = 500
local function chunked(command, key, values)
  local out = 0
  for i = 1, #values, CHUNK do
    out = redis.call(command, key, unpack(values, i, math.min(i + CHUNK - 1, #values)))
  end
  return out
end
-- The exclusive lease, when it is live.
local function live(r)
  local exp = tonumber(r.exp)
  return r.token ~= nil and r.token ~= '' and exp ~= nil and (exp == 0 or exp > now)
end
local function lease_of(r)
  return {r.fence, r.since, r.exp, r.holder or '', r.reason or '', 'x'}
end
-- The live shared holders, and the fields of the others (ended or released); none are read when
-- sh says every shared lease has ended.
local function sharers(r, holders_key)
  if (tonumber(r.sh) or 0) <= now then return {}, {} end
  local flat = redis.call('HGETALL', holders_key)
  local alive, ended = {}, {}
  for i = 1, #flat, 2 do
    local p = split(flat[i + 1])
    local exp = tonumber(p[1])
    local h = {th = flat[i], exp = exp, fence = p[2], since = p[3], holder = p[4], reason = p[5], raw = flat[i + 1]}
    if exp and exp > now then alive[#alive + 1] = h else ended[#ended + 1] = h end
  end
  return alive, ended
end
local function shared_lease(h)
  return {h.fence, h.since, tostring(h.exp), h.holder, h.reason, 's'}
end
-- The shared holder whose lease ends first (pick = 'first') or last ('last').
local function pick(alive, which)
  local best = nil
  for _, h in ipairs(alive) do
    if not best or (which == 'first' and h.exp < best.exp) or (which == 'last' and h.exp > best.exp) then best = h end
  end
  return best
end
local function reply(outcome, l, ...)
  local out = {outcome, now}
  for i = 1, 6 do out[#out + 1] = l and l[i] or '' end
  for _, v in ipairs({...}) do out[#out + 1] = v end
  return out
end
-- As a string: Lua turns numbers into text with 14 significant digits, fewer than a token has.
local function next_fence(counter)
  local fence = redis.call('INCR', counter)
  if fence == 1 then
    fence = now * 1000
    redis.call('SET', counter, string.format('%d', fence))
  end
  return string.format('%d', fence)
end
local function name_of(r)
  return string.sub(r.key, #RECORD_PREFIX + 1)
end
-- A key's history: a list of events, newest first, each "kind<US>at<US>holder<US>reason<US>mode<US>
-- fence<US>held ms<US>actor id<US>actor name". Events are collected while a script runs (note) and
-- appended as it ends (flush): one LPUSH per key, trimmed to HMAX in batches (HMAX/10 over), and
-- the list's Redis expiry kept HRET past its last event, moved at most every 30th of HRET (the
-- record remembers it as hx).
local pending, pending_order = {}, {}
local function note(hkey, r, kind, at, l, held, actor)
  local p = pending[hkey]
  if not p then
    p = {r = r, values = {}}
    pending[hkey] = p
    pending_order[#pending_order + 1] = hkey
  end
  local a = actor or {'', ''}
  p.values[#p.values + 1] = table.concat({kind, at, l[4] or '', l[5] or '', l[6] or '', l[1] or '', held or '', a[1], a[2]}, US)
end
-- The history's new Redis expiry, or nil when the one the record remembers is far enough.
local function history_expiry(r)
  if r and r.exp and (tonumber(r.hx) or 0) >= now + HRET then return nil end
  return now + HRET + math.floor(HRET / 30)
end
local function flush()
  for _, hkey in ipairs(pending_order) do
    local p = pending[hkey]
    local n = chunked('LPUSH', hkey, p.values)
    if n > HMAX + math.ceil(HMAX / 10) then redis.call('LTRIM', hkey, 0, HMAX - 1) end
    local r = p.r
    if r and r.hx_set then
      -- Written with the record's fields already.
      redis.call('PEXPIREAT', hkey, r.hx_set)
    else
      local hx = history_expiry(r)
      if not hx and n == #p.values then hx = tonumber(r.hx) end
      if hx then
        redis.call('PEXPIREAT', hkey, hx)
        if r and r.exp then set(r, 'hx', hx) end
      end
    end
  end
end
-- A record of another key, read as it is ({} when there is none).
local function peek_record(key)
  local packed = redis.call('GET', key)
  local r = {}
  if not packed then return r end
  for i, v in ipairs(split(packed)) do
    if v ~= '' and FIELDS[i] then r[FIELDS[i]] = v end
  end
  return r
end
-- Whether a record holds nothing: no live lease, exclusive or shared, nobody queued, and not a
-- /locks lock (whose record is the lock itself).
local function ended(r, name)
  if r.cred or live(r) or (tonumber(r.sh) or 0) > now then return false end
  return redis.call('ZCARD', key_of('queue', name)) == 0
end
-- The namespace's keys whose last holder released them, by when: where reclaim looks first.
local ENDED = ''
if BASE and NS then ENDED = BASE .. ':ended:' .. NS end
-- A key whose record Redis dropped, or that reclaim dropped, leaves the namespace's sets.
local function forget(names, list)
  chunked('ZREM', INDEX, list)
  chunked('ZREM', names, list)
  chunked('ZREM', ENDED, list)
end
-- Drop the record of a key that holds nothing, its leases that ran out written to its history
-- first (in the order they ended); 'dropped', or 'gone' (no record), 'live', or 'busy' (this script
-- works on it).
local function drop_if_ended(names, name, busy)
  local key = RECORD_PREFIX .. name
  if busy[key] then return 'busy' end
  local r = peek_record(key)
  if not r.exp then
    forget(names, {name})
    return 'gone'
  end
  if not ended(r, name) then return 'live' end
  local lapsed = {}
  local exp = tonumber(r.exp) or -1
  if r.token and exp > 0 then lapsed[#lapsed + 1] = {at = exp, lease = lease_of(r), since = tonumber(r.since)} end
  if (tonumber(r.sh) or 0) > 0 then
    local _, gone = sharers({sh = now + 1}, key_of('holders', name))
    for _, h in ipairs(gone) do
      if h.exp and h.exp > 0 then lapsed[#lapsed + 1] = {at = h.exp, lease = shared_lease(h), since = tonumber(h.since)} end
    end
  end
  table.sort(lapsed, function(a, b) return a.at < b.at end)
  for _, e in ipairs(lapsed) do
    note(key_of('history', name), nil, 'expired', e.at, e.lease, e.at - (e.since or e.at))
  end
  redis.call('DEL', key, key_of('holders', name))
  forget(names, {name})
  return 'dropped'
end
-- A namespace at its cap drops a record that holds nothing: first of the keys released longest
-- ago (the ended set), then of the records Redis drops first (a lease that ran out without a
-- release), ${RECLAIM_PER_CALL} of each looked at at most, those this script works on skipped. Whether one was dropped.
local function reclaim(names)
  local busy = {}
  for _, r in ipairs(records) do busy[r.key] = true end
  local stale = {}
  for _, name in ipairs(redis.call('ZRANGE', ENDED, 0, ${RECLAIM_PER_CALL} - 1)) do
    local outcome = drop_if_ended(names, name, busy)
    if outcome == 'dropped' then
      chunked('ZREM', ENDED, stale)
      return true
    end
    -- Taken again since: it leaves the ended set until its next release.
    if outcome == 'live' then stale[#stale + 1] = name end
  end
  chunked('ZREM', ENDED, stale)
  local oldest = redis.call('ZRANGEBYSCORE', INDEX, '(' .. now, '+inf', 'LIMIT', 0, ${RECLAIM_PER_CALL})
  for _, name in ipairs(oldest) do
    if drop_if_ended(names, name, busy) == 'dropped' then return true end
  end
  return false
end
-- Room for one more record in the namespace (asked before each new record)? Records Redis dropped
-- are forgotten first, from the index, the names and the ended set: a few each time, so that none
-- grows past the records that exist, and all of them when the namespace looks full. At the cap,
-- records that hold nothing make room (reclaim): the cap counts what is live.
local function room(names)
  local batch = 16
  while true do
    local gone = redis.call('ZRANGEBYSCORE', INDEX, '-inf', now, 'LIMIT', 0, batch)
    forget(names, gone)
    local count = redis.call('ZCARD', INDEX)
    if count < MAX_RECORDS then return true end
    if #gone < batch then return reclaim(names) end
    batch = 1000
  end
end
-- The key's last holder released it: it joins the namespace's ended set (reclaim looks there first).
local function released(r)
  redis.call('ZADD', ENDED, now, name_of(r))
end
-- The gc value to write with a lease ending at exp (the record's Redis expiry, written with it), and
-- whether it moves (the namespace's index and the shared holders' hash follow). A lease's record outlives
-- the lease by GC_SLACK_MS; a /locks lock outlives its last write by RETENTION (moved at most every
-- 30th of it: once a day for 30 days).
local function plan_gc(r, exp)
  local gc = tonumber(r.gc)
  -- Only a /locks lock is held without end, and even it goes RETENTION after its last write.
  if exp == 0 and not r.cred then return '0', gc ~= 0 end
  local need, slack = exp, ${GC_SLACK_MS}
  if r.cred then need, slack = math.max(exp, now + RETENTION), math.floor(RETENTION / 30) end
  if gc and gc ~= 0 and gc >= need then return r.gc, false end
  return tostring(need + slack), true
end
-- The record's Redis expiry moved to gc: so do its place in the namespace's index and (when it has
-- shared holders) their hash's expiry.
local function apply_gc(r, gc, holders_key)
  if gc == '0' then
    redis.call('ZADD', INDEX, '+inf', name_of(r))
  else
    if holders_key then redis.call('PEXPIREAT', holders_key, gc) end
    redis.call('ZADD', INDEX, gc, name_of(r))
  end
end
-- Set the exclusive lease's exp (and fields), and the record's Redis expiry beyond it.
local function set_lease(r, exp, ...)
  local gc, move = plan_gc(r, exp)
  set(r, 'exp', exp, 'gc', gc, ...)
  if move then apply_gc(r, gc) end
end
-- Write a shared holder's entry, raise sh to cover it, and keep both hashes' expiry beyond it.
local function set_shared(r, holders_key, th, entry, exp, new_hash, ...)
  redis.call('HSET', holders_key, th, entry)
  local sh = math.max(tonumber(r.sh) or 0, exp)
  local gc, move = plan_gc(r, sh)
  -- Every record has an exp (a key held only shared: -1, no exclusive lease).
  set(r, 'sh', sh, 'gc', gc, 'exp', r.exp or -1, ...)
  if move then
    apply_gc(r, gc, holders_key)
  elseif new_hash then
    redis.call('PEXPIREAT', holders_key, gc)
  end
end
local function mode_of(member)
  if string.sub(member, 1, 2) == 's:' then return 's' end
  return 'x'
end
-- Shared holders whose leases ran out, when the key's record says every shared lease has ended
-- (sharers reads none then): for the history, as the key is next granted.
local function lapsed_sharers(r, holders_key)
  local sh = tonumber(r.sh) or 0
  if sh <= 0 or sh > now then return {} end
  local _, ended = sharers({sh = now + 1}, holders_key)
  return ended
end
-- channel: the key's own channel ('' = don't publish); message: kind, then expiry or first waiter.
local function publish(channel, kind, detail)
  if channel ~= '' then redis.call('PUBLISH', channel, kind .. ' ' .. detail) end
end
`;

/** A script: its body runs as a function; then its history events are appended and its changed records written. */
const script = (name: string, body: string, prelude = PRELUDE): LuaScript => {
  const source = `${prelude}\nlocal function main()\n${body.trim()}\nend\nlocal out = main()\nflush()\nsave()\nreturn out\n`;
  return { name, source, sha1: sha1Hex(source) };
};

/**
 * Acquire one of a pool of keys (a single key is a pool of one): a key the caller holds already
 * (a retried acquire), else the first key whose turn it is, else a place in every key's queue, all
 * with one arrival number, so that waiters are served first come first served across the pool.
 * KEYS: fencing counter, queue sequence, then per key: lock, queue (sorted set), queue deadlines
 *       (hash), shared holders (hash), history (list); then the namespace's names, and its index.
 * ARGV: token hash, holder, ttl ms ('' = none), reason, registered-only ('1'), queue window ms
 *       ('' = don't queue), most waiters, mode ('x' exclusive, 's' shared), limit (shared), actor
 *       id, actor name, then per key its event channel ('' = don't publish), then per key its name
 *       in the namespace, then the index tail.
 * Replies end with the 1-based number of the key they are about.
 */
export const ACQUIRE = script(
  "acquire",
  `
local me, mode, limit = ARGV[1], ARGV[8], tonumber(ARGV[9])
local actor = {ARGV[10], ARGV[11]}
local shared = mode == 's'
local member = mode .. ':' .. me
local n = (#KEYS - 4) / 5
local NAMES = KEYS[#KEYS - 1]
local exp = 0
if ARGV[3] ~= '' then exp = now + tonumber(ARGV[3]) end
local arrival = nil

local keys = {}
for i = 1, n do
  local base = 2 + (i - 1) * 5
  local k = {lock = KEYS[base + 1], Q = KEYS[base + 2], U = KEYS[base + 3], HK = KEYS[base + 4], H = KEYS[base + 5],
    channel = ARGV[11 + i], name = ARGV[11 + n + i], i = i}
  k.r = load(k.lock)
  k.watched = k.r.w == '1'
  keys[i] = k
end

-- Join a key's queue, or keep one's place, until the end of the wait window plus the grace period.
-- Returns the 1-based place (0: not queuing, -1: the queue is full).
local function queue_me(k)
  if ARGV[6] == '' then return 0 end
  local r = k.r
  local rank = redis.call('ZRANK', k.Q, member)
  local created = false
  if not rank then
    rank = redis.call('ZCARD', k.Q)
    if rank >= tonumber(ARGV[7]) then return -1 end
    arrival = arrival or redis.call('INCR', KEYS[2])
    redis.call('ZADD', k.Q, arrival, member)
    created = rank == 0
    -- From now on the holders' changes are published. (A key with no record yet is being handed
    -- to the first waiter, whose grant marks it.)
    if r.exp and not k.watched then set(r, 'w', '1') end
  end
  local until_ms = now + tonumber(ARGV[6]) + ${QUEUE_GRACE_MS}
  redis.call('HSET', k.U, member, until_ms)
  -- The queue's keys outlive its last waiter by GC_SLACK_MS at most: their Redis expiry (kept in
  -- the record as qx) moves only when a waiter's place outgrows it, or when the queue is new.
  if created or until_ms > (tonumber(r.qx) or 0) then
    local qx = until_ms + ${GC_SLACK_MS}
    redis.call('PEXPIREAT', k.Q, qx)
    redis.call('PEXPIREAT', k.U, qx)
    if r.exp then set(r, 'qx', qx) end
  end
  return rank + 1
end

local function acquire()
-- 1. What each key says to the caller: refusals first, then a retried acquire (it holds one
-- already: its lease now ends ttl from now).
for _, k in ipairs(keys) do
  local r = k.r
  if ARGV[5] == '1' and not r.cred then return {'unknown', now, k.i} end
  if r.cred and r.cred ~= me then return {'forbidden', now, k.i} end
  -- A /locks lock has one holder: its key.
  if shared and r.cred then return {'mode_conflict', now, k.i} end
  k.excl = live(r)
  if k.excl and r.token == me then
    set_lease(r, exp)
    if k.watched then publish(k.channel, 'e', exp) end
    note(k.H, r, 'extended', now, lease_of(r), nil, actor)
    return reply('retried', lease_of(r), k.i)
  end
  k.alive, k.ended = sharers(r, k.HK)
  for _, h in ipairs(k.alive) do
    if h.th == me then
      h.exp = exp
      set_shared(r, k.HK, me, table.concat({exp, h.fence, h.since, h.holder, h.reason}, US), exp, false)
      if k.watched then publish(k.channel, 'e', exp) end
      note(k.H, r, 'extended', now, shared_lease(h), nil, actor)
      return reply('retried', shared_lease(h), k.i)
    end
  end
  -- Shared holders admit as many as the limit in force; a caller counting otherwise is told.
  local lim = tonumber(r.lim)
  if shared and #k.alive > 0 and lim ~= limit then return reply('limit', nil, lim, k.i) end
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
    local members = redis.call('ZRANGE', k.Q, 0, window)
    if #members == 0 then return end
    local untils = redis.call('HMGET', k.U, unpack(members))
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
      redis.call('ZREM', k.Q, unpack(stale))
      redis.call('HDEL', k.U, unpack(stale))
      dropped = dropped + #stale
      -- They stopped asking (their wait ended without a word): a queue timeout each.
      for _, m in ipairs(stale) do note(k.H, r, 'queue_timeout', now, {'', '', '', '', '', mode_of(m)}) end
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
    if k.r.exp or room(NAMES) then
      chosen = k
      break
    end
    full = full or k
  end
end
if not chosen and full then return {'quota', now, 'locks', MAX_RECORDS, full.i} end

-- 3. None is the caller's: wait in every queue. Held (no slot anywhere): say by whom — an
-- exclusive waiter waits for the last shared lease, a shared one for the first.
if not chosen then
  local first = keys[1]
  local position, wake, free_somewhere = nil, nil, false
  for _, k in ipairs(keys) do
    local p = queue_me(k)
    if p < 0 then return {'quota', now, 'waiters', ARGV[7], k.i} end
    if not position or p < position then position = p end
    if k.free > 0 then
      free_somewhere = true
      local w = now
      if k.turn == 'wait' and k.head then w = k.head[2] end
      if not wake or w < wake then wake = w end
    end
  end
  if free_somewhere then return reply('queued', nil, position, wake, first.i) end
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
  return reply('held', blocking, position, at.i)
end

-- 4. Granted the chosen key; the caller leaves the other keys' queues.
local k, r = chosen, chosen.r
local fence = next_fence(KEYS[1])
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
if #gone == 0 and #k.alive == 0 then gone = lapsed_sharers(r, k.HK) end
for _, h in ipairs(gone) do
  if h.exp and h.exp > 0 then
    lapsed[#lapsed + 1] = {at = h.exp, lease = shared_lease(h), since = tonumber(h.since)}
  end
  gone_th[#gone_th + 1] = h.th
end
table.sort(lapsed, function(a, b) return a.at < b.at end)
for _, e in ipairs(lapsed) do note(k.H, r, 'expired', e.at, e.lease, e.at - (e.since or e.at)) end
-- A new record's name joins the namespace's names (the listing), as does an old hash record's
-- that predates them; then the fields written with the grant: when its history's Redis expiry moves.
if not r.exp then redis.call('ZADD', NAMES, 0, k.name) end
local more = {}
local hx = history_expiry(r)
if hx then
  more[#more + 1] = 'hx'
  more[#more + 1] = hx
  r.hx_set = hx
end
local granted
if shared then
  chunked('HDEL', k.HK, gone_th)
  local entry = table.concat({exp, fence, now, ARGV[2], ARGV[4]}, US)
  if #k.alive == 0 then r.sh = '0' end
  set_shared(r, k.HK, me, entry, exp, #k.alive == 0, 'lim', limit, 'w', w, unpack(more))
  granted = {fence, now, exp, ARGV[2], ARGV[4], 's'}
else
  if #gone_th > 0 then
    chunked('HDEL', k.HK, gone_th)
    more[#more + 1] = 'sh'
    more[#more + 1] = 0
  end
  local fields = {'token', me, 'fence', fence, 'since', now, 'w', w, 'holder', ARGV[2], 'reason', ARGV[4]}
  set_lease(r, exp, unpack(append(fields, more)))
  granted = {fence, now, exp, ARGV[2], ARGV[4], 'x'}
end
note(k.H, r, 'granted', now, granted, nil, actor)
local expired = #lapsed
if queued then
  redis.call('ZREM', k.Q, member)
  redis.call('HDEL', k.U, member)
  if watched then
    publish(k.channel, 'e', exp)
    -- The next shared waiter may share it too: wake it.
    if shared and k.after and k.free > 1 and string.sub(k.after[1], 1, 2) == 's:' then
      publish(k.channel, 'r', k.after[1] .. ' ' .. k.after[2])
    end
  end
end
for _, other in ipairs(keys) do
  local rank = other ~= k and redis.call('ZRANK', other.Q, member)
  if rank then
    redis.call('ZREM', other.Q, member)
    redis.call('HDEL', other.U, member)
    -- It was first there: the next waiter is first now and may find that key free (as after a leave).
    local next = rank == 0 and redis.call('ZRANGE', other.Q, 0, 0)[1]
    if next then publish(other.channel, 'r', next .. ' ' .. (redis.call('HGET', other.U, next) or '0')) end
  end
end
return reply('granted', granted, expired, k.i)
end

return acquire()
`,
);

/**
 * KEYS: queue, queue deadlines, history, index. ARGV: token hash, the key's event channel ('' =
 * don't publish), holder, actor id, actor name, index tail.
 * A cancelled waiter leaves the queue (in whichever mode it waited) and a queue timeout in the
 * history; the one after it is told to look (the key may be free).
 */
export const LEAVE = script(
  "leave",
  `
for _, mode in ipairs({'x', 's'}) do
  local member = mode .. ':' .. ARGV[1]
  local rank = redis.call('ZRANK', KEYS[1], member)
  if rank then
    note(KEYS[3], nil, 'queue_timeout', now, {'', '', '', ARGV[3], '', mode}, nil, {ARGV[4], ARGV[5]})
    redis.call('ZREM', KEYS[1], member)
    redis.call('HDEL', KEYS[2], member)
    -- Only when the first waiter leaves does the next one become first (and may find the key free).
    local next = redis.call('ZRANGE', KEYS[1], 0, 0)[1]
    if rank == 0 and next and ARGV[2] ~= '' then
      local next_until = redis.call('HGET', KEYS[2], next) or '0'
      redis.call('PUBLISH', ARGV[2], 'r ' .. next .. ' ' .. next_until)
    end
    return 1
  end
end
return 0
`,
);

/** KEYS: lock, shared holders, index. ARGV: token hash, ttl ms, event channel ('' = don't publish), index tail. */
export const RENEW = script(
  "renew",
  `
local r = load(KEYS[1])
local me = ARGV[1]
local watched = r.w == '1'
if r.cred and r.cred ~= me then return {'forbidden', now} end
local exp = now + tonumber(ARGV[2])
if live(r) then
  if r.token ~= me then return reply('held', lease_of(r)) end
  set_lease(r, exp)
  if watched then publish(ARGV[3], 'e', exp) end
  return reply('renewed', lease_of(r))
end
local alive = sharers(r, KEYS[2])
for _, h in ipairs(alive) do
  if h.th == me then
    h.exp = exp
    set_shared(r, KEYS[2], me, table.concat({exp, h.fence, h.since, h.holder, h.reason}, US), exp, false)
    if watched then publish(ARGV[3], 'e', exp) end
    return reply('renewed', shared_lease(h))
  end
end
if #alive > 0 then return reply('held', shared_lease(pick(alive, 'last'))) end
return {'not_held', now}
`,
);

/**
 * KEYS: lock, queue, queue deadlines, shared holders, history, index. ARGV: token hash ('' = an
 * operator's forced release: every holder), registered-only ('1'), event channel ('' = don't
 * publish), actor id, actor name, index tail.
 */
export const RELEASE = script(
  "release",
  `
local r = load(KEYS[1])
local HK, H = KEYS[4], KEYS[5]
local actor = {ARGV[4], ARGV[5]}
local function release()
local me = ARGV[1]
local force = me == ''
local watched = r.w == '1'
if ARGV[2] == '1' and not r.cred then return {'unknown', now} end
if not force and r.cred and r.cred ~= me then return {'forbidden', now} end
-- A retried release, within the grace period, answers as the first one did.
if not force and r.token == me and r.exp == '-1' and now < (tonumber(r.rel) or 0) + ${RELEASED_GRACE_MS} then
  return {'released', now, 0, '1'}
end
local excl = live(r)
local alive, ended = sharers(r, HK)
local mine = nil
for _, h in ipairs(alive) do
  if h.th == me then mine = h end
end
if not force and not mine and not excl then
  -- A shared holder's retried release, within the grace period.
  local gone = redis.call('HGET', HK, me)
  if gone then
    local p = split(gone)
    if p[1] == '-1' and now < (tonumber(p[6]) or 0) + ${RELEASED_GRACE_MS} then return {'released', now, 0, '1'} end
  end
  if #alive > 0 then return reply('held', shared_lease(pick(alive, 'last'))) end
  return {'not_held', now}
end
if not force and not mine and r.token ~= me then
  return reply('held', lease_of(r))
end
if not excl and #alive == 0 then return {'not_held', now} end
-- Shared leases that ran out meanwhile go into the history now (once this release clears sh, no
-- later call would read them).
-- Released entries past their grace period go too, so that the hash holds live holders and the
-- few just released, never a key's whole past.
local lapsed, dropped = {}, {}
for _, h in ipairs(ended) do
  if h.exp and h.exp > 0 then
    note(H, r, 'expired', h.exp, shared_lease(h), h.exp - tonumber(h.since))
    lapsed[#lapsed + 1] = h.th
    dropped[#dropped + 1] = h.th
  elseif now >= (tonumber(split(h.raw)[6]) or 0) + ${RELEASED_GRACE_MS} then
    dropped[#dropped + 1] = h.th
  end
end
chunked('HDEL', HK, dropped)
-- Into the history: the holder's own release, or every holder a forced release ends.
local kind = 'released'
if force then kind = 'forced_release' end
if excl and (force or r.token == me) then note(H, r, kind, now, lease_of(r), now - tonumber(r.since), actor) end
for _, h in ipairs(alive) do
  if force or h == mine then note(H, r, kind, now, shared_lease(h), now - tonumber(h.since), actor) end
end
-- Still held by others after this release? (A shared holder leaving others; never when forced.)
local others = 0
if mine then others = #alive - 1 end
if mine then
  -- Its entry stays a while as "released", for a retried release. The last holder to leave takes
  -- every other entry with it: then the entry alone is left, and only for the grace period.
  if others == 0 then redis.call('DEL', HK) end
  redis.call('HSET', HK, me, table.concat({-1, mine.fence, mine.since, mine.holder, mine.reason, now}, US))
  if others == 0 then
    redis.call('PEXPIREAT', HK, now + ${RELEASED_GRACE_MS})
    set(r, 'sh', 0)
  end
elseif force and #alive > 0 then
  redis.call('DEL', HK)
  set(r, 'sh', 0)
end
-- Wake the first waiter only (the others learn the new holder's expiry when it takes the lock),
-- and say until when it keeps its place, so that the others look again then if it never comes.
local next, next_until = '-', '0'
if watched then
  next = redis.call('ZRANGE', KEYS[2], 0, 0)[1] or '-'
  if next ~= '-' then next_until = redis.call('HGET', KEYS[3], next) or '0' end
end
if excl and (force or r.token == me) then
  -- A forced release forgets the token: its holder's own release must say it lost the lease.
  local token = r.token
  if force then token = '' end
  -- With nobody queued, this release is the last thing watchers wait for.
  local still = ''
  if watched and next ~= '-' then still = '1' end
  set_lease(r, -1, 'rel', now, 'token', token, 'w', still)
elseif watched and next == '-' and others == 0 then
  set(r, 'w', '')
end
if watched then publish(ARGV[3], 'r', next .. ' ' .. next_until) end
-- Nobody holds it now: into the namespace's ended set.
if others == 0 then released(r) end
return {'released', now, #lapsed}
end

return release()
`,
);

/**
 * KEYS: lock, queue, shared holders. For a caller that waits for the key to be free: marks the key
 * watched, so that its release is published. (A plain status is a pipelined read: redis.ts.)
 * Reply: outcome ('held' or 'free'), now, a holder's lease (the one ending last), registered ('1'),
 * how many wait.
 */
export const INSPECT = script(
  "inspect",
  `
local r = load(KEYS[1])
local registered = ''
if r.cred then registered = '1' end
local waiting = redis.call('ZCARD', KEYS[2])
local held = nil
if live(r) then
  held = lease_of(r)
else
  local alive = sharers(r, KEYS[3])
  if #alive > 0 then held = shared_lease(pick(alive, 'last')) end
end
if not held then return reply('free', nil, registered, waiting) end
if r.w ~= '1' then set(r, 'w', '1') end
return reply('held', held, registered, waiting)
`,
);

/**
 * KEYS: lock, fencing counter, history, the namespace's names, index. ARGV: credential hash, lock
 * ('1'), ttl ms ('' = none), holder, the key's name in the namespace, actor id, actor name, and the
 * index tail.
 */
export const REGISTER = script(
  "register",
  `
local r = load(KEYS[1])
-- Every write sets exp, so a record without it does not exist. One with this credential is this
-- very lock: a retried create (its answer was lost) gets it back, as it is now.
if r.exp and r.cred == ARGV[1] then
  if live(r) then return reply('created', lease_of(r)) end
  return {'created', now}
end
if r.exp then return {'exists', now} end
if not room(KEYS[4]) then return {'quota', now, 'locks', MAX_RECORDS} end
redis.call('ZADD', KEYS[4], 0, ARGV[5])
r.cred = ARGV[1]
if ARGV[2] ~= '1' then
  set_lease(r, -1, 'cred', r.cred, 'since', now)
  return {'created', now}
end
local exp = 0
if ARGV[3] ~= '' then exp = now + tonumber(ARGV[3]) end
local fence = next_fence(KEYS[2])
local hx = history_expiry(r)
r.hx_set = hx
set_lease(r, exp, 'cred', r.cred, 'token', r.cred, 'fence', fence, 'since', now, 'hx', hx, 'holder', ARGV[4], 'reason', '')
local l = {fence, now, exp, ARGV[4], '', 'x'}
note(KEYS[3], r, 'granted', now, l, nil, {ARGV[6], ARGV[7]})
return reply('created', l)
`,
);

/**
 * A key's history, newest first, with the leases that ran out and are not written yet (they are
 * when the key is next granted) read from the record. KEYS: history, lock, shared holders.
 * ARGV: the index tail. Reply: now, then the events.
 */
export const HISTORY = script(
  "history",
  `
local out = {now}
local r = load(KEYS[2])
local lapsed = {}
local exp = tonumber(r.exp) or -1
if r.token and r.token ~= '' and exp > 0 and exp <= now then
  lapsed[#lapsed + 1] = {at = exp, lease = lease_of(r), since = tonumber(r.since)}
end
local alive, ended = sharers(r, KEYS[3])
if #ended == 0 and #alive == 0 then ended = lapsed_sharers(r, KEYS[3]) end
for _, h in ipairs(ended) do
  if h.exp and h.exp > 0 then lapsed[#lapsed + 1] = {at = h.exp, lease = shared_lease(h), since = tonumber(h.since)} end
end
table.sort(lapsed, function(a, b) return a.at > b.at end)
for _, e in ipairs(lapsed) do
  local l = e.lease
  out[#out + 1] = table.concat({'expired', e.at, l[4] or '', l[5] or '', l[6], l[1], e.at - (e.since or e.at), '', ''}, US)
end
for _, v in ipairs(redis.call('LRANGE', KEYS[1], 0, HMAX - 1)) do out[#out + 1] = v end
return out
`,
);

/**
 * One page of a namespace's keys in order, with each key's state. KEYS: the namespace's names (a
 * sorted set of equal scores, read in lexical order). ARGV: the prefixes of the key's record, queue
 * and shared holders' keys, the prefix to list, the name to start after ('' = the first), how many.
 * Names whose record Redis dropped are forgotten on the way. Reply: now, more ('1'), the last name
 * looked at, then per key: name, registered ('1'), waiting, holders, and a lease (6 fields, or '').
 */
export const LIST = script(
  "list",
  `
local lock_prefix, queue_prefix, holders_prefix = ARGV[1], ARGV[2], ARGV[3]
local prefix, after, limit = ARGV[4], ARGV[5], tonumber(ARGV[6])
local min, max = '-', '+'
if prefix ~= '' then min, max = '[' .. prefix, '[' .. prefix .. '\\255' end
if after ~= '' and after >= prefix then min = '(' .. after end
local names = redis.call('ZRANGEBYLEX', KEYS[1], min, max, 'LIMIT', 0, limit + 1)
local more = ''
if #names > limit then more = '1' end
local out = {now, more, ''}
local gone = {}
for i = 1, math.min(#names, limit) do
  local name = names[i]
  out[3] = name
  local r = load(lock_prefix .. name)
  if not r.exp then
    gone[#gone + 1] = name
  else
    local registered = ''
    if r.cred then registered = '1' end
    local waiting = redis.call('ZCARD', queue_prefix .. name)
    local l, holders = nil, 0
    if live(r) then
      l, holders = lease_of(r), 1
    else
      local alive = sharers(r, holders_prefix .. name)
      if #alive > 0 then l, holders = shared_lease(pick(alive, 'last')), #alive end
    end
    out[#out + 1] = name
    out[#out + 1] = registered
    out[#out + 1] = waiting
    out[#out + 1] = holders
    for j = 1, 6 do out[#out + 1] = l and l[j] or '' end
  end
end
if #gone > 0 then redis.call('ZREM', KEYS[1], unpack(gone)) end
return out
`,
);
