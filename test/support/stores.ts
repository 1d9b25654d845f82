/**
 * The three stores as the contract suite runs them: memory, a real redis-server over TCP, and the
 * real @upstash/redis client through the REST bridge to that same redis-server. Each is opened as
 * the server opens its store (server/backend.ts), from a config that names it.
 */
import { randomBytes } from "node:crypto";
import { openBackend } from "../../server/backend.js";
import type { RedisTopology, StoreConfig } from "../../server/backend-types.js";
import { type Config, loadConfig } from "../../server/config.js";
import { DEFAULT_LIMITS, type LockStore, type StoreLimits } from "../../server/stores/types.js";
import { type RedisServerHandle, startRedisServer } from "./redis-server.js";
import { type RedisCluster, startRedisCluster } from "./redis-topology.js";
import { startUpstashBridge, type UpstashBridge } from "./upstash-bridge.js";

/** The app harness lives in app.ts; these stay here for the files that import them from here. */
export { ADMIN_TOKEN, testConfig } from "./app.js";

export const STORE_KINDS = ["memory", "redis", "upstash"] as const;
/** The stores, and a three-node Redis Cluster (one namespace's keys in one slot). */
export const WITH_CLUSTER = [...STORE_KINDS, "cluster"] as const;
export type StoreKind = (typeof WITH_CLUSTER)[number];

export interface OpenOptions {
  /** The store's key prefix (LSS_KEY_PREFIX); a new one each time by default. */
  prefix?: string;
  timeoutMs?: number;
  limits?: StoreLimits;
  /** LSS_ALLOW_EVICTION. */
  allowEviction?: boolean;
  /** LSS_EVICTION_POLICY. */
  evictionPolicy?: string;
  /**
   * The store's URL instead of the shared one: REDIS_URL (another user of the same redis-server),
   * or UPSTASH_REDIS_REST_URL (a proxy in front of the bridge).
   */
  url?: string;
}

/** One redis-server (and bridge) per test file; each store gets its own key prefix. */
export interface StoreBackends {
  redis: RedisServerHandle | null;
  bridge: UpstashBridge | null;
  cluster: RedisCluster | null;
  open(kind: StoreKind, opts?: OpenOptions): LockStore;
  close(): Promise<void>;
}

/** REDIS_CLUSTER_NODES as the server reads it. */
const clusterTopology = (cluster: RedisCluster): RedisTopology => ({
  mode: "cluster",
  nodes: cluster.nodes.map((n) => ({ host: "127.0.0.1", port: n.port })),
  auth: { username: null, password: null, tls: false },
});

/** The store at another URL (opts.url), or as named. */
function withUrl(store: StoreConfig, url: string | undefined): StoreConfig {
  if (!url || store.kind === "memory") return store;
  return store.kind === "redis" ? { ...store, topology: { mode: "single", url } } : { ...store, url };
}

export async function startBackends(kinds: readonly StoreKind[]): Promise<StoreBackends> {
  const needsRedis = kinds.some((k) => k === "redis" || k === "upstash");
  const cluster = kinds.includes("cluster") ? await startRedisCluster() : null;
  const redis = needsRedis ? await startRedisServer() : null;
  const bridge =
    redis && kinds.includes("upstash") ? await startUpstashBridge({ redisUrl: redis.url }) : null;
  const defaults = loadConfig({});
  const storeConfig = (kind: StoreKind): StoreConfig =>
    kind === "memory"
      ? { kind }
      : kind === "redis"
        ? { kind, topology: { mode: "single", url: redis!.url }, replicaAcks: null }
        : kind === "cluster"
          ? { kind: "redis", topology: clusterTopology(cluster!), replicaAcks: null }
          : { kind, url: bridge!.url, token: bridge!.token };
  const opened: LockStore[] = [];
  return {
    redis,
    bridge,
    cluster,
    open(kind, opts = {}) {
      const named = storeConfig(kind);
      const config: Config = {
        ...defaults,
        store: withUrl(named, opts.url),
        keyPrefix: opts.prefix ?? `t${randomBytes(4).toString("hex")}`,
        storeTimeoutMs: opts.timeoutMs ?? 2000,
        limits: opts.limits ?? DEFAULT_LIMITS,
        allowEviction: opts.allowEviction ?? false,
        declaredEvictionPolicy: opts.evictionPolicy ?? null,
        rateLimitPerMinute: null,
      };
      const { store } = openBackend(config);
      opened.push(store);
      return store;
    },
    async close() {
      await Promise.all(opened.map((s) => s.close()));
      await bridge?.close();
      await redis?.stop();
      await cluster?.stop();
    },
  };
}
