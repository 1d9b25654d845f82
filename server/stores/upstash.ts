/**
 * RedisTransport over Upstash's REST API with @upstash/redis (serverless deployments). The client
 * itself is made by the entry (`@upstash/redis` on Node and Vercel, `@upstash/redis/cloudflare` in a
 * Worker) from the same options.
 */
import type { Redis } from "@upstash/redis";
import type { RedisTransport } from "./redis/transport.js";
import type { StoreFailureHint } from "./types.js";

const message = (err: unknown) =>
  err instanceof Error ? `${err.message} ${String(err.cause ?? "")}` : String(err);

/**
 * A database past its plan's limit (the free plan's requests a month, a daily or bandwidth cap):
 * Upstash refuses every command until the limit resets, with "ERR max requests limit exceeded…".
 */
const PLAN_LIMIT = /max[\w ]*limit exceeded[^,]*(?:\.\s*Limit:\s*\d+)?/i;

/** Upstash answers a wrong token with 401 "Unauthorized" (or WRONGPASS); a wrong URL never answers. */
export function explainUpstashFailure(url: string, err: unknown): StoreFailureHint | null {
  const text = message(err);
  const limit = PLAN_LIMIT.exec(text);
  if (limit) {
    return {
      kind: "quota",
      message: `Upstash refuses every command: the database is past its plan's limit (${limit[0].replace(/^ERR\s*/i, "")}); it answers again when the limit resets, or on a larger plan`,
    };
  }
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
    // The transport retries itself (withRetries): the client's own retries end with the last
    // attempt's error alone, and would say "never sent" of a command an earlier attempt may have
    // run. (retries: 0 is one attempt; its `retry: false` still makes two.)
    retry: { retries: 0 },
    enableTelemetry: false,
  };
}

type UpstashClient = Pick<
  Redis,
  | "evalsha"
  | "eval"
  | "get"
  | "set"
  | "del"
  | "hset"
  | "hget"
  | "hgetall"
  | "hvals"
  | "hmget"
  | "hdel"
  | "pexpire"
  | "ping"
  | "pipeline"
>;

/**
 * The command did not run: no connection was made, or Upstash refused it before running anything
 * (a script it does not have, our token). Any other error answer may come after a script's first
 * writes (a Lua error part-way) or from a gateway that passed it on, as on TCP Redis.
 */
const certainlyNotRun = (err: unknown) =>
  /ECONNREFUSED|ENOTFOUND|EAI_AGAIN|getaddrinfo/i.test(message(err)) ||
  (err instanceof Error &&
    err.name === "UpstashError" &&
    /NOSCRIPT|unauthori[sz]ed|WRONGPASS|NOAUTH/i.test(err.message));

/** A failure another attempt may cure: no answer came (not an error answer, not the time running out). */
const retryable = (err: unknown) =>
  !(
    err instanceof Error &&
    (err.name === "UpstashError" || err.name === "TimeoutError" || err.name === "AbortError")
  );

const RETRIES = 2;

/** Errors after which some attempt may have run the command, though the last one never left. */
const mayHaveRun = new WeakSet<object>();

/**
 * A command with up to RETRIES more attempts after a network failure (50, then 100 ms apart). The
 * error it ends with is marked (mayHaveRun) when any attempt may have reached Upstash, so that the
 * store never answers "nothing was changed" for a lease an earlier attempt granted.
 */
export async function withRetries<T>(command: () => Promise<T>): Promise<T> {
  let reached = false;
  for (let attempt = 0; ; attempt++) {
    try {
      return await command();
    } catch (err) {
      reached ||= !certainlyNotRun(err);
      if (attempt >= RETRIES || !retryable(err)) {
        if (reached && typeof err === "object" && err !== null) mayHaveRun.add(err);
        throw err;
      }
      await new Promise((resolve) => setTimeout(resolve, 50 * 2 ** attempt));
    }
  }
}

export function upstashTransport(client: UpstashClient, url = ""): RedisTransport {
  const run = withRetries;
  return {
    kind: "upstash",
    explain: (err) => explainUpstashFailure(url, err),
    // A timeout or a reset may come after Upstash ran it; so may any failure after one of those.
    notApplied: (err) =>
      certainlyNotRun(err) && !(typeof err === "object" && err !== null && mayHaveRun.has(err)),
    evalsha: (sha1, keys, args) => run(() => client.evalsha(sha1, keys, args)),
    eval: (source, keys, args) => run(() => client.eval(source, keys, args)),
    hset: (key, field, value) => run(() => client.hset(key, { [field]: value })),
    hget: (key, field) => run(() => client.hget<string>(key, field)),
    get: (key) => run(() => client.get<string>(key)),
    // automaticDeserialization is off: HGETALL stays Redis's flat field, value list.
    hgetall: async (key) => {
      const flat = ((await run(() => client.hgetall(key))) as unknown as string[] | null) ?? [];
      const out: Record<string, string> = {};
      for (let i = 0; i + 1 < flat.length; i += 2) out[String(flat[i])] = String(flat[i + 1]);
      return out;
    },
    pexpire: (key, ms) => run(() => client.pexpire(key, ms)),
    del: (key) => run(() => client.del(key)),
    setIfAbsent: async (key, value, ttlMs) =>
      (await run(() => client.set(key, value, { px: ttlMs, nx: true }))) === "OK",
    hvals: (key) => run(() => client.hvals(key) as Promise<string[]>),
    // With automaticDeserialization off, HMGET stays Redis's list (the client would make an object).
    hmget: async (key, fields) => {
      const found = (await run(() => client.hmget(key, ...fields))) as unknown;
      const at = (f: string, i: number) =>
        Array.isArray(found) ? found[i] : (found as Record<string, unknown> | null)?.[f];
      return fields.map((f, i) => (at(f, i) == null ? null : String(at(f, i))));
    },
    hdel: (key, field) => run(() => client.hdel(key, field)),
    ping: () => run(() => client.ping()),
    // Upstash does not serve CONFIG; eviction is a database option, off unless enabled (the README
    // says to leave it off). Reading INFO every minute would be billed on every instance.
    evictionPolicy: async () => null,
    documentedEvictionPolicy: "noeviction",
    // One POST /pipeline (automaticDeserialization is off: replies stay as Redis sent them).
    snapshot: async (lockKey, queueKey) => {
      const replies = (await run(() => {
        let pipeline = client.pipeline().time().get(lockKey);
        if (queueKey) pipeline = pipeline.zcard(queueKey);
        return pipeline.exec();
      })) as unknown[];
      return {
        time: replies[0] as [string, string],
        record: (replies[1] as string | null) ?? null,
        waiting: queueKey ? Number(replies[2]) : null,
      };
    },
    listing: async (queue, holdersKey) => {
      const replies = (await run(() => {
        const pipeline = client.pipeline();
        if (queue) pipeline.zrange(queue.key, 0, queue.head - 1);
        if (holdersKey) pipeline.hgetall(holdersKey);
        return pipeline.exec();
      })) as unknown[];
      // automaticDeserialization is off: HGETALL stays Redis's flat field, value list.
      return {
        queueHead: queue ? ((replies[0] as string[] | null) ?? []) : [],
        holders: holdersKey ? ((replies[queue ? 1 : 0] as string[] | null) ?? []) : [],
      };
    },
    close: async () => {},
  };
}
