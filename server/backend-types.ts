/** Which store a deployment uses (from its configuration), and what opening one gives. */
import type { RateLimiter } from "./auth/rate-limit.js";
import type { LockStore } from "./stores/types.js";

export interface HostPort {
  host: string;
  port: number;
}

/** Credentials and TLS of the Redis nodes, for Sentinel and cluster (a REDIS_URL carries its own). */
export interface RedisAuth {
  username: string | null;
  password: string | null;
  tls: boolean;
}

/** How a TCP Redis is reached: one URL, the primary Sentinel names, or a cluster's nodes. */
export type RedisTopology =
  | { mode: "single"; url: string }
  | {
      mode: "sentinel";
      sentinels: HostPort[];
      /** The name the sentinels monitor the primary by. */
      master: string;
      sentinelPassword: string | null;
      auth: RedisAuth;
    }
  | { mode: "cluster"; nodes: HostPort[]; auth: RedisAuth };

/** LSS_REDIS_MIN_REPLICAS: a write is answered only once this many replicas have it (WAIT). */
export interface ReplicaAcks {
  min: number;
  timeoutMs: number;
}

export type StoreConfig =
  | { kind: "memory" }
  | { kind: "redis"; topology: RedisTopology; replicaAcks: ReplicaAcks | null }
  | { kind: "upstash"; url: string; token: string };

export interface Backend {
  store: LockStore;
  rateLimiter: RateLimiter | null;
}
