/**
 * In-process store for trying LSS out: the same operations as the Redis scripts (redis-scripts.ts),
 * kept equal by the contract suite. Nothing survives a restart.
 */

import { createEventHub } from "./events.js";
import {
  type AcquireOutcome,
  type AcquireParams,
  DEFAULT_LIMITS,
  GC_SLACK_MS,
  type InspectOutcome,
  type Lease,
  type LockRef,
  type LockStore,
  QUEUE_GRACE_MS,
  RELEASED_GRACE_MS,
  type RegisterOutcome,
  type RegisterParams,
  type ReleaseOutcome,
  type RenewOutcome,
  STALE_WAITERS_PER_CALL,
  type StoreLimits,
  type TokenRecord,
  type TokenStore,
} from "./types.js";

/** Mirrors the Redis hash of one key. `exp`: 0 = no expiry, -1 = released, else ms. */
interface LockRecord {
  token: string | null;
  exp: number;
  fence: number;
  since: number;
  holder: string | null;
  reason: string | null;
  cred: string | null;
  /** When the record disappears (Redis: its key's PEXPIREAT; Infinity: never). */
  gc: number;
  /** When it was released (a retried release within RELEASED_GRACE_MS answers "released"). */
  rel: number | null;
}

/** The record if it holds a lease now, else null. */
const live = (rec: LockRecord | undefined, now: number): LockRecord | null =>
  rec?.token != null && (rec.exp === 0 || rec.exp > now) ? rec : null;

const leaseOf = (rec: LockRecord): Lease => ({
  holderId: rec.holder,
  reason: rec.reason,
  fencingToken: rec.fence,
  acquiredAt: rec.since,
  expiresAt: rec.exp === 0 ? null : rec.exp,
});

export function createMemoryStore(opts: { clock?: () => number; limits?: StoreLimits } = {}): LockStore {
  const clock = opts.clock ?? Date.now;
  const limits = opts.limits ?? DEFAULT_LIMITS;
  const records = new Map<string, LockRecord>();
  /** Per namespace, its records by when they disappear: the Redis index (redis-scripts.ts). */
  const indexes = new Map<string, Map<string, number>>();
  const indexOf = (namespace: string) => {
    const index = indexes.get(namespace) ?? new Map<string, number>();
    indexes.set(namespace, index);
    return index;
  };
  /** Room for one more record in the namespace? Records already gone are forgotten first. */
  const room = (namespace: string, now: number) => {
    const index = indexOf(namespace);
    if (index.size < limits.locksPerNamespace) return true;
    for (const [member, until] of index) if (until <= now) index.delete(member);
    return index.size < limits.locksPerNamespace;
  };
  let fencingCounter = 0;
  /** As in Redis: a new counter starts at the clock in microseconds, above an old process's tokens. */
  const nextFence = (now: number) => {
    fencingCounter = fencingCounter === 0 ? now * 1000 : fencingCounter + 1;
    return fencingCounter;
  };
  const tokenRecords = new Map<string, TokenRecord>();

  const id = (ref: LockRef) => `${ref.namespace}\u0000${ref.key}`;

  /** Reads a record as Redis would: a record past its drop time no longer exists. */
  const read = (ref: LockRef, now: number): LockRecord | undefined => {
    const rec = records.get(id(ref));
    if (rec && rec.gc <= now) {
      records.delete(id(ref));
      return undefined;
    }
    return rec;
  };

  /**
   * Set a lease's end and keep the record beyond it, as the scripts' plan_gc: a lease's record
   * outlives the lease by GC_SLACK_MS, a /locks lock its last write by lockRetentionMs (moved at
   * most every 30th of it); the drop time moves only when outgrown.
   */
  const setExpiry = (ref: LockRef, rec: LockRecord, exp: number, now: number) => {
    rec.exp = exp;
    let gc = Number.POSITIVE_INFINITY;
    if (exp !== 0) {
      const [need, slack] = rec.cred
        ? [Math.max(exp, now + limits.lockRetentionMs), Math.floor(limits.lockRetentionMs / 30)]
        : [exp, GC_SLACK_MS];
      gc = rec.gc >= need && Number.isFinite(rec.gc) ? rec.gc : need + slack;
    }
    if (gc !== rec.gc) {
      rec.gc = gc;
      indexOf(ref.namespace).set(ref.key, gc);
    }
  };

  /** Expired records of keys never touched again would pile up; sweep them now and then. */
  let writes = 0;
  const sweep = (now: number) => {
    if (++writes % 1024 !== 0) return;
    for (const [k, rec] of records) if (rec.gc <= now) records.delete(k);
    // Queues of keys nobody asks for again: their waiters stopped asking long ago.
    for (const [k, queue] of queues) {
      const kept = queue.filter((w) => w.until + GC_SLACK_MS > now);
      if (kept.length === 0) queues.delete(k);
      else if (kept.length < queue.length) queues.set(k, kept);
    }
  };

  const tokens: TokenStore = {
    async put(record) {
      tokenRecords.set(record.id, { ...record });
    },
    async get(tokenId) {
      const rec = tokenRecords.get(tokenId);
      return rec ? { ...rec } : null;
    },
    async list() {
      return [...tokenRecords.values()].map((r) => ({ ...r }));
    },
    async delete(tokenId) {
      return tokenRecords.delete(tokenId);
    },
  };

  /** Per key, waiters in arrival order, each with the time it keeps its place until. */
  const queues = new Map<string, Array<{ token: string; until: number }>>();
  const hub = createEventHub(id);
  const expiryChanged = (ref: LockRef, exp: number) =>
    hub.emit(id(ref), { kind: "expiry", expiresAt: exp || null });

  /** Join the key's queue or keep one's place; the 1-based position (0: not queuing, -1: full). */
  const queueMe = (ref: LockRef, token: string, windowMs: number | null, now: number) => {
    if (windowMs == null) return 0;
    const queue = queues.get(id(ref)) ?? [];
    let index = queue.findIndex((w) => w.token === token);
    if (index < 0) {
      if (queue.length >= limits.waitersPerKey) return -1;
      index = queue.push({ token, until: 0 }) - 1;
    }
    queues.set(id(ref), queue);
    (queue[index] as { until: number }).until = now + windowMs + QUEUE_GRACE_MS;
    return index + 1;
  };
  const leaveQueue = (ref: LockRef, token: string) => {
    const queue = queues.get(id(ref));
    if (!queue) return;
    const index = queue.findIndex((w) => w.token === token);
    if (index >= 0) queue.splice(index, 1);
    if (queue.length === 0) queues.delete(id(ref));
  };
  /**
   * The first waiter that still asks, dropping at most STALE_WAITERS_PER_CALL that stopped (as the
   * Redis script does); "unsettled" when more of them remain ahead.
   */
  const headOf = (ref: LockRef, now: number) => {
    const queue = queues.get(id(ref));
    for (let dropped = 0; queue?.length && (queue[0] as { until: number }).until <= now; dropped++) {
      if (dropped === STALE_WAITERS_PER_CALL) return "unsettled" as const;
      queue.shift();
    }
    if (queue?.length === 0) queues.delete(id(ref));
    return queue?.[0];
  };

  return {
    kind: "memory",
    tokens,
    events: hub,

    async acquire(ref, p: AcquireParams): Promise<AcquireOutcome> {
      const now = clock();
      const rec = read(ref, now);
      if (p.registeredOnly && rec?.cred == null) return { outcome: "unknown", now };
      if (rec?.cred != null && rec.cred !== p.tokenHash) return { outcome: "forbidden", now };
      const exp = p.ttlMs == null ? 0 : now + p.ttlMs;
      const held = live(rec, now);
      const waitersFull = { outcome: "quota", now, limit: "waiters", max: limits.waitersPerKey } as const;
      if (held) {
        if (held.token !== p.tokenHash) {
          const position = queueMe(ref, p.tokenHash, p.queueWindowMs, now);
          if (position < 0) return waitersFull;
          return { outcome: "held", lease: leaseOf(held), now, position };
        }
        setExpiry(ref, held, exp, now);
        expiryChanged(ref, exp);
        return { outcome: "retried", lease: leaseOf(held), now };
      }
      // Free: first come, first served.
      const head = headOf(ref, now);
      if (head === "unsettled" || (head && head.token !== p.tokenHash)) {
        const position = queueMe(ref, p.tokenHash, p.queueWindowMs, now);
        if (position < 0) return waitersFull;
        return { outcome: "queued", now, position, wakeAt: head === "unsettled" ? now : head.until };
      }
      if (!rec && !room(ref.namespace, now)) {
        return { outcome: "quota", now, limit: "locks", max: limits.locksPerNamespace };
      }
      const next: LockRecord = {
        token: p.tokenHash,
        exp,
        fence: nextFence(now),
        since: now,
        holder: p.holderId,
        reason: p.reason,
        cred: rec?.cred ?? null,
        gc: rec?.gc ?? Number.NEGATIVE_INFINITY,
        rel: rec?.rel ?? null,
      };
      setExpiry(ref, next, exp, now);
      records.set(id(ref), next);
      sweep(now);
      if (head) {
        leaveQueue(ref, p.tokenHash);
        expiryChanged(ref, exp);
      }
      return { outcome: "granted", lease: leaseOf(next), now };
    },

    async renew(ref, p): Promise<RenewOutcome> {
      const now = clock();
      const rec = read(ref, now);
      if (rec?.cred != null && rec.cred !== p.tokenHash) return { outcome: "forbidden", now };
      const held = live(rec, now);
      if (!held) return { outcome: "not_held", now };
      if (held.token !== p.tokenHash) return { outcome: "held", lease: leaseOf(held), now };
      setExpiry(ref, held, now + p.ttlMs, now);
      expiryChanged(ref, held.exp);
      return { outcome: "renewed", lease: leaseOf(held), now };
    },

    async release(ref, p): Promise<ReleaseOutcome> {
      const now = clock();
      const rec = read(ref, now);
      const force = p.tokenHash === null;
      if (p.registeredOnly && rec?.cred == null) return { outcome: "unknown", now };
      if (!force && rec?.cred != null && rec.cred !== p.tokenHash) return { outcome: "forbidden", now };
      // A retried release, within the grace period, answers as the first one did.
      if (
        !force &&
        rec?.token === p.tokenHash &&
        rec.exp === -1 &&
        now < (rec.rel ?? 0) + RELEASED_GRACE_MS
      ) {
        return { outcome: "released", now };
      }
      const held = live(rec, now);
      if (!held) return { outcome: "not_held", now };
      if (!force && held.token !== p.tokenHash) return { outcome: "held", lease: leaseOf(held), now };
      setExpiry(ref, held, -1, now);
      held.rel = now;
      // A forced release forgets the token: its holder's own release must say it lost the lease.
      if (force) held.token = null;
      const first = queues.get(id(ref))?.[0];
      hub.emit(id(ref), { kind: "released", next: first?.token ?? null, nextUntil: first?.until ?? null });
      return { outcome: "released", now };
    },

    async inspect(ref): Promise<InspectOutcome> {
      const now = clock();
      const rec = read(ref, now);
      const held = live(rec, now);
      return {
        now,
        lease: held ? leaseOf(held) : null,
        registered: rec?.cred != null,
        waiting: queues.get(id(ref))?.length ?? 0,
      };
    },

    async register(ref, p: RegisterParams): Promise<RegisterOutcome> {
      const now = clock();
      if (read(ref, now)) return { outcome: "exists", now };
      if (!room(ref.namespace, now))
        return { outcome: "quota", now, limit: "locks", max: limits.locksPerNamespace };
      const rec: LockRecord = {
        token: null,
        exp: -1,
        fence: 0,
        since: now,
        holder: null,
        reason: null,
        cred: p.credentialHash,
        gc: Number.NEGATIVE_INFINITY,
        rel: null,
      };
      let exp = -1;
      if (p.lock) {
        rec.token = p.credentialHash;
        exp = p.lock.ttlMs == null ? 0 : now + p.lock.ttlMs;
        rec.fence = nextFence(now);
        rec.holder = p.lock.holderId;
      }
      setExpiry(ref, rec, exp, now);
      records.set(id(ref), rec);
      return { outcome: "created", lease: p.lock ? leaseOf(rec) : null, now };
    },

    async leave(ref, tokenHash) {
      const wasFirst = queues.get(id(ref))?.[0]?.token === tokenHash;
      leaveQueue(ref, tokenHash);
      // Only when the first waiter leaves does the next one become first (and may find the key free).
      const next = queues.get(id(ref))?.[0];
      if (wasFirst && next) hub.emit(id(ref), { kind: "released", next: next.token, nextUntil: next.until });
    },

    async peek(ref) {
      const rec = read(ref, clock());
      return rec ? String(rec.exp) : null;
    },

    async ping() {},
    async safety() {
      return { evictionPolicy: null, safe: true, problem: null };
    },
    async close() {
      records.clear();
    },
  };
}
