/**
 * A key's history, newest first, with the leases that ran out and are not written yet (they are
 * when the key is next granted) read from the record. Reply: its events, each "kind<US>at<US>
 * holder<US>reason<US>mode<US>fence<US>held ms<US>actor id<US>actor name<US>superseded by".
 */
import { HISTORY_EVENTS } from "../../../src/protocol/lease.js";
import { UNIT_SEPARATOR } from "../record.js";
import type { HistoryEntry, HistoryKind } from "../types.js";
import { at, text } from "./codec.js";
import { defineScript } from "./define.js";

const HISTORY_KINDS = new Set<string>(HISTORY_EVENTS);

/** An event as the scripts write it: kind, at, holder, reason, mode, fence, held, actor id and name. */
function historyEntry(raw: string): HistoryEntry | null {
  const [kind = "", at, holder, reason, mode, fence, held, actorId, actorName, by] =
    raw.split(UNIT_SEPARATOR);
  if (!HISTORY_KINDS.has(kind)) return null;
  return {
    kind: kind as HistoryKind,
    at: Number(at),
    holderId: text(holder),
    reason: text(reason),
    mode: mode === "s" ? "shared" : mode === "x" ? "exclusive" : null,
    fencingToken: fence ? Number(fence) : null,
    heldMs: held ? Number(held) : null,
    actor: actorId ? { id: actorId, name: text(actorName) } : null,
    ...(kind === "superseded" ? { supersededBy: text(by) } : {}),
  };
}

export const HISTORY = defineScript({
  name: "history",
  keys: ["history", "lock", "holders"] as const,
  args: [] as const,
  lists: ["event"],
  body: `
local events = {}
local r = load(K.lock)
local lapsed = {}
local exp = tonumber(r.exp) or -1
if r.token and r.token ~= '' and exp > 0 and exp <= now then
  lapsed[#lapsed + 1] = {at = exp, lease = lease_of(r), since = tonumber(r.since)}
end
local alive, ended = sharers(r, K.holders)
if #ended == 0 and #alive == 0 then ended = lapsed_sharers(r, K.holders) end
for _, h in ipairs(ended) do
  if h.exp and h.exp > 0 then lapsed[#lapsed + 1] = {at = h.exp, lease = shared_lease(h), since = tonumber(h.since)} end
end
table.sort(lapsed, function(a, b) return a.at > b.at end)
for _, e in ipairs(lapsed) do
  local l = e.lease
  events[#events + 1] = table.concat({'expired', e.at, l[4] or '', l[5] or '', l[6], l[1], e.at - (e.since or e.at), '', ''}, US)
end
for _, v in ipairs(redis.call('LRANGE', K.history, 0, HMAX - 1)) do events[#events + 1] = v end
return reply('ok', nil, {}, {event = events})
`,
  decode: (r) => ({
    ...at(r),
    entries: (r.event as Array<string | number>)
      .map((raw) => historyEntry(String(raw)))
      .filter((e): e is HistoryEntry => e !== null),
  }),
});
