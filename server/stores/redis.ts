/**
 * The Redis store: the scripts of redis-scripts.ts over either transport (TCP or Upstash REST).
 * Each lock operation is one EVALSHA (falling back to EVAL once when Redis lost the script cache).
 */
import { sha256Hex } from "../crypto.js";
import { ACQUIRE, INSPECT, LEAVE, type LuaScript, REGISTER, RELEASE, RENEW } from "./redis-scripts.js";
import {
  type AcquireOutcome,
  DEFAULT_LIMITS,
  type InspectOutcome,
  type Lease,
  type LockEvents,
  type LockRef,
  type LockStore,
  type QuotaOutcome,
  type RegisterOutcome,
  type ReleaseOutcome,
  type RenewOutcome,
  type StoreFailureHint,
  type StoreLimits,
  type StoreSafety,
  StoreUnavailableError,
  type TokenRecord,
} from "./types.js";

/** The few commands the store needs; each transport adapts its client to this. */
export interface RedisTransport {
  readonly kind: "redis" | "upstash";
  evalsha(sha1: string, keys: string[], args: string[]): Promise<unknown>;
  eval(source: string, keys: string[], args: string[]): Promise<unknown>;
  hset(key: string, field: string, value: string): Promise<unknown>;
  hget(key: string, field: string): Promise<string | null>;
  hvals(key: string): Promise<string[]>;
  hdel(key: string, field: string): Promise<number>;
  ping(): Promise<unknown>;
  /** Redis's maxmemory-policy, or null where it cannot be read (Upstash, a CONFIG-less managed Redis). */
  evictionPolicy(): Promise<string | null>;
  /**
   * TIME, HMGET of a lock's fields and (with a queue key) ZCARD, in one round trip (a pipeline, not
   * a script: read-only, so it spares the EVALSHA). Raw replies, strings as Redis sent them.
   */
  snapshot(lockKey: string, fields: readonly string[], queueKey: string | null): Promise<Snapshot>;
  close(): Promise<void>;
  /** Whether a failed command certainly did not run (never sent, or answered with an error). */
  notApplied?(err: unknown): boolean;
  /** Names the variable to check when a failure looks like a configuration mistake. */
  explain?(err: unknown): StoreFailureHint | null;
}

export interface Snapshot {
  time: [string | number, string | number];
  values: Array<string | null>;
  waiting: number | null;
}

/** The fields a plain status reads, in the order of redis-scripts.ts's HMGET. */
const STATUS_FIELDS = ["token", "exp", "fence", "since", "holder", "reason", "cred"] as const;

const isNoScript = (err: unknown) => err instanceof Error && /NOSCRIPT/i.test(err.message);

type Reply = Array<string | number | null>;

const str = (v: unknown): string | null => (v == null || v === "" ? null : String(v));

/** fence, since, exp, holder, reason at positions 2..6 of a script reply. */
const leaseFrom = (r: Reply): Lease => {
  const exp = Number(r[4]);
  return {
    fencingToken: Number(r[2]),
    acquiredAt: Number(r[3]),
    expiresAt: exp === 0 ? null : exp,
    holderId: str(r[5]),
    reason: str(r[6]),
  };
};

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
  limits?: StoreLimits;
}

export function createRedisStore(
  transport: RedisTransport,
  prefix: string,
  events: EventSource,
  opts: RedisStoreOptions = {},
): LockStore {
  const fenceKey = `${prefix}:fence`;
  const tokensKey = `${prefix}:tokens`;
  const queueSeqKey = `${prefix}:queue-seq`;
  // Namespaces cannot contain ':' (see auth), so these keys are unambiguous.
  const lockKey = (ref: LockRef) => `${prefix}:lock:${ref.namespace}:${ref.key}`;
  const queueKey = (ref: LockRef) => `${prefix}:queue:${ref.namespace}:${ref.key}`;
  const queueUntilKey = (ref: LockRef) => `${prefix}:queue-until:${ref.namespace}:${ref.key}`;
  // One channel per key, named by a hash: keys may hold any character, Upstash puts the channel in a URL.
  const channelOf = (ref: LockRef) => `${prefix}:ev:${sha256Hex(lockKey(ref)).slice(0, 32)}`;
  const limits = opts.limits ?? DEFAULT_LIMITS;
  // The namespace's index of records (see redis-scripts.ts): every script's last key and ARGV.
  const indexKey = (ref: LockRef) => `${prefix}:ns:${ref.namespace}`;
  const indexArgs = (ref: LockRef) => [
    ref.key,
    String(limits.locksPerNamespace),
    String(limits.lockRetentionMs),
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
    const policy = await transport.evictionPolicy();
    const evicting = policy != null && !KEEPS_EVERY_KEY.has(policy);
    const problem = evicting
      ? `Redis may evict lock records (maxmemory-policy ${policy}), which could let two jobs hold one lock: ` +
        "set maxmemory-policy noeviction, or LSS_ALLOW_EVICTION=true to accept the risk"
      : null;
    const result = { evictionPolicy: policy, safe: !evicting || !!opts.allowEviction, problem };
    checked = { at: Date.now(), safety: result };
    return result;
  };
  const ensureSafe = async () => {
    const s = await safety();
    if (!s.safe)
      throw new StoreUnavailableError(new Error("unsafe store"), {
        kind: "unsafe",
        message: s.problem ?? "",
      });
  };

  const run = (s: LuaScript, keys: string[], args: string[]): Promise<Reply> =>
    guard(async () => {
      await ensureSafe();
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

    async acquire(ref, p) {
      const r = await run(
        ACQUIRE,
        [lockKey(ref), fenceKey, queueKey(ref), queueUntilKey(ref), queueSeqKey, indexKey(ref)],
        [
          p.tokenHash,
          p.holderId ?? "",
          p.ttlMs == null ? "" : String(p.ttlMs),
          p.reason ?? "",
          p.registeredOnly ? "1" : "",
          p.queueWindowMs == null ? "" : String(p.queueWindowMs),
          channelOf(ref),
          String(limits.waitersPerKey),
          ...indexArgs(ref),
        ],
      );
      const { outcome, now } = outcomeOf(r);
      if (outcome === "quota") return quotaOf(r, now);
      if (outcome === "granted" || outcome === "retried") return { outcome, now, lease: leaseFrom(r) };
      if (outcome === "held") return { outcome, now, lease: leaseFrom(r), position: Number(r[7]) || 0 };
      if (outcome === "queued") return { outcome, now, position: Number(r[7]) || 0, wakeAt: Number(r[8]) };
      return { outcome, now } as AcquireOutcome;
    },

    peek: (ref) => guard(() => transport.hget(lockKey(ref), "exp")),

    async leave(ref, tokenHash) {
      await run(LEAVE, [queueKey(ref), queueUntilKey(ref)], [tokenHash, channelOf(ref)]);
    },

    async renew(ref, p) {
      const r = await run(
        RENEW,
        [lockKey(ref), indexKey(ref)],
        [p.tokenHash, String(p.ttlMs), channelOf(ref), ...indexArgs(ref)],
      );
      const { outcome, now } = outcomeOf(r);
      if (outcome === "renewed" || outcome === "held") return { outcome, now, lease: leaseFrom(r) };
      return { outcome, now } as RenewOutcome;
    },

    async release(ref, p) {
      const r = await run(
        RELEASE,
        [lockKey(ref), queueKey(ref), queueUntilKey(ref), indexKey(ref)],
        [p.tokenHash ?? "", p.registeredOnly ? "1" : "", channelOf(ref), ...indexArgs(ref)],
      );
      const { outcome, now } = outcomeOf(r);
      if (outcome === "held") return { outcome, now, lease: leaseFrom(r) };
      return { outcome, now } as ReleaseOutcome;
    },

    async inspect(ref, opts): Promise<InspectOutcome> {
      if (!opts?.watch) {
        // A plain read: judged here by the same rule as the scripts' live(), against Redis's TIME
        // read first; a lease that ends between TIME and HMGET reads as held a moment longer.
        const snap = await guard(async () => {
          await ensureSafe();
          return transport.snapshot(
            lockKey(ref),
            STATUS_FIELDS,
            opts?.waiting === false ? null : queueKey(ref),
          );
        });
        const now = Number(snap.time[0]) * 1000 + Math.floor(Number(snap.time[1]) / 1000);
        const [token, exp, fence, since, holder, reason, cred] = snap.values;
        const expiry = Number(exp);
        const live = !!token && exp != null && (expiry === 0 || expiry > now);
        return {
          now,
          lease: live
            ? leaseFrom(["held", now, fence ?? 0, since ?? 0, expiry, holder ?? "", reason ?? ""])
            : null,
          registered: cred != null,
          waiting: Number(snap.waiting) || 0,
        };
      }
      const r = await run(INSPECT, [lockKey(ref), queueKey(ref), indexKey(ref)], indexArgs(ref));
      const { outcome, now } = outcomeOf(r);
      return {
        now,
        lease: outcome === "held" ? leaseFrom(r) : null,
        registered: r[7] === "1",
        waiting: Number(r[8]) || 0,
      };
    },

    async register(ref, p): Promise<RegisterOutcome> {
      const r = await run(
        REGISTER,
        [lockKey(ref), fenceKey, indexKey(ref)],
        [
          p.credentialHash,
          p.lock ? "1" : "",
          p.lock?.ttlMs == null ? "" : String(p.lock.ttlMs),
          p.lock?.holderId ?? "",
          ...indexArgs(ref),
        ],
      );
      const { outcome, now } = outcomeOf(r);
      if (outcome === "exists") return { outcome, now };
      if (outcome === "quota") return quotaOf(r, now);
      return { outcome: "created", now, lease: p.lock ? leaseFrom(r) : null };
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

    ping: () => guard(() => transport.ping()).then(() => {}),
    safety: () => guard(safety),
    close: async () => {
      await source.close();
      await transport.close();
    },
  };
}
