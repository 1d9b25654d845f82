/**
 * The Upstash backend from a client made by the entry. Apart from backend.ts so that the Workers
 * bundle carries no TCP client.
 */
import type { Redis } from "@upstash/redis";
import { upstashRateLimiter } from "./auth/rate-limit-upstash.js";
import type { Backend } from "./backend-types.js";
import type { Config } from "./config.js";
import { createRedisStore } from "./stores/redis/store.js";
import { upstashTransport } from "./stores/upstash.js";
import { upstashEvents } from "./stores/upstash-events.js";

export function upstashBackend(
  client: Redis,
  /** The database (UPSTASH_REDIS_REST_URL and _TOKEN), for event streams and to name it in errors. */
  database: { url: string; token: string },
  config: Pick<
    Config,
    | "keyPrefix"
    | "rateLimitPerMinute"
    | "storeTimeoutMs"
    | "allowEviction"
    | "declaredEvictionPolicy"
    | "limits"
  >,
): Backend {
  const perMinute = config.rateLimitPerMinute;
  return {
    store: createRedisStore(
      upstashTransport(client, database.url),
      config.keyPrefix,
      upstashEvents({ ...database, timeoutMs: config.storeTimeoutMs }),
      {
        allowEviction: config.allowEviction,
        declaredEvictionPolicy: config.declaredEvictionPolicy,
        limits: config.limits,
      },
    ),
    rateLimiter: perMinute ? upstashRateLimiter(client, perMinute, config.keyPrefix) : null,
  };
}
