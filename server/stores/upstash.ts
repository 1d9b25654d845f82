/**
 * RedisTransport over Upstash's REST API with @upstash/redis (serverless deployments). The client
 * itself is made by the entry (`@upstash/redis` on Node and Vercel, `@upstash/redis/cloudflare` in a
 * Worker) from the same options.
 */
import type { Redis } from "@upstash/redis";
import type { RedisTransport } from "./redis.js";

export function upstashOptions(url: string, token: string, timeoutMs: number) {
  return {
    url,
    token,
    // Script replies are flat arrays of strings and numbers; keep them as Redis sent them.
    automaticDeserialization: false,
    // Each attempt is bounded, and few: a request must answer 503 within a few seconds, not hang.
    // Retries are safe because every lock operation is idempotent for the same token.
    signal: () => AbortSignal.timeout(timeoutMs),
    retry: { retries: 2, backoff: (attempt: number) => 50 * 2 ** attempt },
    enableTelemetry: false,
  };
}

type UpstashClient = Pick<Redis, "evalsha" | "eval" | "hset" | "hget" | "hvals" | "hdel" | "ping">;

export function upstashTransport(client: UpstashClient): RedisTransport {
  return {
    kind: "upstash",
    evalsha: (sha1, keys, args) => client.evalsha(sha1, keys, args),
    eval: (source, keys, args) => client.eval(source, keys, args),
    hset: (key, field, value) => client.hset(key, { [field]: value }),
    hget: (key, field) => client.hget<string>(key, field),
    hvals: (key) => client.hvals(key) as Promise<string[]>,
    hdel: (key, field) => client.hdel(key, field),
    ping: () => client.ping(),
    close: async () => {},
  };
}
