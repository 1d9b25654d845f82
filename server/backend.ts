/** Config → the store and the rate limiter, on the same backend. The only place that picks one. */
import { Redis as UpstashRedis } from "@upstash/redis";
import { memoryRateLimiter } from "./auth/rate-limit.js";
import { redisRateLimiter } from "./auth/rate-limit-redis.js";
import type { Backend } from "./backend-types.js";
import { upstashBackend } from "./backend-upstash.js";
import type { Config } from "./config.js";
import { createMemoryStore } from "./stores/memory.js";
import { createRedisStore } from "./stores/redis/store.js";
import { connectTcpRedis, tcpEvents, tcpTransport } from "./stores/tcp.js";
import { upstashOptions } from "./stores/upstash.js";

export const connectUpstash = (url: string, token: string, timeoutMs: number) =>
  new UpstashRedis(upstashOptions(url, token, timeoutMs));

/** Node and Vercel: every store. (The Workers entry calls upstashBackend itself.) */
export function openBackend(config: Config): Backend {
  const perMinute = config.rateLimitPerMinute;
  const { store } = config;
  switch (store.kind) {
    case "memory":
      return {
        store: createMemoryStore({ limits: config.limits }),
        rateLimiter: perMinute ? memoryRateLimiter(perMinute) : null,
      };
    case "redis": {
      const client = connectTcpRedis(store.topology, config.storeTimeoutMs);
      // Confirmed writes (WAIT) get a connection of their own: a WAIT holds up its connection.
      const writer = store.replicaAcks ? connectTcpRedis(store.topology, config.storeTimeoutMs) : client;
      return {
        store: createRedisStore(
          tcpTransport(client, config.storeTimeoutMs, store.replicaAcks, writer),
          config.keyPrefix,
          tcpEvents(client),
          {
            allowEviction: config.allowEviction,
            declaredEvictionPolicy: config.declaredEvictionPolicy,
            limits: config.limits,
          },
        ),
        rateLimiter: perMinute
          ? redisRateLimiter(client, perMinute, config.keyPrefix, config.storeTimeoutMs)
          : null,
      };
    }
    case "upstash":
      return upstashBackend(connectUpstash(store.url, store.token, config.storeTimeoutMs), store, config);
  }
}
