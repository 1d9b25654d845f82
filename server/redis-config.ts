/**
 * The Redis part of the environment: which store (REDIS_URL, REDIS_SENTINELS, REDIS_CLUSTER_NODES,
 * or Upstash), the nodes' credentials, and how many replicas must have a write before it is
 * answered. Every mistake names its variable.
 */
import { z } from "zod";
import type { HostPort, RedisAuth, ReplicaAcks, StoreConfig } from "./backend-types.js";

export class RedisConfigError extends Error {
  override name = "RedisConfigError";
}

const hostPort = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})$/;

/** "host:port,host:port" → the list, or the reason it is not one. */
function hostPorts(name: string, value: string): HostPort[] {
  const list = value.split(",").map((s) => s.trim());
  return list.map((entry) => {
    const match = hostPort.exec(entry);
    const port = Number(match?.[2]);
    if (!match?.[1] || port < 1 || port > 65535)
      throw new RedisConfigError(`${name} must be host:port pairs separated by commas, not "${entry}"`);
    return { host: match[1].replace(/^\[|\]$/g, ""), port };
  });
}

export const redisSchema = {
  REDIS_URL: z
    .url({ protocol: /^rediss?$/, error: "REDIS_URL must be a redis:// or rediss:// URL" })
    .optional(),
  REDIS_SENTINELS: z.string().optional(),
  REDIS_SENTINEL_MASTER: z
    .string()
    .regex(/^[A-Za-z0-9_.-]{1,128}$/, "REDIS_SENTINEL_MASTER must be the name the sentinels monitor")
    .optional(),
  REDIS_SENTINEL_PASSWORD: z.string().optional(),
  REDIS_CLUSTER_NODES: z.string().optional(),
  REDIS_USERNAME: z.string().optional(),
  REDIS_PASSWORD: z.string().optional(),
  REDIS_TLS: z
    .enum(["true", "false"], { error: "REDIS_TLS must be true or false" })
    .transform((v) => v === "true")
    .optional(),
  UPSTASH_REDIS_REST_URL: z
    .url({ protocol: /^https?$/, error: "UPSTASH_REDIS_REST_URL must be an http(s) URL" })
    .optional(),
  UPSTASH_REDIS_REST_TOKEN: z.string().min(1).optional(),
  // What Upstash from Vercel's Marketplace sets: the same pair under other names (see vercelPair).
  KV_REST_API_URL: z
    .url({ protocol: /^https?$/, error: "KV_REST_API_URL must be an http(s) URL" })
    .optional(),
  KV_REST_API_TOKEN: z.string().min(1).optional(),
  LSS_REDIS_MIN_REPLICAS: z
    .string()
    .regex(/^\d+$/, "LSS_REDIS_MIN_REPLICAS must be a whole number")
    .transform(Number)
    .pipe(z.number().max(16, "LSS_REDIS_MIN_REPLICAS must be at most 16"))
    .optional(),
  LSS_REDIS_REPLICA_TIMEOUT_MS: z
    .string()
    .regex(/^\d+$/, "LSS_REDIS_REPLICA_TIMEOUT_MS must be a whole number")
    .transform(Number)
    .pipe(z.number().min(10, "LSS_REDIS_REPLICA_TIMEOUT_MS must be at least 10"))
    .optional(),
};

const redisObject = z.object(redisSchema);
type RedisEnv = z.infer<typeof redisObject>;

const STORE_VARIABLES = [
  "REDIS_URL",
  "REDIS_SENTINELS",
  "REDIS_CLUSTER_NODES",
  "UPSTASH_REDIS_REST_URL",
] as const;

function authOf(e: RedisEnv): RedisAuth {
  return {
    username: e.REDIS_USERNAME ?? null,
    password: e.REDIS_PASSWORD ?? null,
    tls: e.REDIS_TLS ?? false,
  };
}

function chosenStore(e: RedisEnv): StoreConfig {
  if (!!e.UPSTASH_REDIS_REST_URL !== !!e.UPSTASH_REDIS_REST_TOKEN)
    throw new RedisConfigError("UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN must be set together");
  const chosen = STORE_VARIABLES.filter((name) => e[name] !== undefined);
  if (chosen.length > 1) throw new RedisConfigError(`set one of ${chosen.join(", ")}, not ${chosen.length}`);
  const nodeSettings = (["REDIS_USERNAME", "REDIS_PASSWORD", "REDIS_TLS"] as const).filter(
    (n) => e[n] !== undefined,
  );
  if (nodeSettings.length && !e.REDIS_SENTINELS && !e.REDIS_CLUSTER_NODES)
    throw new RedisConfigError(
      `${nodeSettings.join(", ")} apply to REDIS_SENTINELS and REDIS_CLUSTER_NODES` +
        (e.REDIS_URL ? ": put the credentials in REDIS_URL (rediss:// for TLS)" : ", and neither is set"),
    );
  if (!!e.REDIS_SENTINELS !== !!e.REDIS_SENTINEL_MASTER)
    throw new RedisConfigError(
      "REDIS_SENTINELS and REDIS_SENTINEL_MASTER (the name the sentinels monitor the primary by) must be set together",
    );
  if (e.REDIS_SENTINEL_PASSWORD && !e.REDIS_SENTINELS)
    throw new RedisConfigError("REDIS_SENTINEL_PASSWORD is set but REDIS_SENTINELS is not");
  const replicaAcks = null;
  if (e.UPSTASH_REDIS_REST_URL && e.UPSTASH_REDIS_REST_TOKEN)
    return { kind: "upstash", url: e.UPSTASH_REDIS_REST_URL, token: e.UPSTASH_REDIS_REST_TOKEN };
  if (e.REDIS_URL) return { kind: "redis", topology: { mode: "single", url: e.REDIS_URL }, replicaAcks };
  if (e.REDIS_SENTINELS && e.REDIS_SENTINEL_MASTER)
    return {
      kind: "redis",
      topology: {
        mode: "sentinel",
        sentinels: hostPorts("REDIS_SENTINELS", e.REDIS_SENTINELS),
        master: e.REDIS_SENTINEL_MASTER,
        sentinelPassword: e.REDIS_SENTINEL_PASSWORD ?? null,
        auth: authOf(e),
      },
      replicaAcks,
    };
  if (e.REDIS_CLUSTER_NODES)
    return {
      kind: "redis",
      topology: {
        mode: "cluster",
        nodes: hostPorts("REDIS_CLUSTER_NODES", e.REDIS_CLUSTER_NODES),
        auth: authOf(e),
      },
      replicaAcks,
    };
  return { kind: "memory" };
}

/** How many replicas must have a write (LSS_REDIS_MIN_REPLICAS), within how long; null: none. */
function replicaAcksOf(e: RedisEnv, store: StoreConfig, storeTimeoutMs: number): ReplicaAcks | null {
  const min = e.LSS_REDIS_MIN_REPLICAS ?? 0;
  const timeoutMs = e.LSS_REDIS_REPLICA_TIMEOUT_MS ?? Math.min(500, Math.floor(storeTimeoutMs / 2));
  if (e.LSS_REDIS_REPLICA_TIMEOUT_MS !== undefined && min === 0)
    throw new RedisConfigError("LSS_REDIS_REPLICA_TIMEOUT_MS is set but LSS_REDIS_MIN_REPLICAS is not");
  if (min === 0) return null;
  if (store.kind === "memory")
    throw new RedisConfigError(
      "LSS_REDIS_MIN_REPLICAS needs a Redis with replicas: set REDIS_URL, REDIS_SENTINELS or REDIS_CLUSTER_NODES",
    );
  if (store.kind === "upstash")
    throw new RedisConfigError(
      "LSS_REDIS_MIN_REPLICAS is for a TCP Redis (REDIS_URL, REDIS_SENTINELS or REDIS_CLUSTER_NODES): " +
        "on Upstash, replication is Upstash's own (see docs/guarantees.md)",
    );
  if (timeoutMs >= storeTimeoutMs)
    throw new RedisConfigError(
      `LSS_REDIS_REPLICA_TIMEOUT_MS (${timeoutMs}) must be below LSS_STORE_TIMEOUT_MS (${storeTimeoutMs}): ` +
        "a write waits for its replicas within the time a store call may take",
    );
  return { min, timeoutMs };
}

/**
 * Upstash added from Vercel's Marketplace names its REST pair KV_REST_API_URL and _TOKEN (and may
 * add a REDIS_URL of its own): the pair counts as the Upstash one when no store is named otherwise.
 */
function vercelPair(e: RedisEnv): RedisEnv {
  if (!e.KV_REST_API_URL || !e.KV_REST_API_TOKEN || e.UPSTASH_REDIS_REST_URL || e.UPSTASH_REDIS_REST_TOKEN)
    return e;
  if (STORE_VARIABLES.some((name) => e[name] !== undefined)) return e;
  return { ...e, UPSTASH_REDIS_REST_URL: e.KV_REST_API_URL, UPSTASH_REDIS_REST_TOKEN: e.KV_REST_API_TOKEN };
}

export function redisStoreOf(e: RedisEnv, storeTimeoutMs: number): StoreConfig {
  const store = chosenStore(vercelPair(e));
  const replicaAcks = replicaAcksOf(e, store, storeTimeoutMs);
  return store.kind === "redis" ? { ...store, replicaAcks } : store;
}

/** Where the store is, for the start-up line (never a password). */
export function describeStore(store: StoreConfig): string {
  if (store.kind === "memory") return "memory";
  if (store.kind === "upstash") return `upstash (${new URL(store.url).host})`;
  const { topology: t, replicaAcks } = store;
  const list = (nodes: HostPort[]) => nodes.map((n) => `${n.host}:${n.port}`).join(",");
  const where =
    t.mode === "single"
      ? `redis (${new URL(t.url).host})`
      : t.mode === "sentinel"
        ? `redis via sentinel (${t.master} at ${list(t.sentinels)})`
        : `redis cluster (${list(t.nodes)})`;
  return replicaAcks ? `${where}, each write on ≥ ${replicaAcks.min} replica(s)` : where;
}
