/**
 * The Redis store: the scripts of redis-scripts.ts over either transport (TCP or Upstash REST).
 * Each lock operation is one EVALSHA (falling back to EVAL once when Redis lost the script cache).
 */
import { HISTORY_EVENTS } from "../../src/protocol/lease.js";
import { sha256Hex } from "../crypto.js";
import {
  ACQUIRE,
  HISTORY,
  INSPECT,
  LEAVE,
  LIST,
  type LuaScript,
  REGISTER,
  RELEASE,
  RENEW,
  UNIT_SEPARATOR,
  unpackRecord,
} from "./redis-scripts.js";
import {
  type AcquireOutcome,
  type Actor,
  DEFAULT_LIMITS,
  type HistoryEntry,
  type HistoryKind,
  type InspectOutcome,
  type KeySummary,
  keptHistory,
  type Lease,
  type LockEvents,
  type LockRef,
  type LockStore,
  locksIn,
  type PoolOutcome,
  type QuotaOutcome,
  type RegisterOutcome,
  type ReleaseOutcome,
  type RenewOutcome,
  SESSIONS_PER_TOKEN,
  type StoreFailureHint,
  type StoreLimits,
  type StoreSafety,
  StoreUnavailableError,
  type TokenRecord,
  type UiSession,
} from "./types.js";

/** The few commands the store needs; each transport adapts its client to this. */
export interface RedisTransport {
  readonly kind: "redis" | "upstash";
  evalsha(sha1: string, keys: string[], args: string[]): Promise<unknown>;
  eval(source: string, keys: string[], args: string[]): Promise<unknown>;
  hset(key: string, field: string, value: string): Promise<unknown>;
  hget(key: string, field: string): Promise<string | null>;
  get(key: string): Promise<string | null>;
  hgetall(key: string): Promise<Record<string, string> | null>;
  pexpire(key: string, ms: number): Promise<unknown>;
  hvals(key: string): Promise<string[]>;
  hdel(key: string, field: string): Promise<number>;
  ping(): Promise<unknown>;
  /** Redis's maxmemory-policy, or null where it cannot be read (Upstash, a managed Redis that hides it). */
  evictionPolicy(): Promise<string | null>;
  /**
   * The policy a provider documents for a database whose policy cannot be read (Upstash: eviction
   * is a database option, off unless enabled). Without one, an unreadable policy is unsafe.
   */
  readonly documentedEvictionPolicy?: string;
  /**
   * TIME, GET of a lock's record and (with a queue key) ZCARD, in one round trip (a pipeline, not
   * a script: read-only, so it spares the EVALSHA). Raw replies, strings as Redis sent them.
   */
  snapshot(lockKey: string, queueKey: string | null): Promise<Snapshot>;
  /**
   * The first members of a queue and/or every shared holder (HGETALL, flat), in one round trip: read
   * by a status only when the snapshot says there are any, so a plain lock's status stays 3 commands.
   */
  listing(queue: { key: string; head: number } | null, holdersKey: string | null): Promise<Listing>;
  close(): Promise<void>;
  /** Whether a failed command certainly did not run (never sent, or answered with an error). */
  notApplied?(err: unknown): boolean;
  /** Names the variable to check when a failure looks like a configuration mistake. */
  explain?(err: unknown): StoreFailureHint | null;
}

export interface Snapshot {
  time: [string | number, string | number];
  /** The packed record (redis-scripts.ts), or null. */
  record: string | null;
  /** ZCARD of the queue, when asked for. */
  waiting: number | null;
}

export interface Listing {
  queueHead: string[];
  /** field, value, field, value… */
  holders: string[];
}

/** How many waiters a status lists (it counts them all). */
const LISTED_WAITERS = 20;

const lastToEnd = (holders: Lease[]): Lease | null =>
  holders.reduce<Lease | null>(
    (a, b) => (!a || (b.expiresAt ?? Infinity) > (a.expiresAt ?? Infinity) ? b : a),
    null,
  );

const isNoScript = (err: unknown) => err instanceof Error && /NOSCRIPT/i.test(err.message);

type Reply = Array<string | number | null>;

const str = (v: unknown): string | null => (v == null || v === "" ? null : String(v));

/** fence, since, exp, holder, reason, mode ('x' or 's') at positions 2..7 of a script reply. */
const leaseFrom = (r: Reply): Lease => {
  const exp = Number(r[4]);
  return {
    mode: r[7] === "s" ? "shared" : "exclusive",
    fencingToken: Number(r[2]),
    acquiredAt: Number(r[3]),
    expiresAt: exp === 0 ? null : exp,
    holderId: str(r[5]),
    reason: str(r[6]),
  };
};

/** The live shared holders from their hash (field: token hash; value: exp, fence, since, holder, reason). */
function sharedHolders(flat: string[], now: number): Lease[] {
  const holders: Lease[] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) {
    const [exp, fence, since, holder, reason] = String(flat[i + 1]).split(UNIT_SEPARATOR);
    if (Number(exp) > now) {
      holders.push(
        leaseFrom(["held", now, fence ?? 0, since ?? 0, Number(exp), holder ?? "", reason ?? "", "s"]),
      );
    }
  }
  return holders.sort((a, b) => a.acquiredAt - b.acquiredAt);
}

const HISTORY_KINDS = new Set<string>(HISTORY_EVENTS);

/** A history event as the scripts write it (redis-scripts.ts): kind, at, holder, reason, mode, fence, held, actor. */
function historyEntry(raw: string): HistoryEntry | null {
  const [kind = "", at, holder, reason, mode, fence, held, actorId, actorName] =
    String(raw).split(UNIT_SEPARATOR);
  if (!HISTORY_KINDS.has(kind)) return null;
  return {
    kind: kind as HistoryKind,
    at: Number(at),
    holderId: str(holder),
    reason: str(reason),
    mode: mode === "s" ? "shared" : mode === "x" ? "exclusive" : null,
    fencingToken: fence ? Number(fence) : null,
    heldMs: held ? Number(held) : null,
    actor: actorId ? { id: actorId, name: str(actorName) } : null,
  };
}

const actorArgs = (actor: Actor | null) => [actor?.id ?? "", actor?.name ?? ""];

/**
 * Where a Redis store's lock events come from, given how a key names its channel: one PSUBSCRIBE
 * per server instance on TCP (tcp.ts), an SSE subscription per watch on Upstash (upstash-events.ts).
 */
export type EventSource = (channels: { of: (ref: LockRef) => string; pattern: string }) => LockEvents;

/** Policies under which Redis never drops a key by itself when memory runs out. */
const KEEPS_EVERY_KEY = new Set(["noeviction"]);

/** How long a reading of the eviction policy is trusted before lock operations read it again. */
const POLICY_CHECK_MS = 60_000;

export interface RedisStoreOptions {
  /** LSS_ALLOW_EVICTION: the operator accepts that an evicting Redis may grant a held lock again. */
  allowEviction?: boolean;
  /** LSS_EVICTION_POLICY: the policy the operator checked, for a Redis that does not say it. */
  declaredEvictionPolicy?: string | null;
  limits?: StoreLimits;
}

/** The keys a store with this prefix writes (redis-scripts.ts says what each holds). */
export function redisKeys(prefix: string) {
  // Namespaces cannot contain ':' (see auth), so these keys are unambiguous.
  const perKey = (kind: string) => (ref: LockRef) => `${prefix}:${kind}:${ref.namespace}:${ref.key}`;
  return {
    fence: `${prefix}:fence`,
    tokens: `${prefix}:tokens`,
    queueSeq: `${prefix}:queue-seq`,
    lock: perKey("lock"),
    queue: perKey("queue"),
    queueUntil: perKey("queue-until"),
    holders: perKey("holders"),
    history: perKey("history"),
    // The namespace's key names, for the listing (a sorted set read in lexical order).
    names: (namespace: string) => `${prefix}:names:${namespace}`,
    // The namespace's index of records (see redis-scripts.ts).
    index: (namespace: string) => `${prefix}:ns:${namespace}`,
    // The namespace's keys whose last holder released them, by when (where reclaim looks first).
    ended: (namespace: string) => `${prefix}:ended:${namespace}`,
    // A token's dashboard sessions (a hash by the sha256 of each session's id).
    session: (tokenId: string) => `${prefix}:sessions:${tokenId}`,
  };
}

export function createRedisStore(
  transport: RedisTransport,
  prefix: string,
  events: EventSource,
  opts: RedisStoreOptions = {},
): LockStore {
  const {
    fence: fenceKey,
    tokens: tokensKey,
    queueSeq: queueSeqKey,
    lock: lockKey,
    queue: queueKey,
    queueUntil: queueUntilKey,
    holders: holdersKey,
    history: historyKey,
    names: namesKey,
    index,
    session: sessionKey,
  } = redisKeys(prefix);
  // One channel per key, named by a hash: keys may hold any character, Upstash puts the channel in a URL.
  const channelOf = (ref: LockRef) => `${prefix}:ev:${sha256Hex(lockKey(ref)).slice(0, 32)}`;
  const limits = opts.limits ?? DEFAULT_LIMITS;
  // The namespace's index of records: every script's last key and ARGV.
  const indexKey = (ref: LockRef) => index(ref.namespace);
  const indexArgs = (namespace: string) => [
    prefix,
    namespace,
    String(locksIn(limits, namespace)),
    String(limits.lockRetentionMs),
    String(limits.historyPerKey),
    String(limits.historyRetentionMs),
  ];
  const quotaOf = (r: Reply, now: number): QuotaOutcome & { now: number } => ({
    outcome: "quota",
    now,
    limit: r[2] === "waiters" ? "waiters" : "locks",
    max: Number(r[3]),
  });
  const source = events({ of: channelOf, pattern: `${prefix}:ev:*` });

  /** Any failure to get an answer is "unavailable": callers fail closed on it. */
  const guard = async <T>(op: () => Promise<T>): Promise<T> => {
    try {
      return await op();
    } catch (err) {
      throw err instanceof StoreUnavailableError
        ? err
        : new StoreUnavailableError(err, transport.explain?.(err) ?? null);
    }
  };

  /**
   * Read the eviction policy at most every POLICY_CHECK_MS (a policy can change while we run). An
   * evicting Redis could drop a held lease and grant it again: refuse lock operations then.
   */
  let checked: { at: number; safety: StoreSafety } | null = null;
  const safety = async (): Promise<StoreSafety> => {
    if (checked && Date.now() - checked.at < POLICY_CHECK_MS) return checked.safety;
    const policy = (await transport.evictionPolicy()) ?? opts.declaredEvictionPolicy ?? null;
    const judged = policy ?? transport.documentedEvictionPolicy ?? null;
    const problem =
      judged == null
        ? "Redis does not say its maxmemory-policy (CONFIG and INFO refused), and one that evicts keys could " +
          "let two jobs hold one lock: check your provider's setting, then set LSS_EVICTION_POLICY to it " +
          "(noeviction), or LSS_ALLOW_EVICTION=true to accept the risk"
        : !KEEPS_EVERY_KEY.has(judged)
          ? `Redis may evict lock records (maxmemory-policy ${judged}), which could let two jobs hold one lock: ` +
            "set maxmemory-policy noeviction, or LSS_ALLOW_EVICTION=true to accept the risk"
          : null;
    const result = { evictionPolicy: policy, safe: problem == null || !!opts.allowEviction, problem };
    checked = { at: Date.now(), safety: result };
    return result;
  };
  const refuseUnsafe = (s: StoreSafety) => {
    if (!s.safe)
      throw new StoreUnavailableError(new Error("unsafe store"), {
        kind: "unsafe",
        message: s.problem ?? "",
      });
  };
  /**
   * Undefined while the last check (within POLICY_CHECK_MS) found the store safe: no promise on
   * the path of every lock operation. Otherwise the check, rejecting when the store is unsafe.
   */
  const ensureSafe = (): Promise<void> | undefined => {
    if (checked?.safety.safe && Date.now() - checked.at < POLICY_CHECK_MS) return undefined;
    return safety().then(refuseUnsafe);
  };

  const run = (s: LuaScript, keys: string[], args: string[]): Promise<Reply> =>
    guard(async () => {
      const checking = ensureSafe();
      if (checking) await checking;
      try {
        try {
          return (await transport.evalsha(s.sha1, keys, args)) as Reply;
        } catch (err) {
          if (!isNoScript(err)) throw err;
          return (await transport.eval(s.source, keys, args)) as Reply;
        }
      } catch (err) {
        // Sent and unanswered (a timeout, a connection lost mid-way): the script may have run.
        const maybe = !transport.notApplied?.(err);
        throw new StoreUnavailableError(err, transport.explain?.(err) ?? null, maybe);
      }
    });

  const outcomeOf = (r: Reply) => ({ outcome: String(r[0]), now: Number(r[1]) });

  return {
    kind: transport.kind,

    events: source,

    async acquireAny(refs, p) {
      const r = await run(
        ACQUIRE,
        [
          fenceKey,
          queueSeqKey,
          ...refs.flatMap((ref) => [
            lockKey(ref),
            queueKey(ref),
            queueUntilKey(ref),
            holdersKey(ref),
            historyKey(ref),
          ]),
          namesKey((refs[0] as LockRef).namespace),
          indexKey(refs[0] as LockRef),
        ],
        [
          p.tokenHash,
          p.holderId ?? "",
          p.ttlMs == null ? "" : String(p.ttlMs),
          p.reason ?? "",
          p.registeredOnly ? "1" : "",
          p.queueWindowMs == null ? "" : String(p.queueWindowMs),
          String(limits.waitersPerKey),
          p.mode === "shared" ? "s" : "x",
          String(p.limit),
          ...actorArgs(p.actor),
          ...refs.map(channelOf),
          ...refs.map((ref) => ref.key),
          ...indexArgs((refs[0] as LockRef).namespace),
        ],
      );
      const { outcome, now } = outcomeOf(r);
      const index = Number(r[r.length - 1]) - 1;
      const result = (o: AcquireOutcome): PoolOutcome => ({ ...o, index });
      if (outcome === "quota") return result(quotaOf(r, now));
      if (outcome === "granted")
        return result({ outcome, now, lease: leaseFrom(r), expired: Number(r[8]) || 0 });
      if (outcome === "retried") return result({ outcome, now, lease: leaseFrom(r) });
      if (outcome === "held")
        return result({ outcome, now, lease: leaseFrom(r), position: Number(r[8]) || 0 });
      if (outcome === "queued") {
        return result({ outcome, now, position: Number(r[8]) || 0, wakeAt: Number(r[9]) });
      }
      if (outcome === "limit") return result({ outcome, now, limit: Number(r[8]) });
      return result({ outcome, now } as AcquireOutcome);
    },

    async acquire(ref, p) {
      const { index: _index, ...outcome } = await this.acquireAny([ref], p);
      return outcome as AcquireOutcome;
    },

    // The exclusive lease's exp, and while shared holders hold it, how late their leases run.
    peek: (ref) =>
      guard(async () => {
        const { exp, sh } = unpackRecord(await transport.get(lockKey(ref)));
        return Number(sh) > 0 ? `${exp}|${sh}` : exp;
      }),

    async leave(ref, tokenHash, who) {
      await run(
        LEAVE,
        [queueKey(ref), queueUntilKey(ref), historyKey(ref), indexKey(ref)],
        [
          tokenHash,
          channelOf(ref),
          who?.holderId ?? "",
          ...actorArgs(who?.actor ?? null),
          ...indexArgs(ref.namespace),
        ],
      );
    },

    async history(ref) {
      const r = await run(
        HISTORY,
        [historyKey(ref), lockKey(ref), holdersKey(ref)],
        indexArgs(ref.namespace),
      );
      const entries = r
        .slice(1)
        .map((raw) => historyEntry(String(raw)))
        .filter((e): e is HistoryEntry => e !== null);
      return { now: Number(r[0]), entries: keptHistory(entries, Number(r[0]), limits) };
    },

    async list(namespace, opts) {
      const base = (kind: string) => `${prefix}:${kind}:${namespace}:`;
      const r = await run(
        LIST,
        [namesKey(namespace)],
        [base("lock"), base("queue"), base("holders"), opts.prefix, opts.after ?? "", String(opts.limit)],
      );
      const now = Number(r[0]);
      const keys: KeySummary[] = [];
      for (let i = 3; i + 10 <= r.length; i += 10) {
        const row = r.slice(i, i + 10);
        keys.push({
          key: String(row[0]),
          registered: row[1] === "1",
          waiting: Number(row[2]) || 0,
          holders: Number(row[3]) || 0,
          lease: row[4] === "" || row[4] == null ? null : leaseFrom(["held", now, ...row.slice(4)]),
        });
      }
      return { now, keys, more: r[1] === "1", last: str(r[2]) };
    },

    async renew(ref, p) {
      const r = await run(
        RENEW,
        [lockKey(ref), holdersKey(ref), indexKey(ref)],
        [p.tokenHash, String(p.ttlMs), channelOf(ref), ...indexArgs(ref.namespace)],
      );
      const { outcome, now } = outcomeOf(r);
      if (outcome === "renewed" || outcome === "held") return { outcome, now, lease: leaseFrom(r) };
      return { outcome, now } as RenewOutcome;
    },

    async release(ref, p) {
      const r = await run(
        RELEASE,
        [lockKey(ref), queueKey(ref), queueUntilKey(ref), holdersKey(ref), historyKey(ref), indexKey(ref)],
        [
          p.tokenHash ?? "",
          p.registeredOnly ? "1" : "",
          channelOf(ref),
          ...actorArgs(p.actor),
          ...indexArgs(ref.namespace),
        ],
      );
      const { outcome, now } = outcomeOf(r);
      if (outcome === "held") return { outcome, now, lease: leaseFrom(r) };
      if (outcome === "released") return { outcome, now, again: r[3] === "1", expired: Number(r[2]) || 0 };
      return { outcome, now } as ReleaseOutcome;
    },

    async inspect(ref, opts): Promise<InspectOutcome> {
      if (!opts?.watch) {
        // A plain read: judged here by the same rule as the scripts' live(), against Redis's TIME
        // read first; a lease that ends between TIME and the reads reads as held a moment longer.
        const full = opts?.waiting !== false;
        const snap = await guard(async () => {
          const checking = ensureSafe();
          if (checking) await checking;
          return transport.snapshot(lockKey(ref), full ? queueKey(ref) : null);
        });
        const now = Number(snap.time[0]) * 1000 + Math.floor(Number(snap.time[1]) / 1000);
        const record = unpackRecord(snap.record);
        const expiry = Number(record.exp);
        const exclusive =
          record.token && record.exp != null && (expiry === 0 || expiry > now)
            ? leaseFrom([
                "held",
                now,
                record.fence ?? 0,
                record.since ?? 0,
                expiry,
                record.holder ?? "",
                record.reason ?? "",
                "x",
              ])
            : null;
        const waiting = Number(snap.waiting) || 0;
        // Only a queue or live shared holders cost a second read (a lease that is neither needs none).
        const sharedLive = full && !exclusive && Number(record.sh) > now;
        const listed =
          waiting > 0 || sharedLive
            ? await guard(() =>
                transport.listing(
                  waiting > 0 ? { key: queueKey(ref), head: LISTED_WAITERS } : null,
                  sharedLive ? holdersKey(ref) : null,
                ),
              )
            : { queueHead: [], holders: [] };
        const shared = sharedLive ? sharedHolders(listed.holders, now) : [];
        const holders = exclusive ? [exclusive] : shared;
        return {
          now,
          lease: exclusive ?? lastToEnd(shared),
          holders,
          limit: shared.length > 0 ? Number(record.lim) || null : null,
          registered: record.cred != null,
          waiting,
          queue: listed.queueHead.map((m) => (m.startsWith("s:") ? "shared" : "exclusive")),
        };
      }
      const r = await run(INSPECT, [lockKey(ref), queueKey(ref), holdersKey(ref)], []);
      const { outcome, now } = outcomeOf(r);
      const lease = outcome === "held" ? leaseFrom(r) : null;
      return {
        now,
        lease,
        holders: lease ? [lease] : [],
        limit: null,
        registered: r[8] === "1",
        waiting: Number(r[9]) || 0,
        queue: [],
      };
    },

    async register(ref, p): Promise<RegisterOutcome> {
      const r = await run(
        REGISTER,
        [lockKey(ref), fenceKey, historyKey(ref), namesKey(ref.namespace), indexKey(ref)],
        [
          p.credentialHash,
          p.lock ? "1" : "",
          p.lock?.ttlMs == null ? "" : String(p.lock.ttlMs),
          p.lock?.holderId ?? "",
          ref.key,
          ...actorArgs(p.actor),
          ...indexArgs(ref.namespace),
        ],
      );
      const { outcome, now } = outcomeOf(r);
      if (outcome === "exists") return { outcome, now };
      if (outcome === "quota") return quotaOf(r, now);
      return { outcome: "created", now, lease: r.length > 2 ? leaseFrom(r) : null };
    },

    tokens: {
      put: (record: TokenRecord) =>
        guard(() => transport.hset(tokensKey, record.id, JSON.stringify(record))).then(() => {}),
      get: async (id) => {
        const raw = await guard(() => transport.hget(tokensKey, id));
        return raw == null ? null : (JSON.parse(raw) as TokenRecord);
      },
      list: async () =>
        (await guard(() => transport.hvals(tokensKey))).map((raw) => JSON.parse(raw) as TokenRecord),
      delete: async (id) => (await guard(() => transport.hdel(tokensKey, id))) > 0,
    },

    sessions: {
      // One hash per token (field: the id's hash; value: the session and when it began and ends),
      // trimmed to its newest SESSIONS_PER_TOKEN, and kept as long as its newest session lives.
      put: (tokenId, idHash, session, ttlMs) =>
        guard(async () => {
          const key = sessionKey(tokenId);
          const now = Date.now();
          await transport.hset(key, idHash, JSON.stringify({ ...session, since: now, until: now + ttlMs }));
          const kept = (await transport.hgetall(key)) as Record<string, string>;
          const oldest = Object.entries(kept)
            .map(([field, raw]) => ({
              field,
              since: Number((JSON.parse(raw) as { since?: number }).since) || 0,
            }))
            .sort((a, b) => b.since - a.since)
            .slice(SESSIONS_PER_TOKEN);
          for (const { field } of oldest) await transport.hdel(key, field);
          await transport.pexpire(key, ttlMs);
        }),
      get: async (tokenId, idHash) => {
        const raw = await guard(() => transport.hget(sessionKey(tokenId), idHash));
        const kept = raw == null ? null : (JSON.parse(raw) as UiSession & { until: number });
        if (!kept || kept.until <= Date.now()) return null;
        return { tokenId: kept.tokenId, secretHash: kept.secretHash, holdSecret: kept.holdSecret };
      },
      delete: (tokenId, idHash) => guard(() => transport.hdel(sessionKey(tokenId), idHash)).then(() => {}),
    },

    ping: () => guard(() => transport.ping()).then(() => {}),
    safety: () => guard(safety),
    close: async () => {
      await source.close();
      await transport.close();
    },
  };
}
