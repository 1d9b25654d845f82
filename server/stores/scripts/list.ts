/**
 * One page of a namespace's keys in order (its names: a sorted set of equal scores, read in
 * lexical order), with each key's state. Names whose record Redis dropped are forgotten on the
 * way. Reply: more ('1'), the last name looked at, and per key a row "name<US>registered ('1')<US>
 * waiting<US>holders<US>" and a lease (fence, since, exp, holder, reason, mode; empty when free).
 */
import { UNIT_SEPARATOR } from "../record.js";
import type { KeySummary } from "../types.js";
import { at, leaseOf, num, text } from "./codec.js";
import { defineScript } from "./define.js";

export const LIST = defineScript({
  name: "list",
  keys: [] as const,
  /** listPrefix: what the keys start with; after: '' for the first; limit: how many. */
  args: ["listPrefix", "after", "limit"] as const,
  lists: ["row"],
  body: `
local prefix, after, limit = A.listPrefix, A.after, tonumber(A.limit)
-- From the prefix on, and no further than its names: a name that does not start with it ends the
-- page (no upper bound is written, which would need a byte that is no UTF-8).
local min = '-'
if prefix ~= '' then min = '[' .. prefix end
if after ~= '' and after >= prefix then min = '(' .. after end
local names = {}
for _, name in ipairs(redis.call('ZRANGEBYLEX', K.names, min, '+', 'LIMIT', 0, limit + 1)) do
  if string.sub(name, 1, #prefix) ~= prefix then break end
  names[#names + 1] = name
end
local more = ''
if #names > limit then more = '1' end
local last = ''
local rows, gone = {}, {}
for i = 1, math.min(#names, limit) do
  local name = names[i]
  last = name
  local r = load(key_of('lock', name))
  if not r.exp then
    gone[#gone + 1] = name
  else
    local registered = ''
    if r.cred then registered = '1' end
    local waiting = redis.call('ZCARD', key_of('queue', name))
    local l, holders = nil, 0
    if live(r) then
      l, holders = lease_of(r), 1
    else
      local alive = sharers(r, key_of('holders', name))
      if #alive > 0 then l, holders = shared_lease(pick(alive, 'last')), #alive end
    end
    local row = {name, registered, waiting, holders}
    for j = 1, 6 do row[#row + 1] = l and l[j] or '' end
    rows[#rows + 1] = table.concat(row, US)
  end
end
chunked('ZREM', K.names, gone)
return reply('ok', nil, {more = more, last = last}, {row = rows})
`,
  decode(r) {
    const keys: KeySummary[] = (r.row as Array<string | number>).map((raw) => {
      const [key = "", registered, waiting, holders, fence, since, exp, holder, reason, mode] =
        String(raw).split(UNIT_SEPARATOR);
      const lease = fence ? leaseOf({ fence, since, exp, holder, reason, mode }) : null;
      return { key, registered: registered === "1", waiting: num(waiting), holders: num(holders), lease };
    });
    return { ...at(r), keys, more: r.more === "1", last: text(r.last) };
  },
});
