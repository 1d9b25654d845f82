/**
 * What a store keeps, read from its keyspace the same way on every store: redis-server's through
 * an ioredis connection of the test's, the memory store's through its own command hook. Both hold
 * the same keys (redisKeys), written by the same scripts.
 */
import type { Redis } from "ioredis";
import { MEMORY_PREFIX, type MemoryStore } from "../../server/stores/memory.js";
import { redisKeys } from "../../server/stores/redis/keys.js";
import type { LockStore } from "../../server/stores/types.js";
import type { StoreKind } from "./stores.js";

export interface StoreKeyspace {
  keys: ReturnType<typeof redisKeys>;
  /** One command, as redis-cli would send it. */
  command(name: string, ...args: Array<string | number>): Promise<unknown>;
  /** The number a command answers (HLEN, ZCARD, EXISTS…). */
  count(name: string, ...args: Array<string | number>): Promise<number>;
  /** The keys that start with `prefix` and exist now. */
  keysStarting(prefix: string): Promise<string[]>;
}

export function keyspaceOf(kind: StoreKind, store: LockStore, prefix: string, redis: Redis): StoreKeyspace {
  const command =
    kind === "memory"
      ? async (name: string, ...args: Array<string | number>) => (store as MemoryStore).command(name, ...args)
      : (name: string, ...args: Array<string | number>) => redis.call(name, ...args);
  return {
    keys: redisKeys(kind === "memory" ? MEMORY_PREFIX : prefix),
    command,
    count: async (name, ...args) => Number(await command(name, ...args)),
    keysStarting: async (start) =>
      kind === "memory"
        ? (store as MemoryStore).keys().filter((k) => k.startsWith(start))
        : ((await redis.keys(`${start}*`)) as string[]),
  };
}
