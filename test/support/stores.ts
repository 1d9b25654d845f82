/**
 * The three stores as the contract suite runs them: memory, a real redis-server over TCP, and the
 * real @upstash/redis client through the REST bridge to that same redis-server.
 */
import { randomBytes } from "node:crypto";
import { connectUpstash } from "../../server/backend.js";
import { createMemoryStore } from "../../server/stores/memory.js";
import { createRedisStore } from "../../server/stores/redis.js";
import { connectTcpRedis, tcpEvents, tcpTransport } from "../../server/stores/tcp.js";
import type { LockStore, StoreLimits } from "../../server/stores/types.js";
import { upstashTransport } from "../../server/stores/upstash.js";
import { upstashEvents } from "../../server/stores/upstash-events.js";
import { type RedisServerHandle, startRedisServer } from "./redis-server.js";
import { startUpstashBridge, type UpstashBridge } from "./upstash-bridge.js";

/** The app harness lives in app.ts; these stay here for the files that import them from here. */
export { ADMIN_TOKEN, testConfig } from "./app.js";

export const STORE_KINDS = ["memory", "redis", "upstash"] as const;
export type StoreKind = (typeof STORE_KINDS)[number];

/** One redis-server (and bridge) per test file; each store gets its own key prefix. */
export interface StoreBackends {
  redis: RedisServerHandle | null;
  bridge: UpstashBridge | null;
  open(kind: StoreKind, opts?: { prefix?: string; timeoutMs?: number; limits?: StoreLimits }): LockStore;
  close(): Promise<void>;
}

export async function startBackends(kinds: readonly StoreKind[]): Promise<StoreBackends> {
  const needsRedis = kinds.some((k) => k !== "memory");
  const redis = needsRedis ? await startRedisServer() : null;
  const bridge =
    redis && kinds.includes("upstash") ? await startUpstashBridge({ redisUrl: redis.url }) : null;
  const opened: LockStore[] = [];
  return {
    redis,
    bridge,
    open(kind, opts = {}) {
      const prefix = opts.prefix ?? `t${randomBytes(4).toString("hex")}`;
      const timeoutMs = opts.timeoutMs ?? 2000;
      let store: LockStore;
      const limits = opts.limits;
      if (kind === "memory") store = createMemoryStore({ limits });
      else if (kind === "redis") {
        const client = connectTcpRedis(redis!.url, timeoutMs);
        store = createRedisStore(tcpTransport(client, timeoutMs), prefix, tcpEvents(client), { limits });
      } else
        store = createRedisStore(
          upstashTransport(connectUpstash(bridge!.url, bridge!.token, timeoutMs), bridge!.url),
          prefix,
          upstashEvents({ url: bridge!.url, token: bridge!.token, timeoutMs }),
          { limits },
        );
      opened.push(store);
      return store;
    },
    async close() {
      await Promise.all(opened.map((s) => s.close()));
      await bridge?.close();
      await redis?.stop();
    },
  };
}
