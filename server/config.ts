/** Environment → typed, validated configuration. Every mistake is reported by variable name. */
import { z } from "zod";
import { GITHUB_ISSUER, githubServerOf, type OidcConfig } from "./auth/oidc.js";
import { PolicyError, parsePolicy } from "./auth/oidc-policy.js";
import { OPEN_NAMESPACE } from "./auth/types.js";
import type { StoreConfig } from "./backend-types.js";
import { type GitHubAppConfig, GitHubConfigError, githubAppConfig, githubSchema } from "./github/config.js";
import { RedisConfigError, redisSchema, redisStoreOf } from "./redis-config.js";
import { RUNTIMES, type RuntimeName } from "./runtime.js";
import { DEFAULT_LIMITS, type StoreLimits } from "./stores/types.js";

export interface Config {
  port: number;
  store: StoreConfig;
  /** Redis key prefix, so that one Redis can serve several deployments (and test runs). */
  keyPrefix: string;
  /** How long a store call may take before the request fails closed with 503. */
  storeTimeoutMs: number;
  /** Upper bound of a lease's ttl_ms. */
  maxTtlMs: number;
  /** How long the server may hold a waiting request (wait_ms); keep it under any proxy's timeout. */
  maxWaitMs: number;
  /** Waiting requests one caller (a token, or an address) may have open at once on one instance. */
  maxWaitsPerCaller: number;
  adminToken: string | null;
  /** Requests per minute per caller; null = no limit. */
  rateLimitPerMinute: number | null;
  /**
   * Whether the /locks API wants a bearer token, or is open (the per-lock key is its auth):
   * LSS_LOCKS_API_AUTH; by default open on Node (where one tries it locally), bearer on Vercel and
   * Workers, whose every deployment is a public URL from its first minute.
   */
  locksApiAuth: "open" | "bearer";
  /** How long a verified API token is trusted before it is looked up again (bounds revocation delay). */
  tokenCacheMs: number;
  /**
   * How many proxies in front of a Node server append to X-Forwarded-For; the client address is the
   * entry the outermost of them appended (0: none, the socket's peer is the client).
   */
  trustProxy: number;
  maxBodyBytes: number;
  /** Serve lock operations even on a Redis whose maxmemory-policy may evict lock records. */
  allowEviction: boolean;
  /** The maxmemory-policy the operator checked, for a Redis that does not say it (LSS_EVICTION_POLICY). */
  declaredEvictionPolicy: string | null;
  /**
   * What bounds the store's records: LSS_MAX_LOCKS, LSS_MAX_WAITERS, LSS_LOCK_RETENTION_DAYS,
   * LSS_HISTORY_EVENTS, LSS_HISTORY_DAYS.
   */
  limits: StoreLimits;
  /** Whether GET /metrics serves Prometheus metrics (LSS_METRICS). */
  metricsEnabled: boolean;
  /** One JSON line per request in the log (LSS_ACCESS_LOG); every client version is named once either way. */
  accessLog: boolean;
  /** A token that may read /metrics and nothing else (admin tokens may too); null: none. */
  metricsToken: string | null;
  /** The scheduler's secret for GET /tick (CRON_SECRET: Vercel Cron sends it); null: admin tokens only. */
  cronSecret: string | null;
  /**
   * Webhook notifications: whether they may go to private and loopback addresses
   * (LSS_WEBHOOK_ALLOW_PRIVATE), and how many deliveries a namespace may have pending
   * (LSS_WEBHOOK_MAX_PENDING).
   */
  webhooks: { allowPrivate: boolean; maxPending: number };
  /** The GitHub App that gates environments (LSS_GITHUB_APP_ID…, LSS_GATE_RULES); null: off. */
  github: GitHubAppConfig | null;
  /** GitHub Actions OIDC tokens as bearer tokens, by the operator's policy; null: not accepted. */
  oidc: OidcConfig | null;
  /**
   * The origin of the GitHub whose workflow runs a holder id may link to (LSS_GITHUB_SERVER_URL;
   * by default github.com, or the GitHub Enterprise Server LSS_OIDC_ISSUER names).
   */
  githubServerUrl: string;
  /**
   * The origin clients reach this server at (LSS_PUBLIC_URL; on a Vercel production deployment, its
   * production domain by default); null: not known. An OIDC token's default audience, and the only
   * origin an absolute-form request target may name.
   */
  publicOrigin: string | null;
}

export class ConfigError extends Error {
  override name = "ConfigError";
}

/** Redis's maxmemory-policy values. */
const EVICTION_POLICIES = [
  "noeviction",
  "allkeys-lru",
  "allkeys-lfu",
  "allkeys-random",
  "volatile-lru",
  "volatile-lfu",
  "volatile-random",
  "volatile-ttl",
] as const;

const int = (name: string, min: number, max: number) =>
  z
    .string()
    .regex(/^\d+$/, `${name} must be a whole number`)
    .transform(Number)
    .pipe(z.number().min(min, `${name} must be at least ${min}`).max(max, `${name} must be at most ${max}`));

const schema = z.object({
  PORT: int("PORT", 0, 65535).default(8787),
  ...redisSchema,
  ...githubSchema,
  LSS_KEY_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_.-]{1,64}$/, "LSS_KEY_PREFIX must be 1–64 letters, digits, '_', '.' or '-'")
    .default("lss"),
  LSS_STORE_TIMEOUT_MS: int("LSS_STORE_TIMEOUT_MS", 100, 30_000).default(2000),
  // A week by default, as the action's `hold` and the dashboard allow: a team's hold over a weekend.
  LSS_MAX_TTL_MS: int("LSS_MAX_TTL_MS", 1000, 7 * 24 * 3600 * 1000).default(7 * 24 * 3600 * 1000),
  LSS_MAX_WAIT_MS: int("LSS_MAX_WAIT_MS", 0, 300_000).default(55_000),
  LSS_MAX_WAITS: int("LSS_MAX_WAITS", 1, 100_000).default(100),
  LSS_ADMIN_TOKEN: z.string().min(16, "LSS_ADMIN_TOKEN must be at least 16 characters").optional(),
  LSS_RATE_LIMIT: z
    .union([z.literal("off"), int("LSS_RATE_LIMIT", 1, 1_000_000)], {
      error: "LSS_RATE_LIMIT must be a number of requests per minute, or off",
    })
    .default(1200),
  // No default here: it depends on where the server runs (see Config.locksApiAuth).
  LSS_LOCKS_API_AUTH: z
    .enum(["open", "bearer"], { error: "LSS_LOCKS_API_AUTH must be open or bearer" })
    .optional(),
  LSS_TOKEN_CACHE_MS: int("LSS_TOKEN_CACHE_MS", 0, 300_000).default(10_000),
  LSS_MAX_LOCKS: int("LSS_MAX_LOCKS", 1, 10_000_000).default(DEFAULT_LIMITS.locksPerNamespace),
  LSS_OPEN_MAX_LOCKS: int("LSS_OPEN_MAX_LOCKS", 1, 10_000_000).default(DEFAULT_LIMITS.locksPerNamespace),
  LSS_MAX_WAITERS: int("LSS_MAX_WAITERS", 1, 100_000).default(DEFAULT_LIMITS.waitersPerKey),
  LSS_LOCK_RETENTION_DAYS: int("LSS_LOCK_RETENTION_DAYS", 1, 3650).default(
    DEFAULT_LIMITS.lockRetentionMs / 86_400_000,
  ),
  LSS_HISTORY_EVENTS: int("LSS_HISTORY_EVENTS", 1, 10_000).default(DEFAULT_LIMITS.historyPerKey),
  LSS_HISTORY_DAYS: int("LSS_HISTORY_DAYS", 1, 3650).default(DEFAULT_LIMITS.historyRetentionMs / 86_400_000),
  LSS_ALLOW_EVICTION: z
    .enum(["true", "false"], { error: "LSS_ALLOW_EVICTION must be true or false" })
    .transform((v) => v === "true")
    .default(false),
  LSS_EVICTION_POLICY: z
    .enum(EVICTION_POLICIES, {
      error: `LSS_EVICTION_POLICY must be a Redis maxmemory-policy: ${EVICTION_POLICIES.join(", ")}`,
    })
    .optional(),
  LSS_METRICS: z
    .enum(["on", "off"], { error: "LSS_METRICS must be on or off" })
    .transform((v) => v === "on")
    .default(true),
  LSS_ACCESS_LOG: z
    .enum(["on", "off"], { error: "LSS_ACCESS_LOG must be on or off" })
    .transform((v) => v === "on")
    .default(false),
  LSS_METRICS_TOKEN: z.string().min(16, "LSS_METRICS_TOKEN must be at least 16 characters").optional(),
  CRON_SECRET: z.string().min(16, "CRON_SECRET must be at least 16 characters").optional(),
  LSS_WEBHOOK_ALLOW_PRIVATE: z
    .enum(["true", "false"], { error: "LSS_WEBHOOK_ALLOW_PRIVATE must be true or false" })
    .transform((v) => v === "true")
    .default(false),
  LSS_WEBHOOK_MAX_PENDING: z
    .string()
    .regex(/^\d+$/, "LSS_WEBHOOK_MAX_PENDING must be a whole number from 1 to 100000")
    .transform(Number)
    .pipe(
      z
        .number()
        .min(1, "LSS_WEBHOOK_MAX_PENDING must be a whole number from 1 to 100000")
        .max(100_000, "LSS_WEBHOOK_MAX_PENDING must be a whole number from 1 to 100000"),
    )
    .default(1000),
  LSS_OIDC_POLICY: z.string().optional(),
  LSS_OIDC_POLICY_FILE: z.string().optional(),
  LSS_OIDC_ISSUER: z
    .url({
      protocol: /^https?$/,
      error:
        "LSS_OIDC_ISSUER must be an http(s) URL (GitHub Enterprise Server: https://HOST/_services/token)",
    })
    .default(GITHUB_ISSUER),
  LSS_OIDC_AUDIENCE: z.string().min(1).max(512).optional(),
  LSS_GITHUB_SERVER_URL: z
    .url({
      protocol: /^https?$/,
      error:
        "LSS_GITHUB_SERVER_URL must be the http(s) URL of GitHub (https://github.com or your GitHub Enterprise Server)",
    })
    .optional(),
  LSS_PUBLIC_URL: z
    .url({
      protocol: /^https?$/,
      error:
        "LSS_PUBLIC_URL must be the http(s) URL clients reach this server at, e.g. https://lss.example.com",
    })
    .optional(),
  LSS_TRUST_PROXY: z
    .union(
      [
        z.enum(["true", "false"]).transform((v) => (v === "true" ? 1 : 0)),
        z
          .string()
          .regex(/^(\d|10)$/)
          .transform(Number),
      ],
      { error: "LSS_TRUST_PROXY must be true, false, or the number of proxies in front (0–10)" },
    )
    .default(0),
});

const UPSTASH_VARIABLES = "UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN";

/** Why a runtime cannot use a store, naming the variables that choose a usable one. */
const UNUSABLE_STORE: Record<RuntimeName, Partial<Record<StoreConfig["kind"], string>>> = {
  node: {},
  vercel: {
    memory:
      `set ${UPSTASH_VARIABLES} (or REDIS_URL): on Vercel every instance has its own memory, ` +
      "so an in-memory store would let two jobs hold the same lock",
  },
  workers: {
    memory:
      `set ${UPSTASH_VARIABLES} (as secrets: wrangler secret put): a Worker keeps no shared memory, ` +
      "so an in-memory store would let two jobs hold the same lock",
    redis: `REDIS_URL cannot be used on Cloudflare Workers (no TCP Redis client runs there): set ${UPSTASH_VARIABLES} instead`,
  },
};

/**
 * Environment → config; `runtime` decides which stores are usable (see runtime.ts). `readFile`
 * reads LSS_OIDC_POLICY_FILE where there are files (Node).
 */
export function loadConfig(
  env: Record<string, string | undefined>,
  runtime: RuntimeName = "node",
  readFile?: (path: string) => string,
): Config {
  // An empty variable means "not set", as in most shells' `VAR= cmd`.
  const present = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ""));
  const parsed = schema.safeParse(present);
  if (!parsed.success) throw new ConfigError(parsed.error.issues.map((i) => i.message).join("; "));
  const e = parsed.data;

  let store: StoreConfig;
  try {
    store = redisStoreOf(e, e.LSS_STORE_TIMEOUT_MS);
  } catch (err) {
    if (err instanceof RedisConfigError) throw new ConfigError(err.message);
    throw err;
  }
  if (!RUNTIMES[runtime].stores.includes(store.kind)) {
    throw new ConfigError(
      UNUSABLE_STORE[runtime][store.kind] ?? `the ${store.kind} store cannot run on ${runtime}`,
    );
  }

  let github: GitHubAppConfig | null;
  try {
    github = githubAppConfig(e);
  } catch (err) {
    if (err instanceof GitHubConfigError) throw new ConfigError(err.message);
    throw err;
  }

  const publicOrigin = publicOriginOf(e.LSS_PUBLIC_URL, runtime, present);
  const oidc = oidcConfig(e, publicOrigin, readFile);

  return {
    port: e.PORT,
    store,
    keyPrefix: e.LSS_KEY_PREFIX,
    storeTimeoutMs: e.LSS_STORE_TIMEOUT_MS,
    maxTtlMs: e.LSS_MAX_TTL_MS,
    maxWaitMs: e.LSS_MAX_WAIT_MS,
    maxWaitsPerCaller: e.LSS_MAX_WAITS,
    adminToken: e.LSS_ADMIN_TOKEN ?? null,
    rateLimitPerMinute: e.LSS_RATE_LIMIT === "off" ? null : e.LSS_RATE_LIMIT,
    locksApiAuth: e.LSS_LOCKS_API_AUTH ?? (runtime === "node" ? "open" : "bearer"),
    tokenCacheMs: e.LSS_TOKEN_CACHE_MS,
    trustProxy: e.LSS_TRUST_PROXY,
    maxBodyBytes: 16 * 1024,
    allowEviction: e.LSS_ALLOW_EVICTION,
    declaredEvictionPolicy: e.LSS_EVICTION_POLICY ?? null,
    limits: {
      locksPerNamespace: e.LSS_MAX_LOCKS,
      locksByNamespace: { [OPEN_NAMESPACE]: e.LSS_OPEN_MAX_LOCKS },
      waitersPerKey: e.LSS_MAX_WAITERS,
      lockRetentionMs: e.LSS_LOCK_RETENTION_DAYS * 86_400_000,
      historyPerKey: e.LSS_HISTORY_EVENTS,
      historyRetentionMs: e.LSS_HISTORY_DAYS * 86_400_000,
    },
    metricsEnabled: e.LSS_METRICS,
    metricsToken: e.LSS_METRICS_TOKEN ?? null,
    accessLog: e.LSS_ACCESS_LOG,
    cronSecret: e.CRON_SECRET ?? null,
    webhooks: { allowPrivate: e.LSS_WEBHOOK_ALLOW_PRIVATE, maxPending: e.LSS_WEBHOOK_MAX_PENDING },
    oidc,
    github,
    publicOrigin,
    githubServerUrl: e.LSS_GITHUB_SERVER_URL
      ? new URL(e.LSS_GITHUB_SERVER_URL).origin
      : githubServerOf(e.LSS_OIDC_ISSUER),
  };
}

/** The configuration of an empty environment: every default, in one place (the schema above). */
export const DEFAULT_CONFIG: Config = loadConfig({});

/**
 * Where clients reach the server: LSS_PUBLIC_URL; else, on a Vercel production deployment, the
 * production domain Vercel itself sets (VERCEL_PROJECT_PRODUCTION_URL, never a request's Host).
 */
function publicOriginOf(
  publicUrl: string | undefined,
  runtime: RuntimeName,
  env: Record<string, string | undefined>,
): string | null {
  if (publicUrl) return new URL(publicUrl).origin;
  const domain = env.VERCEL_PROJECT_PRODUCTION_URL;
  if (runtime === "vercel" && env.VERCEL_ENV === "production" && domain && /^[a-z0-9.-]+$/i.test(domain))
    return `https://${domain.toLowerCase()}`;
  return null;
}

/** The OIDC policy, from LSS_OIDC_POLICY (JSON) or LSS_OIDC_POLICY_FILE; null when neither is set. */
function oidcConfig(
  e: z.infer<typeof schema>,
  publicOrigin: string | null,
  readFile: ((path: string) => string) | undefined,
): OidcConfig | null {
  if (e.LSS_OIDC_POLICY && e.LSS_OIDC_POLICY_FILE) {
    throw new ConfigError("set either LSS_OIDC_POLICY or LSS_OIDC_POLICY_FILE, not both");
  }
  let text = e.LSS_OIDC_POLICY;
  let source = "LSS_OIDC_POLICY";
  if (e.LSS_OIDC_POLICY_FILE) {
    source = `LSS_OIDC_POLICY_FILE (${e.LSS_OIDC_POLICY_FILE})`;
    if (!readFile)
      throw new ConfigError(
        "LSS_OIDC_POLICY_FILE cannot be read here (no files): set LSS_OIDC_POLICY to the policy's JSON",
      );
    try {
      text = readFile(e.LSS_OIDC_POLICY_FILE);
    } catch (err) {
      throw new ConfigError(`${source} cannot be read: ${(err as Error).message}`);
    }
  }
  if (text === undefined) {
    if (e.LSS_OIDC_AUDIENCE)
      throw new ConfigError("LSS_OIDC_AUDIENCE is set but no OIDC policy: set LSS_OIDC_POLICY too");
    return null;
  }
  // A token names the service it was minted for: never guess it from the request, whose Host and
  // target the caller writes (a token minted for another service would be replayed here).
  const audience = e.LSS_OIDC_AUDIENCE ?? publicOrigin;
  if (!audience) {
    throw new ConfigError(
      `${source.split(" ")[0]} is set, so set LSS_PUBLIC_URL (the URL workflows reach this server at, ` +
        "e.g. https://lss.example.com; its origin is the audience ID tokens must name) or LSS_OIDC_AUDIENCE",
    );
  }
  try {
    return { issuer: e.LSS_OIDC_ISSUER, audience, rules: parsePolicy(text, source) };
  } catch (err) {
    if (err instanceof PolicyError) throw new ConfigError(err.message);
    throw err;
  }
}
