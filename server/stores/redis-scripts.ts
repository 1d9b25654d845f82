/**
 * Every lock operation as one Lua script: one round trip, decided atomically by Redis against its
 * own clock (TIME), never the web server's. The memory store (memory.ts) implements the same
 * operations; the contract suite keeps them equal.
 *
 * One Redis hash per key: token (sha256 of the lease token), exp (ms; 0 = no expiry, -1 = released),
 * fence, since, holder, reason, cred (registered locks of the /locks API only).
 * Unregistered keys carry a Redis expiry at `exp`, so expired leases clean themselves up; registered
 * keys persist and are judged by `exp`. Fencing tokens come from one counter that never goes back,
 * and is at least Redis's clock in ms, so it keeps increasing even after Redis lost its data.
 *
 * Every reply is a flat array: outcome, now, then for a lease fence, since, exp, holder, reason, and
 * then for ACQUIRE the caller's queue position (and for 'queued' when to look again), for INSPECT
 * whether the key is registered and how many wait.
 *
 * Waiters queue per key, first come first served: a sorted set of token hashes by arrival, and a
 * hash of the time each keeps its place until (its wait window plus a grace period). A free key
 * goes to the first waiter that still asks; waiters that stopped asking are dropped on the way.
 * Releases and expiry changes are PUBLISHed so that waiting requests need not ask Redis again.
 */
import { sha1Hex } from "../crypto.js";
import { QUEUE_GRACE_MS, RELEASED_GRACE_MS } from "./types.js";

export interface LuaScript {
  name: string;
  source: string;
  sha1: string;
}

const FIELDS = "'token', 'exp', 'fence', 'since', 'holder', 'reason', 'cred'";

const PRELUDE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rec = redis.call('HMGET', KEYS[1], ${FIELDS})
local cred = rec[7]
local function live()
  local exp = tonumber(rec[2])
  return rec[1] and exp and (exp == 0 or exp > now)
end
local function lease(outcome)
  return {outcome, now, rec[3], rec[4], rec[2], rec[5] or '', rec[6] or ''}
end
-- Fencing tokens never go back, even if Redis lost the counter: a token is at least the clock in ms.
local function next_fence()
  local fence = math.max((tonumber(redis.call('GET', KEYS[2])) or 0) + 1, now)
  redis.call('SET', KEYS[2], string.format('%d', fence))
  return fence
end
local function expire_at(exp)
  if cred then return end
  if exp > 0 then redis.call('PEXPIREAT', KEYS[1], exp) else redis.call('PERSIST', KEYS[1]) end
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
 * KEYS: lock, fencing counter, queue (sorted set), queue deadlines (hash), queue sequence.
 * ARGV: token hash, holder, ttl ms ('' = none), reason, registered-only ('1'),
 *       queue window ms ('' = don't queue), event channel ('' = don't publish).
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
  if not rank then
    redis.call('ZADD', KEYS[3], redis.call('INCR', KEYS[5]), me)
    rank = redis.call('ZCARD', KEYS[3]) - 1
  end
  redis.call('HSET', KEYS[4], me, now + tonumber(ARGV[6]) + ${QUEUE_GRACE_MS})
  return rank + 1
end
local exp = 0
if ARGV[3] ~= '' then exp = now + tonumber(ARGV[3]) end
if live() then
  if rec[1] ~= me then
    local reply = lease('held')
    reply[8] = queue_me()
    return reply
  end
  redis.call('HSET', KEYS[1], 'exp', exp)
  expire_at(exp)
  rec[2] = tostring(exp)
  publish(ARGV[7], 'e', exp)
  return lease('retried')
end
-- Free: first come, first served. Drop the waiters that stopped asking, then only the first live
-- waiter may take it.
local head = nil
for _ = 1, 32 do
  local first = redis.call('ZRANGE', KEYS[3], 0, 0)[1]
  if not first then break end
  local until_ms = tonumber(redis.call('HGET', KEYS[4], first))
  if until_ms and until_ms > now then
    head = {first, until_ms}
    break
  end
  redis.call('ZREM', KEYS[3], first)
  redis.call('HDEL', KEYS[4], first)
end
if head and head[1] ~= me then return {'queued', now, '', '', '', '', '', queue_me(), head[2]} end
local fence = next_fence()
redis.call('HSET', KEYS[1], 'token', me, 'exp', exp, 'fence', fence, 'since', now, 'holder', ARGV[2], 'reason', ARGV[4])
expire_at(exp)
if head then
  redis.call('ZREM', KEYS[3], me)
  redis.call('HDEL', KEYS[4], me)
  publish(ARGV[7], 'e', exp)
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
redis.call('HSET', KEYS[1], 'exp', exp)
expire_at(exp)
rec[2] = tostring(exp)
publish(ARGV[3], 'e', exp)
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
if not force and rec[1] == ARGV[1] and rec[2] == '-1' then return {'released', now} end
if not live() then return {'not_held', now} end
if not force and rec[1] ~= ARGV[1] then return lease('held') end
redis.call('HSET', KEYS[1], 'exp', -1)
-- A forced release forgets the token: its holder's own release must say it lost the lease.
if force then redis.call('HDEL', KEYS[1], 'token') end
if not cred then redis.call('PEXPIRE', KEYS[1], ${RELEASED_GRACE_MS}) end
-- Wake the first waiter only (the others learn the new holder's expiry when it takes the lock),
-- and say until when it keeps its place, so that the others look again then if it never comes.
if ARGV[3] ~= '' then
  local next = redis.call('ZRANGE', KEYS[2], 0, 0)[1]
  local next_until = '0'
  if next then next_until = redis.call('HGET', KEYS[3], next) or '0' else next = '-' end
  publish(ARGV[3], 'r', next .. ' ' .. next_until)
end
return {'released', now}
`,
);

/** KEYS: lock, queue. Read-only. */
export const INSPECT = script(
  "inspect",
  `
local registered = ''
if cred then registered = '1' end
local waiting = redis.call('ZCARD', KEYS[2])
if not live() then return {'free', now, '', '', '', '', '', registered, waiting} end
local reply = lease('held')
reply[8] = registered
reply[9] = waiting
return reply
`,
);

/** KEYS: lock, fencing counter. ARGV: credential hash, lock ('1'), ttl ms ('' = none), holder. */
export const REGISTER = script(
  "register",
  `
-- every write sets exp, so a record without it does not exist
if rec[2] then return {'exists', now} end
if ARGV[2] ~= '1' then
  redis.call('HSET', KEYS[1], 'cred', ARGV[1], 'exp', -1, 'since', now)
  return {'created', now}
end
local exp = 0
if ARGV[3] ~= '' then exp = now + tonumber(ARGV[3]) end
local fence = next_fence()
redis.call('HSET', KEYS[1], 'cred', ARGV[1], 'token', ARGV[1], 'exp', exp, 'fence', fence, 'since', now, 'holder', ARGV[4], 'reason', '')
return {'created', now, fence, now, exp, ARGV[4], ''}
`,
);
