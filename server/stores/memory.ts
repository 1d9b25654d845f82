/**
 * In-process store for trying LSS out: the same operations as the Redis scripts (redis-scripts.ts),
 * kept equal by the contract suite. Nothing survives a restart.
 */

import { createEventHub } from "./events.js";
import {
  type AcquireOutcome,
  type Actor,
  DEFAULT_LIMITS,
  GC_SLACK_MS,
  type HistoryEntry,
  type HistoryKind,
  type InspectOutcome,
  type KeySummary,
  keptHistory,
  type Lease,
  type LockMode,
  type LockRef,
  type LockStore,
  locksIn,
  type PoolOutcome,
  QUEUE_GRACE_MS,
  queueMember,
  RECLAIM_PER_CALL,
  RELEASED_GRACE_MS,
  type RegisterOutcome,
  type RegisterParams,
  type ReleaseOutcome,
  type RenewOutcome,
  SESSIONS_PER_TOKEN,
  type SessionStore,
  STALE_WAITERS_PER_CALL,
  type StoreAcquireParams,
  type StoreLimits,
  type TokenRecord,
  type TokenStore,
  type UiSession,
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
  /** Shared holders by token hash (exp -1: released at rel, kept for a retried release). */
  shared: Map<string, SharedHolder>;
  /** The limit in force while shared holders hold it. */
  lim: number | null;
}

interface SharedHolder {
  exp: number;
  fence: number;
  since: number;
  holder: string | null;
  reason: string | null;
  rel: number | null;
}

/** A key's record before its first lease (cred: a /locks lock's credential hash). */
const newRecord = (now: number, cred: string | null): LockRecord => ({
  token: null,
  exp: -1,
  fence: 0,
  since: now,
  holder: null,
  reason: null,
  cred,
  gc: Number.NEGATIVE_INFINITY,
  rel: null,
  shared: new Map(),
  lim: null,
});

/** The record if it holds a lease now, else null. */
const live = (rec: LockRecord | undefined, now: number): LockRecord | null =>
  rec?.token != null && (rec.exp === 0 || rec.exp > now) ? rec : null;

const liveShared = (rec: LockRecord | undefined, now: number) =>
  [...(rec?.shared ?? [])].filter(([, h]) => h.exp > now);

const sharedLease = (h: SharedHolder): Lease => ({
  mode: "shared",
  holderId: h.holder,
  reason: h.reason,
  fencingToken: h.fence,
  acquiredAt: h.since,
  expiresAt: h.exp,
});

/** The shared lease that ends first (a shared waiter waits for it) or last (an exclusive one). */
const pick = (alive: Array<[string, SharedHolder]>, which: "first" | "last") =>
  alive.reduce((best, h) =>
    (which === "first" ? h[1].exp < best[1].exp : h[1].exp > best[1].exp) ? h : best,
  )[1];

const leaseOf = (rec: LockRecord): Lease => ({
  mode: "exclusive",
  holderId: rec.holder,
  reason: rec.reason,
  fencingToken: rec.fence,
  acquiredAt: rec.since,
  expiresAt: rec.exp === 0 ? null : rec.exp,
});

const event = (
  kind: HistoryKind,
  at: number,
  lease: Pick<Lease, "holderId" | "reason" | "mode" | "fencingToken" | "acquiredAt"> | null,
  actor: Actor | null,
  heldMs: number | null = null,
): HistoryEntry => ({
  kind,
  at,
  holderId: lease?.holderId ?? null,
  reason: lease?.reason ?? null,
  mode: lease?.mode ?? null,
  fencingToken: lease?.fencingToken ?? null,
  heldMs,
  actor,
});

/** Leases of the record that ran out and are not in the history yet (oldest first), as "expired" events. */
const lapsedOf = (
  rec: LockRecord | undefined,
  now: number,
): Array<{ entry: HistoryEntry; th: string | null }> => {
  if (!rec) return [];
  const out: Array<{ entry: HistoryEntry; th: string | null }> = [];
  if (rec.token && rec.exp > 0 && rec.exp <= now) {
    out.push({ entry: event("expired", rec.exp, leaseOf(rec), null, rec.exp - rec.since), th: null });
  }
  for (const [th, h] of rec.shared) {
    if (h.exp > 0 && h.exp <= now) {
      out.push({ entry: event("expired", h.exp, sharedLease(h), null, h.exp - h.since), th });
    }
  }
  return out.sort((a, b) => a.entry.at - b.entry.at);
};

/** What the memory store keeps, counted (for tests of its bounds). */
export interface MemoryFootprint {
  records: number;
  histories: number;
  queues: number;
  sessions: number;
  /** Per namespace, its index (the records it counts against its cap). */
  indexed: Record<string, number>;
  /** Per key ("<namespace> <key>"), its shared holders' entries (live or kept as released). */
  sharedEntries: Record<string, number>;
  /** Per key, its queue's length. */
  queueLengths: Record<string, number>;
}

export function createMemoryStore(
  opts: { clock?: () => number; limits?: StoreLimits } = {},
): LockStore & { footprint(): MemoryFootprint } {
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
  /** Per namespace, the keys whose last holder released them, by when (the scripts' ended set). */
  const endedSets = new Map<string, Map<string, number>>();
  const endedOf = (namespace: string) => {
    const ended = endedSets.get(namespace) ?? new Map<string, number>();
    endedSets.set(namespace, ended);
    return ended;
  };
  const forget = (ref: LockRef) => {
    indexOf(ref.namespace).delete(ref.key);
    endedOf(ref.namespace).delete(ref.key);
  };
  /** As the scripts' drop_if_ended: drop a record that holds nothing, its lapsed leases written first. */
  const dropIfEnded = (ref: LockRef, busy: LockRef[], now: number) => {
    if (busy.some((b) => b.key === ref.key)) return "busy";
    const rec = read(ref, now);
    if (!rec) {
      forget(ref);
      return "gone";
    }
    if (!holdsNothing(ref, rec, now)) return "live";
    remember(ref, now, ...lapsedOf(rec, now).map((l) => l.entry));
    records.delete(id(ref));
    forget(ref);
    return "dropped";
  };
  /** The first `n` keys of a map of key → time, by time (then by key, as a sorted set orders them). */
  const firstBy = (entries: Map<string, number>, n: number) =>
    [...entries].sort((a, b) => a[1] - b[1] || (a[0] < b[0] ? -1 : 1)).slice(0, n);
  /**
   * Room for one more record in the namespace? Records already gone are forgotten first; at the
   * cap, a record that holds nothing is dropped: of the keys released longest ago, then of the
   * records that disappear first, RECLAIM_PER_CALL of each looked at: as the scripts' room and
   * reclaim.
   */
  const room = (namespace: string, now: number, busy: LockRef[] = []) => {
    const index = indexOf(namespace);
    const cap = locksIn(limits, namespace);
    if (index.size < cap) return true;
    for (const [key, until] of index) if (until <= now) forget({ namespace, key });
    if (index.size < cap) return true;
    const ended = endedOf(namespace);
    for (const [key] of firstBy(ended, RECLAIM_PER_CALL)) {
      const outcome = dropIfEnded({ namespace, key }, busy, now);
      if (outcome === "dropped") return true;
      // Taken again since: it leaves the ended set until its next release.
      if (outcome === "live") ended.delete(key);
    }
    const live = new Map([...index].filter(([, until]) => until > now));
    for (const [key] of firstBy(live, RECLAIM_PER_CALL)) {
      if (dropIfEnded({ namespace, key }, busy, now) === "dropped") return true;
    }
    return false;
  };
  /** No live lease, exclusive or shared, nobody queued, and not a /locks lock. */
  const holdsNothing = (ref: LockRef, rec: LockRecord, now: number) =>
    rec.cred == null && !live(rec, now) && liveShared(rec, now).length === 0 && !queues.get(id(ref))?.length;
  let fencingCounter = 0;
  /** As in Redis: a new counter starts at the clock in microseconds, above an old process's tokens. */
  const nextFence = (now: number) => {
    fencingCounter = fencingCounter === 0 ? now * 1000 : fencingCounter + 1;
    return fencingCounter;
  };
  const tokenRecords = new Map<string, TokenRecord>();

  const id = (ref: LockRef) => `${ref.namespace}\u0000${ref.key}`;

  /**
   * Per key, its history (newest first) and when it disappears: as the Redis list, kept the newest
   * historyPerKey events and historyRetentionMs past its last event (moved at most every 30th of it).
   */
  const histories = new Map<string, { entries: HistoryEntry[]; until: number }>();
  const remember = (ref: LockRef, now: number, ...entries: HistoryEntry[]) => {
    const h = histories.get(id(ref));
    const kept = h && h.until > now ? h : { entries: [], until: 0 };
    kept.entries.unshift(...entries.reverse());
    kept.entries.length = Math.min(kept.entries.length, limits.historyPerKey);
    if (kept.until < now + limits.historyRetentionMs) {
      kept.until = now + limits.historyRetentionMs + Math.floor(limits.historyRetentionMs / 30);
    }
    histories.set(id(ref), kept);
  };

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
    // Only a /locks lock is held without end, and even it goes lockRetentionMs after its last write.
    if (exp !== 0 || rec.cred != null) {
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

  /** A shared holder's lease ends at exp: keep the record beyond it (the scripts' set_shared). */
  const keepShared = (ref: LockRef, rec: LockRecord, exp: number, now: number) => {
    const endsBy = Math.max(exp, ...[...rec.shared.values()].map((h) => h.exp));
    const kept = rec.exp;
    setExpiry(ref, rec, endsBy, now);
    rec.exp = kept;
  };

  /**
   * Expired records, histories and sessions of keys never touched again would pile up (Redis drops
   * them at their expiry); sweep them now and then.
   */
  let writes = 0;
  const sweep = (now: number) => {
    if (++writes % 1024 !== 0) return;
    for (const [k, rec] of records) if (rec.gc <= now) records.delete(k);
    // The namespaces' index and ended set forget the records that went (as the scripts' room does).
    for (const [namespace, index] of indexes) {
      for (const [key, until] of index) if (until <= now) forget({ namespace, key });
    }
    for (const [namespace, ended] of endedSets) {
      for (const key of ended.keys()) if (!records.has(id({ namespace, key }))) ended.delete(key);
    }
    for (const [k, h] of histories) if (h.until <= now) histories.delete(k);
    for (const [tokenId, mine] of sessionRecords) {
      for (const [k, kept] of mine) if (kept.until <= now) mine.delete(k);
      if (mine.size === 0) sessionRecords.delete(tokenId);
    }
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

  /** Per token, its sessions by id hash, in the order they began. */
  const sessionRecords = new Map<string, Map<string, { session: UiSession; until: number }>>();
  const sessions: SessionStore = {
    async put(tokenId, idHash, session, ttlMs) {
      const mine = sessionRecords.get(tokenId) ?? new Map();
      mine.set(idHash, { session: { ...session }, until: clock() + ttlMs });
      while (mine.size > SESSIONS_PER_TOKEN) mine.delete(mine.keys().next().value as string);
      sessionRecords.set(tokenId, mine);
    },
    async get(tokenId, idHash) {
      const kept = sessionRecords.get(tokenId)?.get(idHash);
      return kept && kept.until > clock() ? { ...kept.session } : null;
    },
    async delete(tokenId, idHash) {
      sessionRecords.get(tokenId)?.delete(idHash);
    },
  };

  /** Per key, waiters (queueMember: mode and token hash) in arrival order, with the time each keeps its place until. */
  const queues = new Map<string, Array<{ member: string; until: number }>>();
  const hub = createEventHub(id);
  const expiryChanged = (ref: LockRef, exp: number) =>
    hub.emit(id(ref), { kind: "expiry", expiresAt: exp || null });

  /** Join the key's queue or keep one's place; the 1-based position (0: not queuing, -1: full). */
  const queueMe = (ref: LockRef, member: string, windowMs: number | null, now: number) => {
    if (windowMs == null) return 0;
    const queue = queues.get(id(ref)) ?? [];
    let index = queue.findIndex((w) => w.member === member);
    if (index < 0) {
      if (queue.length >= limits.waitersPerKey) return -1;
      index = queue.push({ member, until: 0 }) - 1;
    }
    queues.set(id(ref), queue);
    (queue[index] as { until: number }).until = now + windowMs + QUEUE_GRACE_MS;
    return index + 1;
  };
  /** Leave the key's queue; true when the member was first in it. */
  const leaveQueue = (ref: LockRef, member: string) => {
    const queue = queues.get(id(ref));
    if (!queue) return false;
    const index = queue.findIndex((w) => w.member === member);
    if (index >= 0) queue.splice(index, 1);
    if (queue.length === 0) queues.delete(id(ref));
    return index === 0;
  };
  /** Only when the first waiter leaves does the next one become first (and may find the key free). */
  const wakeFirst = (ref: LockRef) => {
    const next = queues.get(id(ref))?.[0];
    if (next) hub.emit(id(ref), { kind: "released", next: next.member, nextUntil: next.until });
  };

  /**
   * Whose turn it is, as the acquire script decides it: it looks at the first `window + 1` waiters,
   * drops those that stopped asking (at most STALE_WAITERS_PER_CALL per call: "unsettled" past it)
   * and looks again; then exclusive: only the first may take it; shared: every waiter ahead must be
   * shared and leave a slot, and a newcomer behind a queue seen whole takes a slot they leave free.
   */
  const turnOf = (ref: LockRef, member: string, shared: boolean, free: number, now: number) => {
    const queue = queues.get(id(ref)) ?? [];
    const window = shared ? Math.max(free, 1) : 1;
    let dropped = 0;
    for (;;) {
      const members = queue.slice(0, window + 1);
      if (members.length === 0) return { turn: "empty" as const };
      const waiting = members.filter((w) => w.until > now);
      const stale = members.filter((w) => w.until <= now);
      if (stale.length > 0) {
        if (dropped + stale.length > STALE_WAITERS_PER_CALL) return { turn: "unsettled" as const };
        for (const w of stale) queue.splice(queue.indexOf(w), 1);
        dropped += stale.length;
        // They stopped asking (their wait ended without a word): a queue timeout each.
        const modeOf = (m: string) => (m.startsWith("s:") ? "shared" : "exclusive") as LockMode;
        remember(
          ref,
          now,
          ...stale.map((w) => ({ ...event("queue_timeout", now, null, null), mode: modeOf(w.member) })),
        );
        continue;
      }
      const head = waiting[0];
      const behind = members.length > 1;
      const seenWhole = members.length <= window;
      let ahead = 0;
      for (let i = 0; i < waiting.length; i++) {
        const w = waiting[i] as { member: string; until: number };
        if (w.member === member) {
          const mine = (!shared && i === 0) || (shared && ahead < free);
          return mine
            ? { turn: "mine" as const, head, behind, after: waiting[i + 1] }
            : { turn: "wait" as const, head };
        }
        if (!shared || w.member.startsWith("x:")) break;
        ahead++;
        if (ahead >= free) break;
        if (i === waiting.length - 1 && seenWhole)
          return { turn: "mine" as const, head, behind, after: undefined };
      }
      return { turn: "wait" as const, head };
    }
  };

  return {
    kind: "memory",
    tokens,
    sessions,
    events: hub,

    async acquire(ref, p: StoreAcquireParams): Promise<AcquireOutcome> {
      const { index: _index, ...outcome } = await this.acquireAny([ref], p);
      return outcome as AcquireOutcome;
    },

    /** As the acquire script: refusals and retries first, then the first key whose turn it is, else every queue. */
    async acquireAny(refs, p): Promise<PoolOutcome> {
      const now = clock();
      const shared = p.mode === "shared";
      const member = queueMember(p.mode, p.tokenHash);
      const exp = p.ttlMs == null ? 0 : now + p.ttlMs;
      const keys = refs.map((ref, index) => ({ ref, index, rec: read(ref, now) }));

      // 1. Refusals, then a retried acquire (the caller holds one already), then the limit in force.
      const views = [];
      for (const { ref, index, rec } of keys) {
        const at = <T extends AcquireOutcome>(o: T) => ({ ...o, index });
        if (p.registeredOnly && rec?.cred == null) return at({ outcome: "unknown", now });
        if (rec?.cred != null && rec.cred !== p.tokenHash) return at({ outcome: "forbidden", now });
        // A /locks lock has one holder: its key.
        if (shared && rec?.cred != null) return at({ outcome: "mode_conflict", now });
        const excl = live(rec, now);
        if (excl && excl.token === p.tokenHash) {
          setExpiry(ref, excl, exp, now);
          expiryChanged(ref, exp);
          remember(ref, now, event("extended", now, leaseOf(excl), p.actor));
          return at({ outcome: "retried", lease: leaseOf(excl), now });
        }
        const alive = liveShared(rec, now);
        const mine = alive.find(([th]) => th === p.tokenHash)?.[1];
        if (rec && mine) {
          mine.exp = exp;
          keepShared(ref, rec, exp, now);
          expiryChanged(ref, exp);
          remember(ref, now, event("extended", now, sharedLease(mine), p.actor));
          return at({ outcome: "retried", lease: sharedLease(mine), now });
        }
        if (shared && alive.length > 0 && rec?.lim !== p.limit) {
          return at({ outcome: "limit", now, limit: rec?.lim ?? 0 });
        }
        views.push({ ref, index, rec, excl, alive });
      }

      // 2. Whose turn it is, key by key (see turnOf).
      const turns = [];
      type Turn = (typeof views)[number] & { free: number; turn: ReturnType<typeof turnOf> };
      let chosen: Turn | undefined;
      let full: Turn | undefined;
      for (const v of views) {
        // Room for the caller: an exclusive hold needs the key empty; a shared one, no exclusive
        // holder and fewer shared ones than the limit.
        const free = v.excl ? 0 : shared ? p.limit - v.alive.length : v.alive.length === 0 ? 1 : 0;
        const turn =
          free > 0 && (!v.rec || queues.has(id(v.ref)))
            ? turnOf(v.ref, member, shared, free, now)
            : { turn: "empty" as const };
        const t = { ...v, free, turn };
        turns.push(t);
        if (free > 0 && (turn.turn === "empty" || turn.turn === "mine")) {
          // A key with no record yet needs room: at the cap, a later key that has one is taken.
          if (v.rec || room(v.ref.namespace, now, refs)) {
            chosen = t;
            break;
          }
          full ??= t;
        }
      }
      if (!chosen && full) {
        return {
          outcome: "quota",
          now,
          limit: "locks",
          max: locksIn(limits, full.ref.namespace),
          index: full.index,
        };
      }

      // 3. None is the caller's: wait in every queue. Held: say by whom.
      if (!chosen) {
        let position = Number.POSITIVE_INFINITY;
        let wakeAt = Number.POSITIVE_INFINITY;
        for (const t of turns) {
          const place = queueMe(t.ref, member, p.queueWindowMs, now);
          if (place < 0)
            return { outcome: "quota", now, limit: "waiters", max: limits.waitersPerKey, index: t.index };
          position = Math.min(position, place);
          if (t.free > 0)
            wakeAt = Math.min(wakeAt, t.turn.turn === "wait" && t.turn.head ? t.turn.head.until : now);
        }
        const first = turns[0] as (typeof turns)[number];
        if (Number.isFinite(wakeAt)) return { outcome: "queued", now, position, wakeAt, index: first.index };
        // Held everywhere: name the lease on the key that frees first for the caller, since its
        // end is when the caller looks again (a lease that just expires sends no event).
        const blockers = turns.map((t) => ({
          index: t.index,
          lease: t.excl ? leaseOf(t.excl) : sharedLease(pick(t.alive, shared ? "first" : "last")),
        }));
        const ends = (b: (typeof blockers)[number]) => b.lease.expiresAt ?? Number.POSITIVE_INFINITY;
        const soonest = blockers.reduce((a, b) => (ends(b) < ends(a) ? b : a));
        return { outcome: "held", lease: soonest.lease, now, position, index: soonest.index };
      }

      // 4. Granted the chosen key; the caller leaves the other keys' queues.
      const { ref, index, rec, turn, free } = chosen;
      const fence = nextFence(now);
      const record = rec ?? newRecord(now, null);
      records.set(id(ref), record);
      // Leases that ran out since the key was last granted: into the history now, at their end.
      const lapsed = lapsedOf(record, now);
      // Recorded once: a shared grant leaves the exclusive fields in place.
      if (lapsed.some((l) => l.th === null)) record.exp = -1;
      // Every ended shared entry goes with a grant (those kept as released too), as in the script:
      // unless the last holder released the key, which left its own entry alone.
      if ([...record.shared.values()].some((h) => h.exp > 0)) {
        for (const [th, h] of record.shared) if (h.exp <= now) record.shared.delete(th);
      }
      let lease: Lease;
      if (shared) {
        const holder = { exp, fence, since: now, holder: p.holderId, reason: p.reason, rel: null };
        record.shared.set(p.tokenHash, holder);
        record.lim = p.limit;
        keepShared(ref, record, exp, now);
        lease = sharedLease(holder);
      } else {
        Object.assign(record, {
          token: p.tokenHash,
          fence,
          since: now,
          holder: p.holderId,
          reason: p.reason,
        });
        setExpiry(ref, record, exp, now);
        lease = leaseOf(record);
      }
      remember(ref, now, ...lapsed.map((l) => l.entry), event("granted", now, lease, p.actor));
      const expired = lapsed.length;
      sweep(now);
      if (turn.turn === "mine") {
        leaveQueue(ref, member);
        expiryChanged(ref, exp);
        // The next shared waiter may share it too: wake it.
        const after = "after" in turn ? turn.after : undefined;
        if (shared && after && free > 1 && after.member.startsWith("s:")) {
          hub.emit(id(ref), { kind: "released", next: after.member, nextUntil: after.until });
        }
      }
      for (const other of refs) if (other !== ref && leaveQueue(other, member)) wakeFirst(other);
      return { outcome: "granted", lease, now, index, expired };
    },

    async renew(ref, p): Promise<RenewOutcome> {
      const now = clock();
      const rec = read(ref, now);
      if (rec?.cred != null && rec.cred !== p.tokenHash) return { outcome: "forbidden", now };
      const held = live(rec, now);
      if (held) {
        if (held.token !== p.tokenHash) return { outcome: "held", lease: leaseOf(held), now };
        setExpiry(ref, held, now + p.ttlMs, now);
        expiryChanged(ref, held.exp);
        return { outcome: "renewed", lease: leaseOf(held), now };
      }
      const alive = liveShared(rec, now);
      const mine = alive.find(([th]) => th === p.tokenHash)?.[1];
      if (rec && mine) {
        mine.exp = now + p.ttlMs;
        keepShared(ref, rec, mine.exp, now);
        expiryChanged(ref, mine.exp);
        return { outcome: "renewed", lease: sharedLease(mine), now };
      }
      if (alive.length > 0) return { outcome: "held", lease: sharedLease(pick(alive, "last")), now };
      return { outcome: "not_held", now };
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
        return { outcome: "released", now, again: true, expired: 0 };
      }
      const excl = live(rec, now);
      const alive = liveShared(rec, now);
      const mine = force ? undefined : alive.find(([th]) => th === p.tokenHash)?.[1];
      if (!force && !mine && !excl) {
        const gone = rec?.shared.get(p.tokenHash ?? "");
        if (gone && gone.exp === -1 && now < (gone.rel ?? 0) + RELEASED_GRACE_MS)
          return { outcome: "released", now, again: true, expired: 0 };
        if (alive.length > 0) return { outcome: "held", lease: sharedLease(pick(alive, "last")), now };
        return { outcome: "not_held", now };
      }
      if (!force && !mine && excl && excl.token !== p.tokenHash)
        return { outcome: "held", lease: leaseOf(excl), now };
      if (!rec || (!excl && alive.length === 0)) return { outcome: "not_held", now };
      // Shared leases that ran out meanwhile go into the history now; released entries past their
      // grace period go too (as in the release script).
      const lapsed = lapsedOf(rec, now).filter((l) => l.th != null);
      for (const { th } of lapsed) rec.shared.delete(th as string);
      for (const [th, h] of rec.shared)
        if (h.exp === -1 && now >= (h.rel ?? 0) + RELEASED_GRACE_MS) rec.shared.delete(th);
      remember(ref, now, ...lapsed.map((l) => l.entry));
      // Into the history: the holder's own release, or every holder a forced release ends.
      const kind = force ? "forced_release" : "released";
      const ended = [
        ...(excl ? [leaseOf(excl)] : []),
        ...(force ? alive.map(([, h]) => sharedLease(h)) : mine ? [sharedLease(mine)] : []),
      ];
      remember(ref, now, ...ended.map((l) => event(kind, now, l, p.actor, now - l.acquiredAt)));
      if (mine) {
        // Its entry stays a while as "released", for a retried release; the last holder to leave
        // takes every other entry with it.
        mine.exp = -1;
        mine.rel = now;
        if (alive.length === 1) rec.shared = new Map([[p.tokenHash as string, mine]]);
      } else if (force && alive.length > 0) {
        rec.shared.clear();
      }
      if (excl) {
        setExpiry(ref, rec, -1, now);
        rec.rel = now;
        // A forced release forgets the token: its holder's own release must say it lost the lease.
        if (force) rec.token = null;
      }
      // Nobody holds it now: into the namespace's ended set.
      if (!mine || alive.length === 1) endedOf(ref.namespace).set(ref.key, now);
      const first = queues.get(id(ref))?.[0];
      hub.emit(id(ref), { kind: "released", next: first?.member ?? null, nextUntil: first?.until ?? null });
      return { outcome: "released", now, again: false, expired: lapsed.length };
    },

    async inspect(ref, opts): Promise<InspectOutcome> {
      const now = clock();
      const rec = read(ref, now);
      const held = live(rec, now);
      const shared = liveShared(rec, now)
        .map(([, h]) => sharedLease(h))
        .sort((a, b) => a.acquiredAt - b.acquiredAt);
      const lease = held
        ? leaseOf(held)
        : shared.reduce<Lease | null>(
            (a, b) => (!a || (b.expiresAt ?? 0) > (a.expiresAt ?? 0) ? b : a),
            null,
          );
      const queue = opts?.waiting === false || opts?.watch ? [] : (queues.get(id(ref)) ?? []);
      return {
        now,
        lease,
        holders: held ? [leaseOf(held)] : opts?.watch ? (lease ? [lease] : []) : shared,
        limit: !opts?.watch && shared.length > 0 ? (rec?.lim ?? null) : null,
        registered: rec?.cred != null,
        waiting: opts?.waiting === false ? 0 : (queues.get(id(ref))?.length ?? 0),
        queue: queue.slice(0, 20).map((w) => (w.member.startsWith("s:") ? "shared" : "exclusive")),
      };
    },

    async register(ref, p: RegisterParams): Promise<RegisterOutcome> {
      const now = clock();
      const found = read(ref, now);
      // This very lock (its credential): a retried create gets it back, as it is now.
      if (found && found.cred === p.credentialHash) {
        const held = live(found, now);
        return { outcome: "created", now, lease: held ? leaseOf(held) : null };
      }
      if (found) return { outcome: "exists", now };
      if (!room(ref.namespace, now))
        return { outcome: "quota", now, limit: "locks", max: locksIn(limits, ref.namespace) };
      const rec = newRecord(now, p.credentialHash);
      let exp = -1;
      if (p.lock) {
        rec.token = p.credentialHash;
        exp = p.lock.ttlMs == null ? 0 : now + p.lock.ttlMs;
        rec.fence = nextFence(now);
        rec.holder = p.lock.holderId;
      }
      setExpiry(ref, rec, exp, now);
      records.set(id(ref), rec);
      if (p.lock) remember(ref, now, event("granted", now, leaseOf(rec), p.actor));
      return { outcome: "created", lease: p.lock ? leaseOf(rec) : null, now };
    },

    async leave(ref, tokenHash, who) {
      const queue = queues.get(id(ref)) ?? [];
      for (const mode of ["exclusive", "shared"] as const) {
        if (queue.some((w) => w.member === queueMember(mode, tokenHash))) {
          const now = clock();
          remember(ref, now, {
            ...event("queue_timeout", now, null, who?.actor ?? null),
            holderId: who?.holderId ?? null,
            mode,
          });
        }
      }
      const wasFirst = [queueMember("exclusive", tokenHash), queueMember("shared", tokenHash)]
        .map((member) => leaveQueue(ref, member))
        .some(Boolean);
      if (wasFirst) wakeFirst(ref);
    },

    async history(ref) {
      const now = clock();
      const h = histories.get(id(ref));
      const written = h && h.until > now ? h.entries : [];
      // Leases that ran out and are not written yet (they are when the key is next granted).
      const lapsed = lapsedOf(read(ref, now), now)
        .map((l) => l.entry)
        .reverse();
      return { now, entries: keptHistory([...lapsed, ...written], now, limits) };
    },

    async list(namespace, opts) {
      const now = clock();
      const names = [...indexOf(namespace).keys()]
        .filter((key) => key.startsWith(opts.prefix) && (opts.after == null || key > opts.after))
        .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
      const page = names.slice(0, opts.limit);
      const keys: KeySummary[] = [];
      for (const key of page) {
        const ref = { namespace, key };
        const rec = read(ref, now);
        if (!rec) continue;
        const held = live(rec, now);
        const alive = liveShared(rec, now);
        keys.push({
          key,
          lease: held ? leaseOf(held) : alive.length > 0 ? sharedLease(pick(alive, "last")) : null,
          holders: held ? 1 : alive.length,
          waiting: queues.get(id(ref))?.length ?? 0,
          registered: rec.cred != null,
        });
      }
      return { now, keys, more: names.length > opts.limit, last: page.at(-1) ?? null };
    },

    async peek(ref) {
      const rec = read(ref, clock());
      if (!rec) return null;
      const sharedUntil = Math.max(0, ...[...rec.shared.values()].map((h) => h.exp));
      return sharedUntil > 0 ? `${rec.exp}|${sharedUntil}` : String(rec.exp);
    },

    async ping() {},
    async safety() {
      return { evictionPolicy: null, safe: true, problem: null };
    },
    async close() {
      records.clear();
    },

    footprint() {
      const named = (k: string) => k.replace("\u0000", " ");
      return {
        records: records.size,
        histories: histories.size,
        queues: queues.size,
        sessions: [...sessionRecords.values()].reduce((n, mine) => n + mine.size, 0),
        indexed: Object.fromEntries([...indexes].map(([ns, index]) => [ns, index.size])),
        sharedEntries: Object.fromEntries([...records].map(([k, rec]) => [named(k), rec.shared.size])),
        queueLengths: Object.fromEntries([...queues].map(([k, queue]) => [named(k), queue.length])),
      };
    },
  };
}
