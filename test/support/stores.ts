/**
 * The three stores as the contract suite runs them: memory, a real redis-server over TCP, and the
 * real @upstash/redis client through the REST bridge to that same redis-server.
 */
import { randomBytes } from "node:crypto";
import { type AppDeps, createApp } from "../../server/app.js";
import { connectUpstash } from "../../server/backend.js";
import { createMemoryStore } from "../../server/stores/memory.js";
import { createRedisStore } from "../../server/stores/redis.js";
import { connectTcpRedis, tcpEvents, tcpTransport } from "../../server/stores/tcp.js";
import type { LockStore, StoreLimits } from "../../server/stores/types.js";
import { upstashTransport } from "../../server/stores/upstash.js";
import { upstashEvents } from "../../server/stores/upstash-events.js";
import { type RedisServerHandle, startRedisServer } from "./redis-server.js";
import { startUpstashBridge, type UpstashBridge } from "./upstash-bridge.js";

export const STORE_KINDS = ["memory", "redis", "upstash"] as const;
export type StoreKind = (typeof STORE_KINDS)[number];

export const ADMIN_TOKEN = "admin-token-for-tests-0123456789";

export const testConfig = (overrides: Partial<AppDeps["config"]> = {}): AppDeps["config"] => ({
  maxTtlMs: 86_400_000,
  adminToken: ADMIN_TOKEN,
  locksApiAuth: "open",
  tokenCacheMs: 10_000,
  trustProxy: 0,
  maxBodyBytes: 16 * 1024,
  ...overrides,
});

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

/** An in-process app on a store, with a small JSON request helper. */
export function appOn(store: LockStore, config = testConfig()) {
  const app = createApp({ store, rateLimiter: null, config });
  const call = async (method: string, path: string, body?: unknown, token: string | null = ADMIN_TOKEN) => {
    const headers: Record<string, string> = {};
    if (token) headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const res = await app.request(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    // biome-ignore lint/suspicious/noExplicitAny: test bodies are inspected field by field
    const json: any = text ? JSON.parse(text) : null;
    return { status: res.status, body: json, headers: res.headers };
  };
  return { app, call };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
