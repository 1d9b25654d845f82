/**
 * The Redis store: the scripts of redis-scripts.ts over either transport (TCP or Upstash REST).
 * Each lock operation is one EVALSHA (falling back to EVAL once when Redis lost the script cache).
 */
import { createEventHub } from "./events.js";
import { ACQUIRE, INSPECT, LEAVE, type LuaScript, REGISTER, RELEASE, RENEW } from "./redis-scripts.js";
import {
  type AcquireOutcome,
  type InspectOutcome,
  type Lease,
  type LockRef,
  type LockStore,
  type RegisterOutcome,
  type ReleaseOutcome,
  type RenewOutcome,
  type StoreFailureHint,
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
  close(): Promise<void>;
  /** Names the variable to check when a failure looks like a configuration mistake. */
  explain?(err: unknown): StoreFailureHint | null;
}

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

/** Where lock events come from: one subscription per server instance (TCP Redis only). */
export type Subscribe = (channel: string, onMessage: (message: string) => void) => () => Promise<void>;

export function createRedisStore(
  transport: RedisTransport,
  prefix = "lss",
  subscribe?: Subscribe,
): LockStore {
  const fenceKey = `${prefix}:fence`;
  const tokensKey = `${prefix}:tokens`;
  const queueSeqKey = `${prefix}:queue-seq`;
  // Namespaces cannot contain ':' (see auth), so these keys are unambiguous.
  const lockKey = (ref: LockRef) => `${prefix}:lock:${ref.namespace}:${ref.key}`;
  const queueKey = (ref: LockRef) => `${prefix}:queue:${ref.namespace}:${ref.key}`;
  const queueUntilKey = (ref: LockRef) => `${prefix}:queue-until:${ref.namespace}:${ref.key}`;

  // Scripts publish only where someone listens (Upstash's REST API has no subscriptions).
  const channel = subscribe ? `${prefix}:events` : "";
  let unsubscribe: (() => Promise<void>) | null = null;
  const hub = subscribe
    ? createEventHub(lockKey, async () => {
        await unsubscribe?.();
      })
    : null;
  if (subscribe && hub) {
    // "r <first waiter or -> <its deadline> <lock key>" (released), "e <expiry ms> <lock key>".
    unsubscribe = subscribe(channel, (message) => {
      const parts = message.split(" ");
      if (parts[0] === "r") {
        const next = parts[1] === "-" || !parts[1] ? null : parts[1];
        hub.emit(parts.slice(3).join(" "), { kind: "released", next, nextUntil: Number(parts[2]) || null });
      } else if (parts[0] === "e") {
        hub.emit(parts.slice(2).join(" "), { kind: "expiry", expiresAt: Number(parts[1]) || null });
      }
    });
  }

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

  const run = (s: LuaScript, keys: string[], args: string[]): Promise<Reply> =>
    guard(async () => {
      try {
        return (await transport.evalsha(s.sha1, keys, args)) as Reply;
      } catch (err) {
        if (!isNoScript(err)) throw err;
        return (await transport.eval(s.source, keys, args)) as Reply;
      }
    });

  const outcomeOf = (r: Reply) => ({ outcome: String(r[0]), now: Number(r[1]) });

  return {
    kind: transport.kind,

    events: hub,

    async acquire(ref, p) {
      const r = await run(
        ACQUIRE,
        [lockKey(ref), fenceKey, queueKey(ref), queueUntilKey(ref), queueSeqKey],
        [
          p.tokenHash,
          p.holderId ?? "",
          p.ttlMs == null ? "" : String(p.ttlMs),
          p.reason ?? "",
          p.registeredOnly ? "1" : "",
          p.queueWindowMs == null ? "" : String(p.queueWindowMs),
          channel,
        ],
      );
      const { outcome, now } = outcomeOf(r);
      if (outcome === "granted" || outcome === "retried") return { outcome, now, lease: leaseFrom(r) };
      if (outcome === "held") return { outcome, now, lease: leaseFrom(r), position: Number(r[7]) || 0 };
      if (outcome === "queued") return { outcome, now, position: Number(r[7]) || 0, wakeAt: Number(r[8]) };
      return { outcome, now } as AcquireOutcome;
    },

    peek: (ref) => guard(() => transport.hget(lockKey(ref), "exp")),

    async leave(ref, tokenHash) {
      await run(LEAVE, [queueKey(ref), queueUntilKey(ref), lockKey(ref)], [tokenHash, channel]);
    },

    async renew(ref, p) {
      const r = await run(RENEW, [lockKey(ref)], [p.tokenHash, String(p.ttlMs), channel]);
      const { outcome, now } = outcomeOf(r);
      if (outcome === "renewed" || outcome === "held") return { outcome, now, lease: leaseFrom(r) };
      return { outcome, now } as RenewOutcome;
    },

    async release(ref, p) {
      const r = await run(
        RELEASE,
        [lockKey(ref), queueKey(ref), queueUntilKey(ref)],
        [p.tokenHash ?? "", p.registeredOnly ? "1" : "", channel],
      );
      const { outcome, now } = outcomeOf(r);
      if (outcome === "held") return { outcome, now, lease: leaseFrom(r) };
      return { outcome, now } as ReleaseOutcome;
    },

    async inspect(ref): Promise<InspectOutcome> {
      const r = await run(INSPECT, [lockKey(ref), queueKey(ref)], []);
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
        [lockKey(ref), fenceKey],
        [
          p.credentialHash,
          p.lock ? "1" : "",
          p.lock?.ttlMs == null ? "" : String(p.lock.ttlMs),
          p.lock?.holderId ?? "",
        ],
      );
      const { outcome, now } = outcomeOf(r);
      if (outcome === "exists") return { outcome, now };
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
    close: async () => {
      await hub?.close();
      await transport.close();
    },
  };
}
