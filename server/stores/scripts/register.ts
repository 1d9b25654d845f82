/**
 * Create a /locks lock: a key whose record holds its credential (the sha256 of its key k), locked
 * at once when asked. Reply: created (with its lease when locked; for a retried create of this
 * very lock, as it is now), exists (another lock has this id), quota.
 */
import type { RegisterOutcome } from "../types.js";
import { at, leaseOf, quotaOf } from "./codec.js";
import { defineScript } from "./define.js";

export const REGISTER = defineScript({
  name: "register",
  writes: true,
  keys: ["lock", "fence", "history"] as const,
  /** credential: its hash; lock: '1' to take it; ttlMs: '' for none; name: the key in the namespace. */
  args: ["credential", "lock", "ttlMs", "holder", "name", "actorId", "actorName"] as const,
  body: `
local r = load(K.lock)
-- Every write sets exp, so a record without it does not exist. One with this credential is this
-- very lock: a retried create (its answer was lost) gets it back, as it is now.
if r.exp and r.cred == A.credential then
  if live(r) then return reply('created', lease_of(r)) end
  return reply('created')
end
if r.exp then return reply('exists') end
if not room() then return reply('quota', nil, {quota = 'locks', max = MAX_RECORDS}) end
redis.call('ZADD', K.names, 0, A.name)
r.cred = A.credential
if A.lock ~= '1' then
  set_lease(r, -1, 'cred', r.cred, 'since', now)
  return reply('created')
end
local exp = 0
if A.ttlMs ~= '' then exp = now + tonumber(A.ttlMs) end
local fence = next_fence(K.fence)
local hx = history_expiry(r)
r.hx_set = hx
set_lease(r, exp, 'cred', r.cred, 'token', r.cred, 'fence', fence, 'since', now, 'hx', hx, 'holder', A.holder, 'reason', '')
local l = {fence, now, exp, A.holder, '', 'x'}
note(K.history, r, 'granted', now, l, nil, {A.actorId, A.actorName})
return reply('created', l)
`,
  decode(r): RegisterOutcome {
    if (r.outcome === "exists") return { ...at(r), outcome: "exists" };
    if (r.outcome === "quota") return { ...at(r), ...quotaOf(r) };
    return { ...at(r), outcome: "created", lease: r.fence === undefined ? null : leaseOf(r) };
  },
});
