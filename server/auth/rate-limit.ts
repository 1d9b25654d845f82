/**
 * Requests per minute per caller, on the store the server already uses: rate-limiter-flexible on
 * TCP Redis and in memory, @upstash/ratelimit on Upstash (rate-limit-upstash.ts, apart so that the
 * Workers bundle carries no TCP client). Its store cost is its own, apart from
 * the lock operation's single round trip (the benchmark reports both).
 */

// Its modules one by one (their paths are the package's own, so its version is pinned to 11.4):
// the package's index loads every store it supports (cluster, SQL…), which
// the Workers bundle must not carry.
import type { RateLimiterAbstract } from "rate-limiter-flexible";
import RateLimiterMemory from "rate-limiter-flexible/lib/RateLimiterMemory.js";
import RateLimiterRes from "rate-limiter-flexible/lib/RateLimiterRes.js";
import { StoreUnavailableError } from "../stores/types.js";

export interface RateDecision {
  allowed: boolean;
  limit: number;
  remaining: number;
  /** Milliseconds until the caller may try again (when not allowed). */
  retryAfterMs: number;
}

export interface RateLimiter {
  /** Requests per minute per caller. */
  readonly perMinute: number;
  limit(callerId: string): Promise<RateDecision>;
}

/**
 * The requests counted in the process rather than in the store: renewals and releases. Each costs
 * the store a fixed few commands and creates nothing, about what the shared count itself costs (2
 * commands on Upstash, 4 on TCP Redis), so counting it there would double its bill, and under a
 * flood save nothing. Each instance holds a caller to the same limit for these; everything else
 * (acquires and their waits, reads, admin) is counted once across instances.
 */
export const countedInProcess = (method: string, path: string) =>
  method === "POST" && /^\/infra\/locks\/.+\/(renew|release)$/.test(path);

/** rate-limiter-flexible rejects with a RateLimiterRes when over the limit, with an Error when its store fails. */
export function flexible(
  limiter: RateLimiterAbstract,
  perMinute: number,
  ready: () => Promise<void> | undefined = () => undefined,
): RateLimiter {
  return {
    perMinute,
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
