/** Requests per minute per caller on TCP Redis, with rate-limiter-flexible (see rate-limit.ts). */
import { RateLimiterRedis } from "rate-limiter-flexible";
import type { TcpRedis } from "../stores/tcp.js";
import { whenConnected } from "../stores/tcp.js";
import { flexible, type RateLimiter } from "./rate-limit.js";

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
