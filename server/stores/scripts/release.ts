/**
 * Release a lease with its token, or (token '') an operator's forced release of every holder.
 * Reply: released (again: a retried release; expired: shared leases found ended), held (by
 * another token), not_held, forbidden (a /locks lock, not its key), unknown (no /locks lock).
 */
import type { ReleaseOutcome } from "../types.js";
import { RELEASED_GRACE_MS } from "../types.js";
import { at, leaseOf, num } from "./codec.js";
import { defineScript } from "./define.js";

export const RELEASE = defineScript({
  name: "release",
  writes: true,
  keys: ["lock", "queue", "queueUntil", "holders", "history"] as const,
  /** token: its hash, '' to force; registeredOnly: '1' for the /locks API; channel: '' = don't publish. */
  args: ["token", "registeredOnly", "channel", "actorId", "actorName"] as const,
  body: `
local r = load(K.lock)
local HK, H = K.holders, K.history
local actor = {A.actorId, A.actorName}
local function release()
local me = A.token
local force = me == ''
local watched = r.w == '1'
if A.registeredOnly == '1' and not r.cred then return reply('unknown') end
if not force and r.cred and r.cred ~= me then return reply('forbidden') end
-- A retried release, within the grace period, answers as the first one did.
if not force and r.token == me and r.exp == '-1' and now < (tonumber(r.rel) or 0) + ${RELEASED_GRACE_MS} then
  return reply('released', nil, {again = 1})
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
    if p[1] == '-1' and now < (tonumber(p[6]) or 0) + ${RELEASED_GRACE_MS} then return reply('released', nil, {again = 1}) end
  end
  if #alive > 0 then return reply('held', shared_lease(pick(alive, 'last'))) end
  return reply('not_held')
end
if not force and not mine and r.token ~= me then
  return reply('held', lease_of(r))
end
if not excl and #alive == 0 then return reply('not_held') end
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
-- The lease that ended (of several forced at once, the last), for the answer.
local ended_lease = nil
if excl and (force or r.token == me) then
  ended_lease = lease_of(r)
  note(H, r, kind, now, ended_lease, now - tonumber(r.since), actor)
end
for _, h in ipairs(alive) do
  if force or h == mine then
    ended_lease = shared_lease(h)
    note(H, r, kind, now, ended_lease, now - tonumber(h.since), actor)
  end
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
  next = redis.call('ZRANGE', K.queue, 0, 0)[1] or '-'
  if next ~= '-' then next_until = redis.call('HGET', K.queueUntil, next) or '0' end
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
if watched then publish(A.channel, 'r', next .. ' ' .. next_until) end
-- Nobody holds it now: into the namespace's ended set.
if others == 0 then released(r) end
return reply('released', ended_lease, {expired = #lapsed})
end

return release()
`,
  decode(r): ReleaseOutcome {
    switch (r.outcome) {
      case "released":
        return {
          ...at(r),
          outcome: "released",
          again: num(r.again) === 1,
          expired: num(r.expired),
          ...(r.fence !== undefined ? { lease: leaseOf(r) } : {}),
        };
      case "held":
        return { ...at(r), outcome: "held", lease: leaseOf(r) };
      case "forbidden":
      case "unknown":
        return { ...at(r), outcome: r.outcome };
      default:
        return { ...at(r), outcome: "not_held" };
    }
  },
});
