/** What the Redis store needs of a Redis: the few commands each transport adapts its client to. */
import type { LockEvents, LockRef, StoreFailureHint } from "../types.js";

/** The few commands the store needs; each transport adapts its client to this. */
export interface RedisTransport {
  readonly kind: "memory" | "redis" | "upstash";
  /**
   * A script; `writes`: its answer may grant or end a lease, so (with LSS_REDIS_MIN_REPLICAS) it
   * is answered only once enough replicas have it.
   */
  evalsha(sha1: string, keys: string[], args: string[], writes?: boolean): Promise<unknown>;
  eval(source: string, keys: string[], args: string[], writes?: boolean): Promise<unknown>;
  hset(key: string, field: string, value: string): Promise<unknown>;
  hget(key: string, field: string): Promise<string | null>;
  get(key: string): Promise<string | null>;
  hgetall(key: string): Promise<Record<string, string> | null>;
  pexpire(key: string, ms: number): Promise<unknown>;
  hvals(key: string): Promise<string[]>;
  /** HMGET: each field's value, null where there is none. */
  hmget(key: string, fields: string[]): Promise<Array<string | null>>;
  hdel(key: string, field: string): Promise<number>;
  /** SET key value PX ttlMs NX: whether it was set (the key did not exist). */
  setIfAbsent(key: string, value: string, ttlMs: number): Promise<boolean>;
  del(key: string): Promise<unknown>;
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
  /** The packed record (record.ts), or null. */
  record: string | null;
  /** ZCARD of the queue, when asked for. */
  waiting: number | null;
}

export interface Listing {
  queueHead: string[];
  /** field, value, field, value… */
  holders: string[];
}

/**
 * Where a Redis store's lock events come from, given how a key names its channel: one PSUBSCRIBE
 * per server instance on TCP (tcp.ts), an SSE subscription per watch on Upstash (upstash-events.ts).
 */
export type EventSource = (channels: { of: (ref: LockRef) => string; pattern: string }) => LockEvents;
