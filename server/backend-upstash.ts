/**
 * The Upstash backend from a client made by the entry. Apart from backend.ts so that the Workers
 * bundle carries no TCP client.
 */
import type { Redis } from "@upstash/redis";
import { upstashRateLimiter } from "./auth/rate-limit-upstash.js";
import type { Backend } from "./backend.js";
import type { Config } from "./config.js";
import { createRedisStore } from "./stores/redis.js";
import { upstashTransport } from "./stores/upstash.js";

export function upstashBackend(
  client: Redis,
  /** UPSTASH_REDIS_REST_URL, to name it when it does not answer. */
  url: string,
  config: Pick<Config, "keyPrefix" | "rateLimitPerMinute">,
): Backend {
  const perMinute = config.rateLimitPerMinute;
  return {
    store: createRedisStore(upstashTransport(client, url), config.keyPrefix),
    rateLimiter: perMinute ? upstashRateLimiter(client, perMinute, config.keyPrefix) : null,
  };
}
