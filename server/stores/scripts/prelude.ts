/**
 * What every script shares, in Lua: the clock (Redis's TIME, never a web server's), a key's record
 * (read once, written back once as the script ends), its history (appended as the script ends),
 * the namespace's bound on records (room, reclaim, the records' Redis expiry), shared holders, and
 * the named reply. define.ts puts it after the script's named KEYS and ARGV (K, A) and before its
 * body. On Upstash every command a script runs is billed, so the scripts spend as few as they can
 * (see docs/costs.md).
 *
 * A record: one Redis string per key (record.ts says its fields). Shared holders live in a second
 * hash per key, one field per holder's token hash: "exp<US>fence<US>since<US>holder<US>reason"
 * (US: the unit separator, which no field may contain; a released entry adds when, with exp -1).
 * A lease is live by its exp against Redis's clock. Records also carry a Redis expiry so that they
 * clean themselves up: GC_SLACK_MS (an hour) past their leases, moved only when a lease outgrows
 * it, so that renewals and the next acquire of a key in use need no PEXPIREAT; a /locks lock's
 * expiry is its retention past its last write.
 * Fencing tokens come from one counter per namespace (INCR), held at or above Redis's clock in
 * microseconds: a counter that is new, lost, or behind (a promoted replica's) still hands out tokens
 * above every one before, unless the namespace had handed out over a thousand per millisecond, or
 * the new primary's clock is behind the old one's by more than the failover took.
 */
import { RECORD_FIELDS } from "../record.js";
import { GC_SLACK_MS, RECLAIM_PER_CALL } from "../types.js";

export const PRELUDE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local US = '\\31'
-- Every script gets the namespace it works in (define.ts): K.index (its key names by when Redis
-- drops their records), K.names (in key order, for the listing), K.ended (the keys released last,
-- by when), and A.base (what every key of the namespace starts with: the store's prefix and the
-- namespace as the keys' hash tag, redis/keys.ts), A.maxRecords (its cap on records),
-- A.retention (how long a /locks lock outlives its last write), A.historyMax and
-- A.historyRetention (how many events, and how long, a key's history keeps).
-- A Redis key of the namespace's (kind: lock, queue, holders, history…; see redisKeys).
local function key_of(kind, name)
  return A.base .. ':' .. kind .. ':' .. name
end
-- The namespace's records' keys start with this; the index and the names hold what follows.
local RECORD_PREFIX = key_of('lock', '')
local MAX_RECORDS = tonumber(A.maxRecords)
local RETENTION = tonumber(A.retention)
local HMAX = tonumber(A.historyMax)
local HRET = tonumber(A.historyRetention)
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
-- A reply: its named fields as a flat list (name, value…), which the store reads by name
-- (readReply); then each list's items (lists: a name → its items), each under that name.
local function out(fields, lists)
  local flat = {}
  for name, value in pairs(fields) do
    flat[#flat + 1] = name
    flat[#flat + 1] = value
  end
  for name, items in pairs(lists or {}) do
    for _, item in ipairs(items) do
      flat[#flat + 1] = name
      flat[#flat + 1] = item
    end
  end
  return flat
end
-- The script's answer: its outcome, the clock, a lease (l: fence, since, exp, holder, reason,
-- mode 'x' or 's') when there is one, and what else it says (fields; lists), all by name.
local function reply(outcome, l, fields, lists)
  fields = fields or {}
  fields.outcome, fields.now = outcome, now
  if l then
    fields.fence, fields.since, fields.exp, fields.mode = l[1], l[2], l[3], l[6]
    fields.holder, fields.reason = l[4] or '', l[5] or ''
  end
  return out(fields, lists)
end
-- A fencing token: one above the namespace's last, and never below Redis's clock in microseconds,
-- so that a counter which is new, lost, or behind (a replica promoted before it had the last
-- grants) still hands out tokens above every one before. As a string: Lua turns numbers into text
-- with 14 significant digits, fewer than a token has.
local function next_fence(counter)
  local fence = redis.call('INCR', counter)
  if fence < now * 1000 then
    fence = now * 1000
    redis.call('SET', counter, string.format('%d', fence))
  end
  return string.format('%d', fence)
end
local function name_of(r)
  return string.sub(r.key, #RECORD_PREFIX + 1)
end
-- A key's history: a list of events, newest first, each "kind<US>at<US>holder<US>reason<US>mode<US>
-- fence<US>held ms<US>actor id<US>actor name<US>superseded by". Events are collected while a script runs (note) and
-- appended as it ends (flush): one LPUSH per key, trimmed to HMAX in batches (HMAX/10 over), and
-- the list's Redis expiry kept HRET past its last event, moved at most every 30th of HRET (the
-- record remembers it as hx).
local pending, pending_order = {}, {}
local function note(hkey, r, kind, at, l, held, actor, by)
  local p = pending[hkey]
  if not p then
    p = {r = r, values = {}}
    pending[hkey] = p
    pending_order[#pending_order + 1] = hkey
  end
  local a = actor or {'', ''}
  p.values[#p.values + 1] = table.concat({kind, at, l[4] or '', l[5] or '', l[6] or '', l[1] or '', held or '', a[1], a[2], by or ''}, US)
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
  if r.cred or live(r) then return false end
  -- sh says when the last shared lease granted ends, not whether its holder is still there (one
  -- that released leaves it as it was): the holders themselves say.
  if (tonumber(r.sh) or 0) > now and #sharers(r, key_of('holders', name)) > 0 then return false end
  return redis.call('ZCARD', key_of('queue', name)) == 0
end
-- A key whose record Redis dropped, or that reclaim dropped, leaves the namespace's sets.
local function forget(list)
  chunked('ZREM', K.index, list)
  chunked('ZREM', K.names, list)
  chunked('ZREM', K.ended, list)
end
-- Drop the record of a key that holds nothing, its leases that ran out written to its history
-- first (in the order they ended); 'dropped', or 'gone' (no record), 'live', or 'busy' (this script
-- works on it).
local function drop_if_ended(name, busy)
  local key = RECORD_PREFIX .. name
  if busy[key] then return 'busy' end
  local r = peek_record(key)
  if not r.exp then
    forget({name})
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
  forget({name})
  return 'dropped'
end
-- A namespace at its cap drops a record that holds nothing: first of the keys released longest
-- ago (the ended set), then of the records Redis drops first (a lease that ran out without a
-- release), ${RECLAIM_PER_CALL} of each looked at at most, those this script works on skipped. Whether one was dropped.
local function reclaim()
  local busy = {}
  for _, r in ipairs(records) do busy[r.key] = true end
  local stale = {}
  for _, name in ipairs(redis.call('ZRANGE', K.ended, 0, ${RECLAIM_PER_CALL} - 1)) do
    local outcome = drop_if_ended(name, busy)
    if outcome == 'dropped' then
      chunked('ZREM', K.ended, stale)
      return true
    end
    -- Taken again since: it leaves the ended set until its next release.
    if outcome == 'live' then stale[#stale + 1] = name end
  end
  chunked('ZREM', K.ended, stale)
  local oldest = redis.call('ZRANGEBYSCORE', K.index, '(' .. now, '+inf', 'LIMIT', 0, ${RECLAIM_PER_CALL})
  for _, name in ipairs(oldest) do
    if drop_if_ended(name, busy) == 'dropped' then return true end
  end
  return false
end
-- Room for one more record in the namespace (asked before each new record)? Records Redis dropped
-- are forgotten first, from the index, the names and the ended set: a few each time, so that none
-- grows past the records that exist, and all of them when the namespace looks full. At the cap,
-- records that hold nothing make room (reclaim): the cap counts what is live.
local function room()
  local batch = 16
  while true do
    local gone = redis.call('ZRANGEBYSCORE', K.index, '-inf', now, 'LIMIT', 0, batch)
    forget(gone)
    local count = redis.call('ZCARD', K.index)
    if count < MAX_RECORDS then return true end
    if #gone < batch then return reclaim() end
    batch = 1000
  end
end
-- The key's last holder released it: it joins the namespace's ended set (reclaim looks there first).
local function released(r)
  redis.call('ZADD', K.ended, now, name_of(r))
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
    redis.call('ZADD', K.index, '+inf', name_of(r))
  else
    if holders_key then redis.call('PEXPIREAT', holders_key, gc) end
    redis.call('ZADD', K.index, gc, name_of(r))
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
-- Waiters leave a key's queue: their places, deadlines, and what a status shows of them.
local function unqueue(queue, queue_until, members)
  redis.call('ZREM', queue, unpack(members))
  local fields = {}
  for _, m in ipairs(members) do
    fields[#fields + 1] = m
    fields[#fields + 1] = 'i:' .. m
  end
  redis.call('HDEL', queue_until, unpack(fields))
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
