/**
 * Every lock operation as one Lua script: one round trip, decided atomically by Redis against its
 * own clock (TIME), never the web server's. The memory store (memory.ts) implements the same
 * operations; the contract suite keeps them equal. On Upstash every command a script runs is billed,
 * so the scripts spend as few as they can (see the README's Costs).
 *
 * One Redis hash per key: token (sha256 of the lease token; '' after a forced release), exp (ms;
 * 0 = no expiry, -1 = released), fence, since, holder, reason, cred (registered locks of the /locks
 * API only), rel (when it was released), gc (the key's Redis expiry), w ('1': someone may be waiting
 * or watching, so changes are PUBLISHed), qx (the Redis expiry of the key's queue).
 * A lease is live by `exp` against Redis's clock. Unregistered keys also carry a Redis expiry so
 * that they clean themselves up: GC_SLACK_MS (an hour) past the lease, moved only when the lease
 * outgrows it, so that renewals and the next acquire of a key in use need no PEXPIREAT. Registered keys persist.
 * Fencing tokens come from one counter (INCR). A counter that is new, or that Redis lost, starts
 * at Redis's clock in microseconds: above every token handed out before, unless that counter had
 * handed out over a thousand tokens per millisecond since it started.
 *
 * Every reply is a flat array: outcome, now, then for a lease fence, since, exp, holder, reason, and
 * then for ACQUIRE the caller's queue position (and for 'queued' when to look again), for INSPECT
 * whether the key is registered and how many wait.
 *
 * Waiters queue per key, first come first served: a sorted set of token hashes by arrival, and a
 * hash of the time each keeps its place until (its wait window plus a grace period). A free key
 * goes to the first waiter that still asks; waiters that stopped asking are dropped on the way.
 * While someone waits or watches (`w`), releases and expiry changes are PUBLISHed on the key's
 * channel so that waiting requests need not ask Redis again; nobody waiting, nothing is published.
 */
import { sha1Hex } from "../crypto.js";
import { GC_SLACK_MS, QUEUE_GRACE_MS, RELEASED_GRACE_MS, STALE_WAITERS_PER_CALL } from "./types.js";

export interface LuaScript {
  name: string;
  source: string;
  sha1: string;
}

const FIELDS = "'token', 'exp', 'fence', 'since', 'holder', 'reason', 'cred', 'gc', 'rel', 'w', 'qx'";

const PRELUDE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rec = redis.call('HMGET', KEYS[1], ${FIELDS})
local cred = rec[7]
local watched = rec[10] == '1'
local function live()
  local exp = tonumber(rec[2])
  return rec[1] and rec[1] ~= '' and exp and (exp == 0 or exp > now)
end
local function lease(outcome)
  return {outcome, now, rec[3], rec[4], rec[2], rec[5] or '', rec[6] or ''}
end
local function next_fence()
  local fence = redis.call('INCR', KEYS[2])
  if fence == 1 then
    fence = now * 1000
    redis.call('SET', KEYS[2], string.format('%d', fence))
  end
  return fence
end
-- Every script ends its KEYS with the namespace's index (a sorted set of its records by when Redis
-- drops them) and its ARGV with: the record's name in that index, the namespace's cap on records,
-- and how long a /locks lock outlives its last write.
local INDEX = KEYS[#KEYS]
local MEMBER = ARGV[#ARGV - 2]
local MAX_RECORDS = tonumber(ARGV[#ARGV - 1])
local RETENTION = tonumber(ARGV[#ARGV])
-- Room for one more record in the namespace? Records Redis dropped already are forgotten first.
local function room()
  if redis.call('ZCARD', INDEX) < MAX_RECORDS then return true end
  redis.call('ZREMRANGEBYSCORE', INDEX, '-inf', now)
  return redis.call('ZCARD', INDEX) < MAX_RECORDS
end
-- The gc value to write with exp, and whether the key's Redis expiry must move (after the write:
-- an expiry on a key that does not exist yet is lost). A lease's record outlives the lease by
-- GC_SLACK_MS; a /locks lock outlives its last write by RETENTION (moved at most every 30th of it:
-- once a day for 30 days).
local function plan_gc(exp)
  local gc = tonumber(rec[8])
  if exp == 0 then return '0', gc ~= 0 end
  local need, slack = exp, ${GC_SLACK_MS}
  if cred then need, slack = math.max(exp, now + RETENTION), math.floor(RETENTION / 30) end
  if gc and gc ~= 0 and gc >= need then return rec[8], false end
  return tostring(need + slack), true
end
local function apply_gc(gc, move)
  if not move then return end
  if gc == '0' then
    redis.call('PERSIST', KEYS[1])
    redis.call('ZADD', INDEX, '+inf', MEMBER)
  else
    redis.call('PEXPIREAT', KEYS[1], gc)
    redis.call('ZADD', INDEX, gc, MEMBER)
  end
end
-- Write exp (and fields) and keep the key's Redis expiry beyond it.
local function set_lease(exp, ...)
  local gc, move = plan_gc(exp)
  redis.call('HSET', KEYS[1], 'exp', exp, 'gc', gc, ...)
  apply_gc(gc, move)
  rec[2] = tostring(exp)
  rec[8] = gc
end
-- channel: the key's own channel ('' = don't publish); message: kind, then expiry or first waiter.
local function publish(channel, kind, detail)
  if channel ~= '' then redis.call('PUBLISH', channel, kind .. ' ' .. detail) end
end
`;

const script = (name: string, body: string, prelude = PRELUDE): LuaScript => {
  const source = `${prelude}\n${body.trim()}\n`;
  return { name, source, sha1: sha1Hex(source) };
};

/**
 * KEYS: lock, fencing counter, queue (sorted set), queue deadlines (hash), queue sequence, index.
 * ARGV: token hash, holder, ttl ms ('' = none), reason, registered-only ('1'),
 *       queue window ms ('' = don't queue), event channel ('' = don't publish), most waiters, and
 *       the index tail (member, most records, retention).
 */
export const ACQUIRE = script(
  "acquire",
  `
local me = ARGV[1]
if ARGV[5] == '1' and not cred then return {'unknown', now} end
if cred and cred ~= me then return {'forbidden', now} end
-- Join the queue, or keep one's place, until the end of the wait window plus the grace period.
local function queue_me()
  if ARGV[6] == '' then return 0 end
  local rank = redis.call('ZRANK', KEYS[3], me)
  local created = false
  if not rank then
    rank = redis.call('ZCARD', KEYS[3])
    if rank >= tonumber(ARGV[8]) then return -1 end
    redis.call('ZADD', KEYS[3], redis.call('INCR', KEYS[5]), me)
    created = rank == 0
    -- From now on the holder's changes are published. (A key with no record yet is being handed
    -- to the first waiter, whose grant marks it.)
    if rec[2] and not watched then redis.call('HSET', KEYS[1], 'w', '1') end
  end
  local until_ms = now + tonumber(ARGV[6]) + ${QUEUE_GRACE_MS}
  redis.call('HSET', KEYS[4], me, until_ms)
  -- The queue's keys outlive its last waiter by GC_SLACK_MS at most: their Redis expiry (kept in
  -- the record as qx) moves only when a waiter's place outgrows it, or when the queue is new.
  if created or until_ms > (tonumber(rec[11]) or 0) then
    local qx = until_ms + ${GC_SLACK_MS}
    redis.call('PEXPIREAT', KEYS[3], qx)
    redis.call('PEXPIREAT', KEYS[4], qx)
    if rec[2] then
      redis.call('HSET', KEYS[1], 'qx', qx)
      rec[11] = tostring(qx)
    end
  end
  return rank + 1
end
local exp = 0
if ARGV[3] ~= '' then exp = now + tonumber(ARGV[3]) end
if live() then
  if rec[1] ~= me then
    local reply = lease('held')
    reply[8] = queue_me()
    if reply[8] < 0 then return {'quota', now, 'waiters', ARGV[8]} end
    return reply
  end
  set_lease(exp)
  if watched then publish(ARGV[7], 'e', exp) end
  return lease('retried')
end
-- Free: first come, first served. Drop the waiters that stopped asking, then only the first live
-- waiter may take it.
-- The first two entries: the head, and whether anyone queues behind it. A record that is not
-- watched has nobody queued: whoever joins a queue marks the record (or, when there is none yet,
-- the grant to the head does), and a release clears the mark only when nobody queues.
-- At most STALE_WAITERS_PER_CALL are dropped per call; if more remain ahead, nobody can tell yet
-- who is first, so nobody gets the key: waiters look again at once, and drop the next ones.
local head = nil
local behind = false
local unsettled = false
if not (rec[2] and not watched) then
  local dropped = 0
  while true do
    local firsts = redis.call('ZRANGE', KEYS[3], 0, 1)
    local first = firsts[1]
    if not first then break end
    local until_ms = tonumber(redis.call('HGET', KEYS[4], first))
    if until_ms and until_ms > now then
      head = {first, until_ms}
      behind = firsts[2] ~= nil
      break
    end
    if dropped == ${STALE_WAITERS_PER_CALL} then
      unsettled = true
      break
    end
    redis.call('ZREM', KEYS[3], first)
    redis.call('HDEL', KEYS[4], first)
    dropped = dropped + 1
  end
end
if unsettled or (head and head[1] ~= me) then
  local position = queue_me()
  if position < 0 then return {'quota', now, 'waiters', ARGV[8]} end
  return {'queued', now, '', '', '', '', '', position, unsettled and now or head[2]}
end
if not rec[2] and not room() then return {'quota', now, 'locks', MAX_RECORDS} end
local fence = next_fence()
-- A grant to the head of the queue keeps the key watched while others wait behind it.
if head and behind then watched = true end
if watched then
  set_lease(exp, 'token', me, 'fence', fence, 'since', now, 'holder', ARGV[2], 'reason', ARGV[4], 'w', '1')
else
  set_lease(exp, 'token', me, 'fence', fence, 'since', now, 'holder', ARGV[2], 'reason', ARGV[4])
end
if head then
  redis.call('ZREM', KEYS[3], me)
  redis.call('HDEL', KEYS[4], me)
  if watched then publish(ARGV[7], 'e', exp) end
end
return {'granted', now, fence, now, exp, ARGV[2], ARGV[4]}
`,
);

/**
 * KEYS: queue, queue deadlines. ARGV: token hash, the key's event channel ('' = don't publish).
 * A cancelled waiter leaves no trace; the one after it is told to look (the key may be free).
 */
export const LEAVE = script(
  "leave",
  `
local rank = redis.call('ZRANK', KEYS[1], ARGV[1])
if not rank then return 0 end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
-- Only when the first waiter leaves does the next one become first (and may find the key free).
local next = redis.call('ZRANGE', KEYS[1], 0, 0)[1]
if rank == 0 and next and ARGV[2] ~= '' then
  local next_until = redis.call('HGET', KEYS[2], next) or '0'
  redis.call('PUBLISH', ARGV[2], 'r ' .. next .. ' ' .. next_until)
end
return 1
`,
  "",
);

/** KEYS: lock. ARGV: token hash, ttl ms, event channel ('' = don't publish). */
export const RENEW = script(
  "renew",
  `
if cred and cred ~= ARGV[1] then return {'forbidden', now} end
if not live() then return {'not_held', now} end
if rec[1] ~= ARGV[1] then return lease('held') end
local exp = now + tonumber(ARGV[2])
set_lease(exp)
if watched then publish(ARGV[3], 'e', exp) end
return lease('renewed')
`,
);

/**
 * KEYS: lock, queue, queue deadlines. ARGV: token hash ('' = an operator's forced release), registered-only ('1'),
 * event channel ('' = don't publish).
 */
export const RELEASE = script(
  "release",
  `
local force = ARGV[1] == ''
if ARGV[2] == '1' and not cred then return {'unknown', now} end
if not force and cred and cred ~= ARGV[1] then return {'forbidden', now} end
-- A retried release, within the grace period, answers as the first one did.
if not force and rec[1] == ARGV[1] and rec[2] == '-1' and now < (tonumber(rec[9]) or 0) + ${RELEASED_GRACE_MS} then
  return {'released', now}
end
if not live() then return {'not_held', now} end
if not force and rec[1] ~= ARGV[1] then return lease('held') end
-- A forced release forgets the token: its holder's own release must say it lost the lease.
local token = rec[1]
if force then token = '' end
if not watched then
  set_lease(-1, 'rel', now, 'token', token)
  return {'released', now}
end
-- Wake the first waiter only (the others learn the new holder's expiry when it takes the lock),
-- and say until when it keeps its place, so that the others look again then if it never comes.
local next = redis.call('ZRANGE', KEYS[2], 0, 0)[1]
local next_until = '0'
if next then next_until = redis.call('HGET', KEYS[3], next) or '0' else next = '-' end
-- With nobody queued, this release is the last thing watchers wait for.
local still = '1'
if next == '-' then still = '' end
set_lease(-1, 'rel', now, 'token', token, 'w', still)
publish(ARGV[3], 'r', next .. ' ' .. next_until)
return {'released', now}
`,
);

/**
 * KEYS: lock, queue. For a caller that waits for the key to be free: marks the key watched, so
 * that its release is published. (A plain status is a pipelined read: redis.ts, inspect.)
 */
export const INSPECT = script(
  "inspect",
  `
local registered = ''
if cred then registered = '1' end
local waiting = redis.call('ZCARD', KEYS[2])
if not live() then return {'free', now, '', '', '', '', '', registered, waiting} end
if not watched then redis.call('HSET', KEYS[1], 'w', '1') end
local reply = lease('held')
reply[8] = registered
reply[9] = waiting
return reply
`,
);

/**
 * KEYS: lock, fencing counter, index. ARGV: credential hash, lock ('1'), ttl ms ('' = none), holder,
 * and the index tail.
 */
export const REGISTER = script(
  "register",
  `
-- every write sets exp, so a record without it does not exist
if rec[2] then return {'exists', now} end
if not room() then return {'quota', now, 'locks', MAX_RECORDS} end
cred = ARGV[1]
if ARGV[2] ~= '1' then
  set_lease(-1, 'cred', cred, 'since', now)
  return {'created', now}
end
local exp = 0
if ARGV[3] ~= '' then exp = now + tonumber(ARGV[3]) end
local fence = next_fence()
set_lease(exp, 'cred', cred, 'token', cred, 'fence', fence, 'since', now, 'holder', ARGV[4], 'reason', '')
return {'created', now, fence, now, exp, ARGV[4], ''}
`,
);
