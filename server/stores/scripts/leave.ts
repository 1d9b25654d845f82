/**
 * A cancelled waiter leaves the key's queue (in whichever mode it waited), with a queue timeout in
 * the key's history; the one after it is told to look (the key may be free). Nothing happens when
 * it is not queued. Reply: left or not_queued.
 */
import { at } from "./codec.js";
import { defineScript } from "./define.js";

export const LEAVE = defineScript({
  name: "leave",
  writes: true,
  keys: ["queue", "queueUntil", "history"] as const,
  /** token: its hash; channel: the key's ('' = don't publish); holder and actor: for the history. */
  args: ["token", "channel", "holder", "actorId", "actorName"] as const,
  body: `
for _, mode in ipairs({'x', 's'}) do
  local member = mode .. ':' .. A.token
  local rank = redis.call('ZRANK', K.queue, member)
  if rank then
    note(K.history, nil, 'queue_timeout', now, {'', '', '', A.holder, '', mode}, nil, {A.actorId, A.actorName})
    unqueue(K.queue, K.queueUntil, {member})
    -- Only when the first waiter leaves does the next one become first (and may find the key free).
    local next = redis.call('ZRANGE', K.queue, 0, 0)[1]
    if rank == 0 and next then
      publish(A.channel, 'r', next .. ' ' .. (redis.call('HGET', K.queueUntil, next) or '0'))
    end
    return reply('left')
  end
end
return reply('not_queued')
`,
  decode: (r) => ({ ...at(r), left: r.outcome === "left" }),
});
