/**
 * The memory store, for trying LSS out: the Redis store over an in-process keyspace, running the
 * very scripts Redis runs (local/). So a lock operation is decided once, in the scripts, on every
 * store; nothing survives a restart.
 */
import { createKeyspace, type Reply } from "./local/keyspace.js";
import { localScripts } from "./local/lua.js";
import { localEvents, localTransport } from "./local/transport.js";
import { createRedisStore } from "./redis/store.js";
import type { LockStore, StoreLimits } from "./types.js";

/** The key prefix of the memory store's keys (as LSS_KEY_PREFIX is Redis's). */
export const MEMORY_PREFIX = "mem";

export interface MemoryStore extends LockStore {
  /** A command on its keyspace, as redis-cli would send it (for tests of what the store keeps). */
  command(name: string, ...args: Array<string | number>): Reply;
  /** The keys it holds now. */
  keys(): string[];
}

export function createMemoryStore(opts: { clock?: () => number; limits?: StoreLimits } = {}): MemoryStore {
  const events = localEvents();
  const keyspace = createKeyspace(opts.clock ?? Date.now, events.deliver);
  const store = createRedisStore(
    localTransport(keyspace, localScripts(keyspace)),
    MEMORY_PREFIX,
    events.source,
    {
      limits: opts.limits,
    },
  );
  return Object.assign(store, {
    command: (name: string, ...args: Array<string | number>) => keyspace.command(name, args.map(String)),
    keys: () => keyspace.keys(),
  });
}
