/**
 * Extend a held lease (exclusive or shared) to ttl from now. Reply: renewed (the lease), held (by
 * another token: the lease that ends last), not_held, forbidden (a /locks lock, not its key).
 */
import type { RenewOutcome } from "../types.js";
import { at, leaseOf } from "./codec.js";
import { defineScript } from "./define.js";

export const RENEW = defineScript({
  name: "renew",
  writes: true,
  keys: ["lock", "holders"] as const,
  /** token: its hash; channel: the key's ('' = don't publish). */
  args: ["token", "ttlMs", "channel"] as const,
  body: `
local r = load(K.lock)
local me = A.token
local watched = r.w == '1'
if r.cred and r.cred ~= me then return reply('forbidden') end
local exp = now + tonumber(A.ttlMs)
if live(r) then
  if r.token ~= me then return reply('held', lease_of(r)) end
  set_lease(r, exp)
  if watched then publish(A.channel, 'e', exp) end
  return reply('renewed', lease_of(r))
end
local alive = sharers(r, K.holders)
for _, h in ipairs(alive) do
  if h.th == me then
    h.exp = exp
    set_shared(r, K.holders, me, table.concat({exp, h.fence, h.since, h.holder, h.reason}, US), exp, false)
    if watched then publish(A.channel, 'e', exp) end
    return reply('renewed', shared_lease(h))
  end
end
if #alive > 0 then return reply('held', shared_lease(pick(alive, 'last'))) end
return reply('not_held')
`,
  decode(r): RenewOutcome {
    if (r.outcome === "renewed" || r.outcome === "held")
      return { ...at(r), outcome: r.outcome, lease: leaseOf(r) };
    return { ...at(r), outcome: r.outcome === "forbidden" ? "forbidden" : "not_held" };
  },
});
