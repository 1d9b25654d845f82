/**
 * RedisTransport over Upstash's REST API with @upstash/redis (serverless deployments). The client
 * itself is made by the entry (`@upstash/redis` on Node and Vercel, `@upstash/redis/cloudflare` in a
 * Worker) from the same options.
 */
import type { Redis } from "@upstash/redis";
import type { RedisTransport } from "./redis.js";
import type { StoreFailureHint } from "./types.js";

const message = (err: unknown) =>
  err instanceof Error ? `${err.message} ${String(err.cause ?? "")}` : String(err);

/** Upstash answers a wrong token with 401 "Unauthorized" (or WRONGPASS); a wrong URL never answers. */
export function explainUpstashFailure(url: string, err: unknown): StoreFailureHint | null {
  const text = message(err);
  if (/unauthori[sz]ed|wrongpass|noauth|invalid.*token/i.test(text)) {
    return { kind: "refused", message: "Upstash refused the token: check UPSTASH_REDIS_REST_TOKEN" };
  }
  if (/fetch failed|ENOTFOUND|ECONNREFUSED|EAI_AGAIN|getaddrinfo|network/i.test(text)) {
    return { kind: "unreachable", message: `no answer from UPSTASH_REDIS_REST_URL (${hostOf(url)})` };
  }
  return null;
}

const hostOf = (url: string) => {
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
};

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

type UpstashClient = Pick<
  Redis,
  "evalsha" | "eval" | "get" | "set" | "del" | "hset" | "hget" | "hvals" | "hdel" | "ping" | "pipeline"
>;

export function upstashTransport(client: UpstashClient, url = ""): RedisTransport {
  return {
    kind: "upstash",
    explain: (err) => explainUpstashFailure(url, err),
    // An error answer (UpstashError) or no connection at all: the script did not run. A timeout or
    // a reset may come after Upstash ran it.
    notApplied: (err) =>
      (err instanceof Error && err.name === "UpstashError") ||
      /ECONNREFUSED|ENOTFOUND|EAI_AGAIN|getaddrinfo/i.test(message(err)),
    evalsha: (sha1, keys, args) => client.evalsha(sha1, keys, args),
    eval: (source, keys, args) => client.eval(source, keys, args),
    hset: (key, field, value) => client.hset(key, { [field]: value }),
    hget: (key, field) => client.hget<string>(key, field),
    get: (key) => client.get<string>(key),
    setPx: (key, value, ms) => client.set(key, value, { px: ms }),
    del: (key) => client.del(key),
    hvals: (key) => client.hvals(key) as Promise<string[]>,
    hdel: (key, field) => client.hdel(key, field),
    ping: () => client.ping(),
    // Upstash does not serve CONFIG; eviction is a database option, off unless enabled (the README
    // says to leave it off). Reading INFO every minute would be billed on every instance.
    evictionPolicy: async () => null,
    documentedEvictionPolicy: "noeviction",
    // One POST /pipeline (automaticDeserialization is off: replies stay as Redis sent them).
    snapshot: async (lockKey, queueKey) => {
      let pipeline = client.pipeline().time().get(lockKey);
      if (queueKey) pipeline = pipeline.zcard(queueKey);
      const replies = (await pipeline.exec()) as unknown[];
      return {
        time: replies[0] as [string, string],
        record: (replies[1] as string | null) ?? null,
        waiting: queueKey ? Number(replies[2]) : null,
      };
    },
    listing: async (queue, holdersKey) => {
      const pipeline = client.pipeline();
      if (queue) pipeline.zrange(queue.key, 0, queue.head - 1);
      if (holdersKey) pipeline.hgetall(holdersKey);
      const replies = (await pipeline.exec()) as unknown[];
      // automaticDeserialization is off: HGETALL stays Redis's flat field, value list.
      return {
        queueHead: queue ? ((replies[0] as string[] | null) ?? []) : [],
        holders: holdersKey ? ((replies[queue ? 1 : 0] as string[] | null) ?? []) : [],
      };
    },
    close: async () => {},
  };
}
