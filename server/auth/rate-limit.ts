/**
 * Requests per minute per caller, on the store the server already uses: rate-limiter-flexible on
 * TCP Redis and in memory, @upstash/ratelimit on Upstash (rate-limit-upstash.ts, apart so that the
 * Workers bundle carries no TCP client). Its store cost is its own, apart from
 * the lock operation's single round trip (the benchmark reports both).
 */

import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes } from "rate-limiter-flexible";
import type { TcpRedis } from "../stores/tcp.js";
import { whenConnected } from "../stores/tcp.js";
import { StoreUnavailableError } from "../stores/types.js";

export interface RateDecision {
  allowed: boolean;
  limit: number;
  remaining: number;
  /** Milliseconds until the caller may try again (when not allowed). */
  retryAfterMs: number;
}

export interface RateLimiter {
  limit(callerId: string): Promise<RateDecision>;
}

/** rate-limiter-flexible rejects with a RateLimiterRes when over the limit, with an Error when its store fails. */
function flexible(
  limiter: RateLimiterMemory | RateLimiterRedis,
  perMinute: number,
  ready: () => Promise<void> | undefined = () => undefined,
): RateLimiter {
  return {
    async limit(callerId) {
      try {
        await ready();
        const res = await limiter.consume(callerId);
        return { allowed: true, limit: perMinute, remaining: res.remainingPoints, retryAfterMs: 0 };
      } catch (err) {
        if (err instanceof RateLimiterRes) {
          return { allowed: false, limit: perMinute, remaining: 0, retryAfterMs: err.msBeforeNext };
        }
        throw new StoreUnavailableError(err);
      }
    },
  };
}

export const memoryRateLimiter = (perMinute: number): RateLimiter =>
  flexible(new RateLimiterMemory({ points: perMinute, duration: 60 }), perMinute);

export const redisRateLimiter = (
  client: TcpRedis,
  perMinute: number,
  prefix: string,
  timeoutMs = 2000,
): RateLimiter =>
  flexible(
    new RateLimiterRedis({ storeClient: client, points: perMinute, duration: 60, keyPrefix: `${prefix}:rl` }),
    perMinute,
    () => whenConnected(client, timeoutMs),
  );
