/** Requests per minute per caller on Upstash, with @upstash/ratelimit (see rate-limit.ts). */

import { Ratelimit } from "@upstash/ratelimit";
import type { Redis as UpstashRedis } from "@upstash/redis";
import { StoreUnavailableError } from "../stores/types.js";
import { explainUpstashFailure, withRetries } from "../stores/upstash.js";
import type { RateLimiter } from "./rate-limit.js";

export function upstashRateLimiter(client: UpstashRedis, perMinute: number, prefix: string): RateLimiter {
  const limiter = new Ratelimit({
    redis: client,
    // A fixed window costs 2 commands a request (EVALSHA, INCRBY; PEXPIRE once a window) where a
    // sliding one costs 4, and Upstash bills each: a caller may burst to twice the limit across a
    // window's edge, which abuse protection can live with.
    limiter: Ratelimit.fixedWindow(perMinute, "60 s"),
    prefix: `${prefix}:rl`,
    analytics: false,
    // Its default lets requests through when Redis is slow; the server fails closed instead.
    timeout: 0,
  });
  return {
    perMinute,
    async limit(callerId) {
      try {
        // Retried as the store's commands are (the client itself does not retry): counting a
        // request twice after a lost answer costs the caller one request, never a grant.
        const res = await withRetries(() => limiter.limit(callerId));
        return {
          allowed: res.success,
          limit: res.limit,
          remaining: res.remaining,
          retryAfterMs: res.success ? 0 : Math.max(0, res.reset - Date.now()),
        };
      } catch (err) {
        // With the cause the store's own commands would name (a database past its plan's limit).
        throw new StoreUnavailableError(err, explainUpstashFailure("", err));
      }
    },
  };
}
