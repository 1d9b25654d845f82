/**
 * The plain reads that spare a script: a key's status (TIME, GET of its record and ZCARD of its
 * queue, pipelined; its first waiters and shared holders in a second pipeline only when there are
 * any, and what each of those waiters joined with in a third read) and a peek (one GET). Judged here by the scripts' rule of a live lease, against Redis's TIME
 * read first: a lease that ends between TIME and the reads reads as held a moment longer.
 */
import { UNIT_SEPARATOR, unpackRecord } from "../record.js";
import type { InspectOutcome, Lease, LockRef, QueuedWaiter } from "../types.js";
import type { RedisKeys } from "./keys.js";
import type { RedisTransport } from "./transport.js";

/** How many waiters a status lists (it counts them all). */
const LISTED_WAITERS = 20;

const lastToEnd = (holders: Lease[]): Lease | null =>
  holders.reduce<Lease | null>(
    (a, b) => (!a || (b.expiresAt ?? Infinity) > (a.expiresAt ?? Infinity) ? b : a),
    null,
  );

const text = (v: string | null | undefined) => (v == null || v === "" ? null : v);

/** The exclusive lease of a record, when it is live by `now`. */
function exclusiveLease(record: ReturnType<typeof unpackRecord>, now: number): Lease | null {
  const exp = Number(record.exp);
  if (!record.token || record.exp == null || (exp !== 0 && exp <= now)) return null;
  return {
    mode: "exclusive",
    holderId: text(record.holder),
    reason: text(record.reason),
    fencingToken: Number(record.fence ?? 0),
    acquiredAt: Number(record.since ?? 0),
    expiresAt: exp === 0 ? null : exp,
  };
}

/** The live shared holders from their hash (field: token hash; value: exp, fence, since, holder, reason). */
function sharedHolders(flat: string[], now: number): Lease[] {
  const holders: Lease[] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) {
    const [exp, fence, since, holder, reason] = String(flat[i + 1]).split(UNIT_SEPARATOR);
    if (Number(exp) > now) {
      holders.push({
        mode: "shared",
        holderId: text(holder),
        reason: text(reason),
        fencingToken: Number(fence ?? 0),
        acquiredAt: Number(since ?? 0),
        expiresAt: Number(exp),
      });
    }
  }
  return holders.sort((a, b) => a.acquiredAt - b.acquiredAt);
}

/**
 * What the queue's hash says of its first waiters ("i:<member>": priority, group, holder, since,
 * written as each joined): a third read, only when someone waits.
 */
async function queuedWaiters(transport: RedisTransport, queueUntil: string, members: string[]) {
  const info = await transport.hmget(
    queueUntil,
    members.map((m) => `i:${m}`),
  );
  return members.map((m, i): QueuedWaiter => {
    const [priority, group, holder, since] = info[i]?.split(UNIT_SEPARATOR) ?? [];
    return {
      mode: m.startsWith("s:") ? "shared" : "exclusive",
      holderId: text(holder),
      priority: priority ? Number(priority) : null,
      group: text(group),
      since: since ? Number(since) : null,
    };
  });
}

/** `waiting: false`: the caller does not need the queue (one command less). */
export async function readStatus(
  transport: RedisTransport,
  keys: RedisKeys,
  ref: LockRef,
  full: boolean,
): Promise<InspectOutcome> {
  const snap = await transport.snapshot(keys.lock(ref), full ? keys.queue(ref) : null);
  const now = Number(snap.time[0]) * 1000 + Math.floor(Number(snap.time[1]) / 1000);
  const record = unpackRecord(snap.record);
  const exclusive = exclusiveLease(record, now);
  const waiting = Number(snap.waiting) || 0;
  // Only a queue or live shared holders cost a second read (a lease that is neither needs none).
  const sharedLive = full && !exclusive && Number(record.sh) > now;
  const listed =
    waiting > 0 || sharedLive
      ? await transport.listing(
          waiting > 0 ? { key: keys.queue(ref), head: LISTED_WAITERS } : null,
          sharedLive ? keys.holders(ref) : null,
        )
      : { queueHead: [], holders: [] };
  const shared = sharedLive ? sharedHolders(listed.holders, now) : [];
  const queue =
    listed.queueHead.length > 0 ? await queuedWaiters(transport, keys.queueUntil(ref), listed.queueHead) : [];
  return {
    now,
    lease: exclusive ?? lastToEnd(shared),
    holders: exclusive ? [exclusive] : shared,
    limit: shared.length > 0 ? Number(record.lim) || null : null,
    registered: record.cred != null,
    waiting,
    queue,
  };
}

/** The exclusive lease's exp, and while shared holders hold it, how late their leases run. */
export async function peekRecord(transport: RedisTransport, keys: RedisKeys, ref: LockRef) {
  const { exp, sh } = unpackRecord(await transport.get(keys.lock(ref)));
  return Number(sh) > 0 ? `${exp}|${sh}` : exp;
}
