/**
 * For a caller that waits for the key to be free: the key's state, and it marks the key watched,
 * so that its release is published. (A plain status is a pipelined read: redis/status.ts.) Reply: held
 * (a holder's lease: the one ending last) or free; registered ('1': a /locks lock); waiting.
 */
import type { InspectOutcome } from "../types.js";
import { at, leaseOf, num } from "./codec.js";
import { defineScript } from "./define.js";

export const INSPECT = defineScript({
  name: "inspect",
  keys: ["lock", "queue", "holders"] as const,
  args: [] as const,
  body: `
local r = load(K.lock)
local registered = ''
if r.cred then registered = '1' end
local waiting = redis.call('ZCARD', K.queue)
local held = nil
if live(r) then
  held = lease_of(r)
else
  local alive = sharers(r, K.holders)
  if #alive > 0 then held = shared_lease(pick(alive, 'last')) end
end
if not held then return reply('free', nil, {registered = registered, waiting = waiting}) end
if r.w ~= '1' then set(r, 'w', '1') end
return reply('held', held, {registered = registered, waiting = waiting})
`,
  decode(r): InspectOutcome {
    const lease = r.outcome === "held" ? leaseOf(r) : null;
    return {
      ...at(r),
      lease,
      holders: lease ? [lease] : [],
      limit: null,
      registered: r.registered === "1",
      waiting: num(r.waiting),
      queue: [],
    };
  },
});
