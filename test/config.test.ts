/** loadConfig(env): defaults, store selection, and every mistake reported by its variable name. */
import { describe, expect, it } from "vitest";
import { createApp } from "../server/app.js";
import { type Config, ConfigError, DEFAULT_CONFIG, loadConfig } from "../server/config.js";
import type { RuntimeName } from "../server/runtime.js";
import { announce, withTryOutAdminToken } from "../server/startup.js";
import { createMemoryStore } from "../server/stores/memory.js";
import { pathTo } from "../src/protocol/paths.js";

type Env = Record<string, string | undefined>;

/** The ConfigError loadConfig throws for env (fails the test when it does not throw one). */
function configError(env: Env, runtime: RuntimeName = "node"): ConfigError {
  try {
    loadConfig(env, runtime);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error(`loadConfig accepted ${JSON.stringify(env)}`);
}

const UPSTASH = { UPSTASH_REDIS_REST_URL: "https://eu1-x.upstash.io", UPSTASH_REDIS_REST_TOKEN: "AXX-token" };

describe("loadConfig defaults", () => {
  it("an empty environment gives the documented defaults", () => {
    expect(loadConfig({})).toEqual({
      port: 8787,
      store: { kind: "memory" },
      keyPrefix: "lss",
      storeTimeoutMs: 2000,
      maxTtlMs: 7 * 86_400_000,
      maxWaitMs: 55_000,
      maxWaitsPerCaller: 100,
      adminToken: null,
      rateLimitPerMinute: 1200,
      locksApiAuth: "open",
      tokenCacheMs: 10_000,
      trustProxy: 0,
      maxBodyBytes: 16 * 1024,
      allowEviction: false,
      declaredEvictionPolicy: null,
      metricsEnabled: true,
      metricsToken: null,
      cronSecret: null,
      webhooks: { allowPrivate: false, maxPending: 1000 },
      limits: {
        locksPerNamespace: 10_000,
        locksByNamespace: { open: 10_000 },
        waitersPerKey: 1_000,
        lockRetentionMs: 30 * 86_400_000,
        historyPerKey: 100,
        historyRetentionMs: 30 * 86_400_000,
      },
      oidc: null,
      github: null,
      publicOrigin: null,
      githubServerUrl: "https://github.com",
      accessLog: false,
    } satisfies Config);
  });

  it("empty strings are treated as unset", () => {
    const env: Env = {
      PORT: "",
      REDIS_URL: "",
      UPSTASH_REDIS_REST_URL: "",
      UPSTASH_REDIS_REST_TOKEN: "",
      LSS_KEY_PREFIX: "",
      LSS_STORE_TIMEOUT_MS: "",
      LSS_MAX_TTL_MS: "",
      LSS_ADMIN_TOKEN: "",
      LSS_RATE_LIMIT: "",
      LSS_LOCKS_API_AUTH: "",
      LSS_TOKEN_CACHE_MS: "",
      LSS_TRUST_PROXY: "",
    };
    expect(loadConfig(env)).toEqual(loadConfig({}));
  });

  it("undefined values are treated as unset", () => {
    expect(loadConfig({ PORT: undefined, REDIS_URL: undefined, LSS_ADMIN_TOKEN: undefined })).toEqual(
      loadConfig({}),
    );
  });

  it("unrelated variables are ignored", () => {
    expect(loadConfig({ HOME: "/root", PATH: "/usr/bin", NODE_ENV: "production" })).toEqual(loadConfig({}));
  });

  it("an app not given a setting takes the environment's default (there is no second copy in app.ts)", async () => {
    expect(DEFAULT_CONFIG).toEqual(loadConfig({}));
    const adminToken = "defaults-admin-token-0123456789";
    const app = createApp({ store: createMemoryStore(), rateLimiter: null, config: { adminToken } });
    const acquire = (ttl_ms: number) =>
      app.request(pathTo("acquire", { key: "defaults" }), {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${adminToken}` },
        body: JSON.stringify({ ttl_ms }),
      });
    const over = await acquire(DEFAULT_CONFIG.maxTtlMs + 1);
    expect(over.status).toBe(400);
    expect(await over.text()).toContain(
      `at most ${DEFAULT_CONFIG.maxTtlMs} (7d: this server's LSS_MAX_TTL_MS)`,
    );
    expect((await acquire(DEFAULT_CONFIG.maxTtlMs)).status).toBe(200);
  });

  it("a setting given as undefined is not given: the default stands (before: every body answered 500)", async () => {
    const adminToken = "defaults-admin-token-0123456789";
    const config = { adminToken, maxBodyBytes: undefined, maxTtlMs: undefined };
    const app = createApp({ store: createMemoryStore(), rateLimiter: null, config });
    const res = await app.request(pathTo("acquire", { key: "undefined-settings" }), {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${adminToken}` },
      body: JSON.stringify({ ttl_ms: DEFAULT_CONFIG.maxTtlMs }),
    });
    expect(res.status).toBe(200);
  });

  it("an empty Upstash token with a URL still counts as a missing token", () => {
    const err = configError({
      UPSTASH_REDIS_REST_URL: UPSTASH.UPSTASH_REDIS_REST_URL,
      UPSTASH_REDIS_REST_TOKEN: "",
    });
    expect(err.message).toMatch(/UPSTASH_REDIS_REST_TOKEN/);
  });
});

describe("the /locks API's default", () => {
  const upstash = { UPSTASH_REDIS_REST_URL: "https://eu1-x.upstash.io", UPSTASH_REDIS_REST_TOKEN: "t" };

  it.each(["vercel", "workers"] as const)("on %s, a public URL from the start, needs a token", (runtime) => {
    expect(loadConfig(upstash, runtime).locksApiAuth).toBe("bearer");
    expect(loadConfig({ ...upstash, LSS_LOCKS_API_AUTH: "open" }, runtime).locksApiAuth).toBe("open");
  });

  it("on Node, where one tries it locally, is open", () => {
    expect(loadConfig({}).locksApiAuth).toBe("open");
    expect(loadConfig({ LSS_LOCKS_API_AUTH: "bearer" }).locksApiAuth).toBe("bearer");
  });
});

describe("store selection", () => {
  it.each(["redis://localhost:6379", "rediss://user:pw@cache.example.com:6380/2", "redis://127.0.0.1"])(
    "REDIS_URL=%s selects the redis store",
    (url) => {
      expect(loadConfig({ REDIS_URL: url }).store).toEqual({
        kind: "redis",
        topology: { mode: "single", url },
        replicaAcks: null,
      });
    },
  );

  it("the Upstash pair selects the upstash store", () => {
    expect(loadConfig(UPSTASH).store).toEqual({
      kind: "upstash",
      url: UPSTASH.UPSTASH_REDIS_REST_URL,
      token: UPSTASH.UPSTASH_REDIS_REST_TOKEN,
    });
  });

  describe("Upstash from Vercel's Marketplace (KV_REST_API_URL and _TOKEN)", () => {
    const KV = { KV_REST_API_URL: "https://kv-db.upstash.io", KV_REST_API_TOKEN: "AKV-token" };

    it("selects the upstash store when no store is named otherwise", () => {
      expect(loadConfig(KV).store).toEqual({ kind: "upstash", url: KV.KV_REST_API_URL, token: "AKV-token" });
    });

    it("gives way to the Upstash pair and to REDIS_URL", () => {
      expect(loadConfig({ ...KV, ...UPSTASH }).store).toMatchObject({ url: UPSTASH.UPSTASH_REDIS_REST_URL });
      expect(loadConfig({ ...KV, REDIS_URL: "redis://cache:6379" }).store).toMatchObject({ kind: "redis" });
    });

    it("a URL without its token selects nothing; a URL that is not http(s) is named", () => {
      expect(loadConfig({ KV_REST_API_URL: KV.KV_REST_API_URL }).store).toEqual({ kind: "memory" });
      expect(configError({ ...KV, KV_REST_API_URL: "redis://kv" }).message).toMatch(
        /KV_REST_API_URL must be an http\(s\) URL/,
      );
    });
  });

  it("an Upstash URL without its token is an error naming both variables", () => {
    const err = configError({ UPSTASH_REDIS_REST_URL: UPSTASH.UPSTASH_REDIS_REST_URL });
    expect(err.message).toMatch(/UPSTASH_REDIS_REST_URL/);
    expect(err.message).toMatch(/UPSTASH_REDIS_REST_TOKEN/);
  });

  it("an Upstash token without its URL is an error naming both variables", () => {
    const err = configError({ UPSTASH_REDIS_REST_TOKEN: UPSTASH.UPSTASH_REDIS_REST_TOKEN });
    expect(err.message).toMatch(/UPSTASH_REDIS_REST_URL/);
    expect(err.message).toMatch(/UPSTASH_REDIS_REST_TOKEN/);
  });

  it("REDIS_URL and Upstash together is an error naming both", () => {
    const err = configError({ ...UPSTASH, REDIS_URL: "redis://localhost:6379" });
    expect(err.message).toMatch(/REDIS_URL/);
    expect(err.message).toMatch(/UPSTASH_REDIS_REST_URL/);
  });

  it.each(["http://x", "https://cache.example.com", "localhost:6379", "not a url", "redis"])(
    "REDIS_URL=%s is an error naming REDIS_URL",
    (url) => {
      expect(configError({ REDIS_URL: url }).message).toMatch(
        /REDIS_URL must be a redis:\/\/ or rediss:\/\/ URL/,
      );
    },
  );

  it.each(["redis://x.upstash.io", "ftp://x", "x.upstash.io"])(
    "UPSTASH_REDIS_REST_URL=%s is an error naming UPSTASH_REDIS_REST_URL",
    (url) => {
      const err = configError({ ...UPSTASH, UPSTASH_REDIS_REST_URL: url });
      expect(err.message).toMatch(/UPSTASH_REDIS_REST_URL must be an http\(s\) URL/);
    },
  );
});

describe("Redis with replicas, Sentinel, a cluster", () => {
  const SENTINELS = { REDIS_SENTINELS: "10.0.0.1:26379, [::1]:26380", REDIS_SENTINEL_MASTER: "lss" };
  const noAuth = { username: null, password: null, tls: false };

  it("REDIS_SENTINELS with REDIS_SENTINEL_MASTER selects the primary the sentinels name", () => {
    expect(loadConfig({ ...SENTINELS, REDIS_PASSWORD: "pw", REDIS_SENTINEL_PASSWORD: "spw" }).store).toEqual({
      kind: "redis",
      topology: {
        mode: "sentinel",
        sentinels: [
          { host: "10.0.0.1", port: 26379 },
          { host: "::1", port: 26380 },
        ],
        master: "lss",
        sentinelPassword: "spw",
        auth: { ...noAuth, password: "pw" },
      },
      replicaAcks: null,
    });
  });

  it("REDIS_CLUSTER_NODES selects a cluster, its credentials and TLS from REDIS_USERNAME, REDIS_PASSWORD, REDIS_TLS", () => {
    const env = {
      REDIS_CLUSTER_NODES: "a:7000,b:7001",
      REDIS_USERNAME: "u",
      REDIS_PASSWORD: "p",
      REDIS_TLS: "true",
    };
    expect(loadConfig(env).store).toEqual({
      kind: "redis",
      topology: {
        mode: "cluster",
        nodes: [
          { host: "a", port: 7000 },
          { host: "b", port: 7001 },
        ],
        auth: { username: "u", password: "p", tls: true },
      },
      replicaAcks: null,
    });
  });

  it("LSS_REDIS_MIN_REPLICAS asks each write to wait for replicas, 500 ms by default", () => {
    const store = loadConfig({ REDIS_URL: "redis://cache", LSS_REDIS_MIN_REPLICAS: "1" }).store;
    expect(store).toMatchObject({ replicaAcks: { min: 1, timeoutMs: 500 } });
    const cluster = loadConfig({
      REDIS_CLUSTER_NODES: "a:7000",
      LSS_REDIS_MIN_REPLICAS: "2",
      LSS_REDIS_REPLICA_TIMEOUT_MS: "250",
    }).store;
    expect(cluster).toMatchObject({ replicaAcks: { min: 2, timeoutMs: 250 } });
    expect(loadConfig({ REDIS_URL: "redis://cache", LSS_REDIS_MIN_REPLICAS: "0" }).store).toMatchObject({
      replicaAcks: null,
    });
  });

  it.each([
    [
      "two stores",
      { REDIS_URL: "redis://x", REDIS_CLUSTER_NODES: "a:1" },
      /set one of REDIS_URL, REDIS_CLUSTER_NODES, not 2/,
    ],
    [
      "sentinels and Upstash",
      { ...SENTINELS, ...UPSTASH },
      /set one of REDIS_SENTINELS, UPSTASH_REDIS_REST_URL/,
    ],
    ["sentinels without a master name", { REDIS_SENTINELS: "a:26379" }, /REDIS_SENTINEL_MASTER/],
    [
      "a master name without sentinels",
      { REDIS_SENTINEL_MASTER: "lss" },
      /REDIS_SENTINELS and REDIS_SENTINEL_MASTER/,
    ],
    ["a bad master name", { ...SENTINELS, REDIS_SENTINEL_MASTER: "a b" }, /REDIS_SENTINEL_MASTER must be/],
    [
      "a sentinel password alone",
      { REDIS_SENTINEL_PASSWORD: "x" },
      /REDIS_SENTINEL_PASSWORD is set but REDIS_SENTINELS/,
    ],
    [
      "a node without a port",
      { REDIS_CLUSTER_NODES: "a:7000,b" },
      /REDIS_CLUSTER_NODES must be host:port pairs separated by commas, not "b"/,
    ],
    [
      "a port out of range",
      { REDIS_SENTINELS: "a:70000", REDIS_SENTINEL_MASTER: "m" },
      /REDIS_SENTINELS must be host:port/,
    ],
    [
      "a URL in the node list",
      { REDIS_CLUSTER_NODES: "redis://a:7000" },
      /REDIS_CLUSTER_NODES must be host:port/,
    ],
    [
      "a password with REDIS_URL",
      { REDIS_URL: "redis://x", REDIS_PASSWORD: "p" },
      /put the credentials in REDIS_URL/,
    ],
    [
      "a username with no Redis",
      { REDIS_USERNAME: "u" },
      /REDIS_USERNAME apply to REDIS_SENTINELS and REDIS_CLUSTER_NODES, and neither is set/,
    ],
    [
      "REDIS_TLS not a switch",
      { REDIS_CLUSTER_NODES: "a:1", REDIS_TLS: "yes" },
      /REDIS_TLS must be true or false/,
    ],
    [
      "replicas on memory",
      { LSS_REDIS_MIN_REPLICAS: "1" },
      /LSS_REDIS_MIN_REPLICAS needs a Redis with replicas/,
    ],
    [
      "replicas on Upstash",
      { ...UPSTASH, LSS_REDIS_MIN_REPLICAS: "1" },
      /LSS_REDIS_MIN_REPLICAS is for a TCP Redis/,
    ],
    [
      "replicas not a number",
      { REDIS_URL: "redis://x", LSS_REDIS_MIN_REPLICAS: "one" },
      /LSS_REDIS_MIN_REPLICAS must be a whole number/,
    ],
    [
      "a replica timeout that is no number",
      { REDIS_URL: "redis://x", LSS_REDIS_MIN_REPLICAS: "1", LSS_REDIS_REPLICA_TIMEOUT_MS: "soon" },
      /LSS_REDIS_REPLICA_TIMEOUT_MS must be a whole number/,
    ],
    [
      "too many replicas",
      { REDIS_URL: "redis://x", LSS_REDIS_MIN_REPLICAS: "17" },
      /LSS_REDIS_MIN_REPLICAS must be at most 16/,
    ],
    [
      "a replica timeout without replicas",
      { REDIS_URL: "redis://x", LSS_REDIS_REPLICA_TIMEOUT_MS: "100" },
      /LSS_REDIS_REPLICA_TIMEOUT_MS is set but LSS_REDIS_MIN_REPLICAS is not/,
    ],
    [
      "a replica timeout under 10 ms",
      { REDIS_URL: "redis://x", LSS_REDIS_MIN_REPLICAS: "1", LSS_REDIS_REPLICA_TIMEOUT_MS: "5" },
      /LSS_REDIS_REPLICA_TIMEOUT_MS must be at least 10/,
    ],
    [
      "a replica timeout as long as a store call",
      { REDIS_URL: "redis://x", LSS_REDIS_MIN_REPLICAS: "1", LSS_REDIS_REPLICA_TIMEOUT_MS: "2000" },
      /LSS_REDIS_REPLICA_TIMEOUT_MS \(2000\) must be below LSS_STORE_TIMEOUT_MS \(2000\)/,
    ],
  ])("%s is a ConfigError naming the variable", (_label, env, message) => {
    expect(configError(env).message).toMatch(message);
  });

  it("workers refuses Sentinel and a cluster as it refuses REDIS_URL", () => {
    expect(configError(SENTINELS, "workers").message).toMatch(/cannot be used on Cloudflare Workers/);
    expect(configError({ REDIS_CLUSTER_NODES: "a:1" }, "workers").message).toMatch(/Cloudflare Workers/);
  });

  it("the start-up line names the topology and never a password", () => {
    const lines: string[] = [];
    const config = loadConfig({
      ...SENTINELS,
      REDIS_PASSWORD: "hunter2-secret",
      LSS_REDIS_MIN_REPLICAS: "1",
    });
    announce(config, 8787, false, (line) => lines.push(line));
    expect(lines[0]).toContain(
      "redis via sentinel (lss at 10.0.0.1:26379,::1:26380), each write on ≥ 1 replica(s)",
    );
    expect(lines.join("\n")).not.toContain("hunter2");
  });
});

describe("the GitHub App", () => {
  const PEM = "-----BEGIN RSA PRIVATE KEY-----\\nMIIB\\n-----END RSA PRIVATE KEY-----";
  const APP = {
    LSS_GITHUB_APP_ID: "123",
    LSS_GITHUB_APP_PRIVATE_KEY: PEM,
    LSS_GITHUB_WEBHOOK_SECRET: "s".repeat(16),
  };
  const rule = {
    repository_id: 4711,
    repository: "acme/webapp",
    environment: "qa",
    namespace: "acme",
    key: "qa-env",
  };
  const withRules = (...rules: unknown[]) => ({ ...APP, LSS_GATE_RULES: JSON.stringify(rules) });
  const freeze = {
    repository_id: 4711,
    repository: "acme/webapp",
    branch: "main",
    namespace: "acme",
    key: "freeze-main",
  };
  const withFreezes = (...rules: unknown[]) => ({ ...APP, LSS_FREEZE_RULES: JSON.stringify(rules) });

  it("is off without its variables, and reads them, the rules and the defaults", () => {
    expect(loadConfig({}).github).toBeNull();
    expect(loadConfig({ LSS_GITHUB_API_URL: "https://ghes.example/api/v3" }).github).toBeNull();
    const github = loadConfig(
      withRules(rule, {
        ...rule,
        environment: "e2e",
        keys: ["a", "b"],
        key: undefined,
        mode: "shared",
        limit: 2,
      }),
    ).github;
    expect(github).toMatchObject({
      appId: "123",
      webhookSecret: "s".repeat(16),
      apiUrl: "https://api.github.com",
      tickMs: 30_000,
      rules: [
        {
          repositoryId: 4711,
          environment: "qa",
          namespace: "acme",
          keys: ["qa-env"],
          mode: "exclusive",
          limit: 1,
          maxHoldMs: 375 * 60_000,
        },
        { environment: "e2e", keys: ["a", "b"], mode: "shared", limit: 2 },
      ],
    });
    // The PEM's "\n" escapes became line breaks.
    expect(github?.privateKeyPem.split("\n")).toHaveLength(3);
  });

  it.each([
    [
      "one variable missing",
      { ...APP, LSS_GITHUB_WEBHOOK_SECRET: undefined },
      /the GitHub App needs .*: LSS_GITHUB_WEBHOOK_SECRET not set/,
    ],
    [
      "a key that is no PEM",
      { ...APP, LSS_GITHUB_APP_PRIVATE_KEY: "abc" },
      /LSS_GITHUB_APP_PRIVATE_KEY must be the App's private key/,
    ],
    [
      "an App id that is no number",
      { ...APP, LSS_GITHUB_APP_ID: "my-app" },
      /LSS_GITHUB_APP_ID must be the App's numeric id/,
    ],
    [
      "a short webhook secret",
      { ...APP, LSS_GITHUB_WEBHOOK_SECRET: "short" },
      /LSS_GITHUB_WEBHOOK_SECRET must be at least 16/,
    ],
    [
      "an API URL that is no URL",
      { ...APP, LSS_GITHUB_API_URL: "api.github.com" },
      /LSS_GITHUB_API_URL must be an http\(s\) URL/,
    ],
    ["a tick too short", { ...APP, LSS_GITHUB_TICK_MS: "50" }, /LSS_GITHUB_TICK_MS must be at least 200/],
    [
      "a tick too long",
      { ...APP, LSS_GITHUB_TICK_MS: "600001" },
      /LSS_GITHUB_TICK_MS must be at most 600000/,
    ],
    [
      "a tick that is no number",
      { ...APP, LSS_GITHUB_TICK_MS: "fast" },
      /LSS_GITHUB_TICK_MS must be a whole number/,
    ],
    ["a hold of no minutes", withRules({ ...rule, max_hold_minutes: 0 }), /rule 1 .*max_hold_minutes/],
    [
      "a hold past a week",
      withRules({ ...rule, max_hold_minutes: 7 * 24 * 60 + 1 }),
      /rule 1 .*max_hold_minutes/,
    ],
    ["a pool of one", withRules({ ...rule, key: undefined, keys: ["a"] }), /rule 1 .*keys/],
    [
      "a pool of eleven",
      withRules({ ...rule, key: undefined, keys: Array.from({ length: 11 }, (_, i) => `k${i}`) }),
      /rule 1 .*keys/,
    ],
    ["a limit of 0", withRules({ ...rule, mode: "shared", limit: 0 }), /rule 1 .*limit/],
    ["a limit past 100", withRules({ ...rule, mode: "shared", limit: 101 }), /rule 1 .*limit/],
    ["an unknown mode", withRules({ ...rule, mode: "any" }), /rule 1 .*mode/],
    ["rules that are not JSON", { ...APP, LSS_GATE_RULES: "[{" }, /LSS_GATE_RULES is not JSON/],
    ["rules that are no array", { ...APP, LSS_GATE_RULES: "{}" }, /LSS_GATE_RULES must be a JSON array/],
    [
      "a rule without a key",
      withRules({ ...rule, key: undefined }),
      /rule 1 \(acme\/webapp, environment qa\): give key or keys/,
    ],
    [
      "a rule with key and keys",
      withRules({ ...rule, keys: ["a", "b"] }),
      /give key or keys \(a pool\), one of them/,
    ],
    ["a limit on an exclusive rule", withRules({ ...rule, limit: 2 }), /limit is for mode "shared"/],
    [
      "two rules for one environment",
      withRules(rule, rule),
      /rule 2: repository 4711's environment qa has a rule already/,
    ],
    [
      "a bad namespace",
      withRules({ ...rule, namespace: "Acme Corp" }),
      /rule 1 .*namespace namespace must be lower-case/,
    ],
    [
      "a repository id that is a name",
      withRules({ ...rule, repository_id: "acme/webapp" }),
      /rule 1 .*repository_id/,
    ],
    ["an unknown field", withRules({ ...rule, branch: "main" }), /rule 1 .*Unrecognized key/],
    [
      'a key with ".."',
      withRules({ ...rule, key: "a..b" }),
      /rule 1 .*key must not contain control characters or "\.\."/,
    ],
    ["a short CRON_SECRET", { ...APP, CRON_SECRET: "short" }, /CRON_SECRET must be at least 16/],
    ["freezes that are not JSON", { ...APP, LSS_FREEZE_RULES: "[" }, /LSS_FREEZE_RULES is not JSON/],
    [
      "freezes that are no array",
      { ...APP, LSS_FREEZE_RULES: "{}" },
      /LSS_FREEZE_RULES must be a JSON array/,
    ],
    [
      "a freeze on a ref",
      withFreezes({ ...freeze, branch: "refs/heads/main" }),
      /LSS_FREEZE_RULES rule 1 \(acme\/webapp, branch refs\/heads\/main\): branch must be a branch name/,
    ],
    [
      "a freeze on a pattern",
      withFreezes({ ...freeze, branch: "release/*" }),
      /rule 1 .*branch must be a branch name/,
    ],
    ["a freeze without a key", withFreezes({ ...freeze, key: undefined }), /LSS_FREEZE_RULES rule 1 .*key/],
    ["a freeze with a bad namespace", withFreezes({ ...freeze, namespace: "A B" }), /rule 1 .*namespace/],
    [
      "a freeze with an unknown field",
      withFreezes({ ...freeze, environment: "qa" }),
      /rule 1 .*Unrecognized key/,
    ],
    ["two freezes of one branch", withFreezes(freeze, freeze), /rule 2 .*that branch has a freeze already/],
  ])("%s is a ConfigError naming it", (_label, env, message) => {
    expect(configError(env as Record<string, string>).message).toMatch(message);
  });

  it("reads the freezes and the scheduler's secret", () => {
    const github = loadConfig({ ...withFreezes(freeze), CRON_SECRET: "c".repeat(16) }).github;
    expect(github).toMatchObject({
      freezes: [{ repositoryId: 4711, branch: "main", namespace: "acme", key: "freeze-main" }],
      cronSecret: "c".repeat(16),
      rules: [],
    });
    // CRON_SECRET alone (a Vercel project's) does not turn the App on.
    expect(loadConfig({ CRON_SECRET: "c".repeat(16) }).github).toBeNull();
  });
});

describe("stores per runtime", () => {
  it.each(["vercel", "workers"] as const)(
    "%s refuses the memory store, naming the Upstash variables",
    (rt) => {
      const err = configError({}, rt);
      expect(err.message).toMatch(/UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN/);
      expect(err.message).toMatch(/two jobs hold the same lock/);
    },
  );

  it("workers refuses REDIS_URL, saying why and what to set instead", () => {
    const err = configError({ REDIS_URL: "redis://cache:6379" }, "workers");
    expect(err.message).toMatch(/REDIS_URL cannot be used on Cloudflare Workers/);
    expect(err.message).toMatch(/UPSTASH_REDIS_REST_URL/);
  });

  it("vercel takes REDIS_URL or the Upstash pair; workers the Upstash pair; node all three", () => {
    expect(loadConfig({ REDIS_URL: "redis://cache:6379" }, "vercel").store.kind).toBe("redis");
    expect(loadConfig(UPSTASH, "vercel").store.kind).toBe("upstash");
    expect(loadConfig(UPSTASH, "workers").store.kind).toBe("upstash");
    expect(loadConfig({}, "node").store.kind).toBe("memory");
  });

  it("a runtime's own mistakes come after the variables' own (a bad URL is named as such)", () => {
    const err = configError({ ...UPSTASH, UPSTASH_REDIS_REST_URL: "nope" }, "workers");
    expect(err.message).toMatch(/UPSTASH_REDIS_REST_URL must be an http\(s\) URL/);
  });
});

describe("numbers and switches", () => {
  it.each<[string, Env, Partial<Config>]>([
    ["PORT=3000", { PORT: "3000" }, { port: 3000 }],
    ["PORT=0 (any free port)", { PORT: "0" }, { port: 0 }],
    ["PORT=65535", { PORT: "65535" }, { port: 65535 }],
    ["LSS_RATE_LIMIT=off", { LSS_RATE_LIMIT: "off" }, { rateLimitPerMinute: null }],
    ["LSS_RATE_LIMIT=50", { LSS_RATE_LIMIT: "50" }, { rateLimitPerMinute: 50 }],
    ["LSS_MAX_TTL_MS=60000", { LSS_MAX_TTL_MS: "60000" }, { maxTtlMs: 60_000 }],
    ["LSS_MAX_TTL_MS=604800000 (a week)", { LSS_MAX_TTL_MS: "604800000" }, { maxTtlMs: 604_800_000 }],
    [
      "LSS_ADMIN_TOKEN of 16 characters",
      { LSS_ADMIN_TOKEN: "0123456789abcdef" },
      { adminToken: "0123456789abcdef" },
    ],
    ["LSS_LOCKS_API_AUTH=bearer", { LSS_LOCKS_API_AUTH: "bearer" }, { locksApiAuth: "bearer" }],
    ["LSS_LOCKS_API_AUTH=open", { LSS_LOCKS_API_AUTH: "open" }, { locksApiAuth: "open" }],
    ["LSS_TRUST_PROXY=true", { LSS_TRUST_PROXY: "true" }, { trustProxy: 1 }],
    ["LSS_TRUST_PROXY=1", { LSS_TRUST_PROXY: "1" }, { trustProxy: 1 }],
    ["LSS_TRUST_PROXY=2", { LSS_TRUST_PROXY: "2" }, { trustProxy: 2 }],
    ["LSS_TRUST_PROXY=0", { LSS_TRUST_PROXY: "0" }, { trustProxy: 0 }],
    ["LSS_TRUST_PROXY=false", { LSS_TRUST_PROXY: "false" }, { trustProxy: 0 }],
    ["LSS_ALLOW_EVICTION=true", { LSS_ALLOW_EVICTION: "true" }, { allowEviction: true }],
    ["LSS_MAX_WAITS=3", { LSS_MAX_WAITS: "3" }, { maxWaitsPerCaller: 3 }],
    ["LSS_METRICS=off", { LSS_METRICS: "off" }, { metricsEnabled: false }],
    ["LSS_METRICS=on", { LSS_METRICS: "on" }, { metricsEnabled: true }],
    ["LSS_ACCESS_LOG=on", { LSS_ACCESS_LOG: "on" }, { accessLog: true }],
    ["LSS_ACCESS_LOG=off", { LSS_ACCESS_LOG: "off" }, { accessLog: false }],
    [
      "LSS_METRICS_TOKEN of 16 characters",
      { LSS_METRICS_TOKEN: "0123456789abcdef" },
      { metricsToken: "0123456789abcdef" },
    ],
    ["CRON_SECRET", { CRON_SECRET: "0123456789abcdef" }, { cronSecret: "0123456789abcdef" }],
    [
      "LSS_WEBHOOK_ALLOW_PRIVATE=true, LSS_WEBHOOK_MAX_PENDING=50",
      { LSS_WEBHOOK_ALLOW_PRIVATE: "true", LSS_WEBHOOK_MAX_PENDING: "50" },
      { webhooks: { allowPrivate: true, maxPending: 50 } },
    ],
    [
      "the store's limits",
      {
        LSS_MAX_LOCKS: "50",
        LSS_OPEN_MAX_LOCKS: "20",
        LSS_MAX_WAITERS: "5",
        LSS_LOCK_RETENTION_DAYS: "2",
        LSS_HISTORY_EVENTS: "10",
        LSS_HISTORY_DAYS: "7",
      },
      {
        limits: {
          locksPerNamespace: 50,
          locksByNamespace: { open: 20 },
          waitersPerKey: 5,
          lockRetentionMs: 2 * 86_400_000,
          historyPerKey: 10,
          historyRetentionMs: 7 * 86_400_000,
        },
      },
    ],
    ["LSS_TOKEN_CACHE_MS=0", { LSS_TOKEN_CACHE_MS: "0" }, { tokenCacheMs: 0 }],
    [
      "LSS_EVICTION_POLICY=noeviction",
      { LSS_EVICTION_POLICY: "noeviction" },
      { declaredEvictionPolicy: "noeviction" },
    ],
    [
      "LSS_GITHUB_SERVER_URL (its origin)",
      { LSS_GITHUB_SERVER_URL: "https://ghes.acme.example/" },
      { githubServerUrl: "https://ghes.acme.example" },
    ],
    [
      "a GitHub Enterprise Server issuer: its host is the GitHub run links point to",
      { LSS_OIDC_ISSUER: "https://ghes.acme.example/_services/token" },
      { githubServerUrl: "https://ghes.acme.example" },
    ],
    [
      "LSS_PUBLIC_URL (its origin)",
      { LSS_PUBLIC_URL: "https://LSS.example.com:8443/base/" },
      { publicOrigin: "https://lss.example.com:8443", oidc: null },
    ],
    ["LSS_KEY_PREFIX=prod.eu-1", { LSS_KEY_PREFIX: "prod.eu-1" }, { keyPrefix: "prod.eu-1" }],
    ["LSS_STORE_TIMEOUT_MS=500", { LSS_STORE_TIMEOUT_MS: "500" }, { storeTimeoutMs: 500 }],
  ])("%s is accepted", (_label, env, expected) => {
    expect(loadConfig(env)).toMatchObject(expected);
  });

  it.each<[string, Env, RegExp]>([
    ["PORT=abc", { PORT: "abc" }, /PORT must be a whole number/],
    ["CRON_SECRET too short", { CRON_SECRET: "short" }, /CRON_SECRET must be at least 16 characters/],
    [
      "LSS_WEBHOOK_ALLOW_PRIVATE=yes",
      { LSS_WEBHOOK_ALLOW_PRIVATE: "yes" },
      /LSS_WEBHOOK_ALLOW_PRIVATE must be true or false/,
    ],
    [
      "LSS_WEBHOOK_MAX_PENDING=0",
      { LSS_WEBHOOK_MAX_PENDING: "0" },
      /LSS_WEBHOOK_MAX_PENDING must be a whole number from 1 to 100000/,
    ],
    [
      "LSS_WEBHOOK_MAX_PENDING=many",
      { LSS_WEBHOOK_MAX_PENDING: "many" },
      /LSS_WEBHOOK_MAX_PENDING must be a whole number/,
    ],
    ["PORT=70000", { PORT: "70000" }, /PORT must be at most 65535/],
    ["PORT=-1", { PORT: "-1" }, /PORT/],
    ["PORT=80.5", { PORT: "80.5" }, /PORT/],
    ["PORT= 80 (spaces)", { PORT: " 80" }, /PORT/],
    ["LSS_RATE_LIMIT=abc", { LSS_RATE_LIMIT: "abc" }, /LSS_RATE_LIMIT/],
    ["LSS_RATE_LIMIT=0", { LSS_RATE_LIMIT: "0" }, /LSS_RATE_LIMIT/],
    ["LSS_RATE_LIMIT=OFF", { LSS_RATE_LIMIT: "OFF" }, /LSS_RATE_LIMIT/],
    ["LSS_MAX_TTL_MS=999", { LSS_MAX_TTL_MS: "999" }, /LSS_MAX_TTL_MS must be at least 1000/],
    ["LSS_MAX_TTL_MS=1e6", { LSS_MAX_TTL_MS: "1e6" }, /LSS_MAX_TTL_MS/],
    ["LSS_MAX_TTL_MS above a week", { LSS_MAX_TTL_MS: "604800001" }, /LSS_MAX_TTL_MS must be at most/],
    [
      "LSS_ADMIN_TOKEN too short",
      { LSS_ADMIN_TOKEN: "short" },
      /LSS_ADMIN_TOKEN must be at least 16 characters/,
    ],
    ["LSS_ADMIN_TOKEN of 15 characters", { LSS_ADMIN_TOKEN: "0123456789abcde" }, /LSS_ADMIN_TOKEN/],
    [
      "LSS_LOCKS_API_AUTH=closed",
      { LSS_LOCKS_API_AUTH: "closed" },
      /LSS_LOCKS_API_AUTH must be open or bearer/,
    ],
    ["LSS_TRUST_PROXY=yes", { LSS_TRUST_PROXY: "yes" }, /LSS_TRUST_PROXY must be true, false, or the number/],
    ["LSS_TRUST_PROXY=11", { LSS_TRUST_PROXY: "11" }, /LSS_TRUST_PROXY must be true, false, or the number/],
    ["LSS_ALLOW_EVICTION=yes", { LSS_ALLOW_EVICTION: "yes" }, /LSS_ALLOW_EVICTION must be true or false/],
    [
      "LSS_EVICTION_POLICY=none",
      { LSS_EVICTION_POLICY: "none" },
      /LSS_EVICTION_POLICY must be a Redis maxmemory-policy: noeviction/,
    ],
    ["LSS_MAX_LOCKS=0", { LSS_MAX_LOCKS: "0" }, /LSS_MAX_LOCKS must be at least 1/],
    ["LSS_OPEN_MAX_LOCKS=0", { LSS_OPEN_MAX_LOCKS: "0" }, /LSS_OPEN_MAX_LOCKS must be at least 1/],
    ["LSS_OPEN_MAX_LOCKS=lots", { LSS_OPEN_MAX_LOCKS: "lots" }, /LSS_OPEN_MAX_LOCKS must be a whole number/],
    [
      "LSS_GITHUB_SERVER_URL without a scheme",
      { LSS_GITHUB_SERVER_URL: "github.com" },
      /LSS_GITHUB_SERVER_URL must be/,
    ],
    ["LSS_PUBLIC_URL without a scheme", { LSS_PUBLIC_URL: "lss.example.com" }, /LSS_PUBLIC_URL must be/],
    ["LSS_PUBLIC_URL=ftp://…", { LSS_PUBLIC_URL: "ftp://lss.example.com" }, /LSS_PUBLIC_URL must be/],
    ["LSS_MAX_WAITS=0", { LSS_MAX_WAITS: "0" }, /LSS_MAX_WAITS must be at least 1/],
    ["LSS_MAX_LOCKS=many", { LSS_MAX_LOCKS: "many" }, /LSS_MAX_LOCKS must be a whole number/],
    ["LSS_MAX_WAITERS=100001", { LSS_MAX_WAITERS: "100001" }, /LSS_MAX_WAITERS must be at most 100000/],
    [
      "LSS_LOCK_RETENTION_DAYS=0",
      { LSS_LOCK_RETENTION_DAYS: "0" },
      /LSS_LOCK_RETENTION_DAYS must be at least 1/,
    ],
    ["LSS_HISTORY_EVENTS=0", { LSS_HISTORY_EVENTS: "0" }, /LSS_HISTORY_EVENTS must be at least 1/],
    ["LSS_HISTORY_EVENTS=10001", { LSS_HISTORY_EVENTS: "10001" }, /LSS_HISTORY_EVENTS must be at most 10000/],
    ["LSS_HISTORY_DAYS=0", { LSS_HISTORY_DAYS: "0" }, /LSS_HISTORY_DAYS must be at least 1/],
    ["LSS_METRICS=false", { LSS_METRICS: "false" }, /LSS_METRICS must be on or off/],
    ["LSS_ACCESS_LOG=true", { LSS_ACCESS_LOG: "true" }, /LSS_ACCESS_LOG must be on or off/],
    [
      "LSS_METRICS_TOKEN of 15 characters",
      { LSS_METRICS_TOKEN: "0123456789abcde" },
      /LSS_METRICS_TOKEN must be at least 16 characters/,
    ],
    ["LSS_TOKEN_CACHE_MS=-1", { LSS_TOKEN_CACHE_MS: "-1" }, /LSS_TOKEN_CACHE_MS/],
    ["LSS_TOKEN_CACHE_MS above 5 minutes", { LSS_TOKEN_CACHE_MS: "300001" }, /LSS_TOKEN_CACHE_MS/],
    ["LSS_STORE_TIMEOUT_MS=50", { LSS_STORE_TIMEOUT_MS: "50" }, /LSS_STORE_TIMEOUT_MS must be at least 100/],
    ["LSS_KEY_PREFIX with a space", { LSS_KEY_PREFIX: "a b" }, /LSS_KEY_PREFIX/],
    ["LSS_KEY_PREFIX with a colon", { LSS_KEY_PREFIX: "a:b" }, /LSS_KEY_PREFIX/],
  ])("%s is a ConfigError naming the variable", (_label, env, message) => {
    expect(configError(env).message).toMatch(message);
  });

  it("several mistakes are all reported, each by name", () => {
    const message = configError({ PORT: "abc", LSS_RATE_LIMIT: "abc", REDIS_URL: "http://x" }).message;
    expect(message).toMatch(/PORT/);
    expect(message).toMatch(/LSS_RATE_LIMIT/);
    expect(message).toMatch(/REDIS_URL/);
  });

  it("a ConfigError is an Error named ConfigError", () => {
    const err = configError({ PORT: "abc" });
    expect(err).toBeInstanceOf(Error);
    expect(err.name).toBe("ConfigError");
  });
});

describe("withTryOutAdminToken", () => {
  it("the memory store without an admin token gets a generated one", () => {
    const config = loadConfig({});
    const { config: out, generated } = withTryOutAdminToken(config);
    expect(generated).toBe(true);
    expect(out.adminToken).toEqual(expect.any(String));
    // Long enough to pass LSS_ADMIN_TOKEN's own rule.
    expect(out.adminToken?.length).toBeGreaterThanOrEqual(16);
    expect(loadConfig({ LSS_ADMIN_TOKEN: out.adminToken ?? "" }).adminToken).toBe(out.adminToken);
    expect({ ...out, adminToken: null }).toEqual(config);
    // The input is not changed.
    expect(config.adminToken).toBeNull();
  });

  it("each call generates a different token", () => {
    const config = loadConfig({});
    expect(withTryOutAdminToken(config).config.adminToken).not.toBe(
      withTryOutAdminToken(config).config.adminToken,
    );
  });

  it("a configured admin token is kept", () => {
    const config = loadConfig({ LSS_ADMIN_TOKEN: "my-admin-token-123" });
    const { config: out, generated } = withTryOutAdminToken(config);
    expect(generated).toBe(false);
    expect(out).toEqual(config);
  });

  it.each<[string, Env]>([
    ["redis", { REDIS_URL: "redis://localhost:6379" }],
    ["upstash", UPSTASH],
  ])("the %s store without an admin token gets none", (_kind, env) => {
    const config = loadConfig(env);
    const { config: out, generated } = withTryOutAdminToken(config);
    expect(generated).toBe(false);
    expect(out.adminToken).toBeNull();
    expect(out).toEqual(config);
  });
});
