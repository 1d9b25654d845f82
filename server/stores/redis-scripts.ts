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
 * for INSPECT whether the key is registered.
 */
import { createHash } from "node:crypto";
import { RELEASED_GRACE_MS } from "./types.js";

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
`;

const script = (name: string, body: string): LuaScript => {
  const source = `${PRELUDE}\n${body.trim()}\n`;
  return { name, source, sha1: createHash("sha1").update(source).digest("hex") };
};

/** KEYS: lock, fencing counter. ARGV: token hash, holder, ttl ms ('' = none), reason, registered-only ('1'). */
export const ACQUIRE = script(
  "acquire",
  `
if ARGV[5] == '1' and not cred then return {'unknown', now} end
if cred and cred ~= ARGV[1] then return {'forbidden', now} end
local exp = 0
if ARGV[3] ~= '' then exp = now + tonumber(ARGV[3]) end
if live() then
  if rec[1] ~= ARGV[1] then return lease('held') end
  redis.call('HSET', KEYS[1], 'exp', exp)
  expire_at(exp)
  rec[2] = tostring(exp)
  return lease('retried')
end
local fence = next_fence()
redis.call('HSET', KEYS[1], 'token', ARGV[1], 'exp', exp, 'fence', fence, 'since', now, 'holder', ARGV[2], 'reason', ARGV[4])
expire_at(exp)
return {'granted', now, fence, now, exp, ARGV[2], ARGV[4]}
`,
);

/** KEYS: lock. ARGV: token hash, ttl ms. */
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
return lease('renewed')
`,
);

/** KEYS: lock. ARGV: token hash ('' = an operator's forced release), registered-only ('1'). */
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
return {'released', now}
`,
);

/** KEYS: lock. Read-only. */
export const INSPECT = script(
  "inspect",
  `
local registered = ''
if cred then registered = '1' end
if not live() then return {'free', now, '', '', '', '', '', registered} end
local reply = lease('held')
reply[8] = registered
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
