/**
 * The rate limiter on each backend, for real: in memory, rate-limiter-flexible on a real
 * redis-server, @upstash/ratelimit through the Upstash REST bridge. Shared across server
 * instances on Redis, and failing closed (503, never "allowed") when Redis is down.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApp } from "../server/app.js";
import { memoryRateLimiter, type RateLimiter } from "../server/auth/rate-limit.js";
import { redisRateLimiter } from "../server/auth/rate-limit-redis.js";
import { upstashRateLimiter } from "../server/auth/rate-limit-upstash.js";
import { connectUpstash } from "../server/backend.js";
import { connectTcpRedis } from "../server/stores/tcp.js";
import { pathTo } from "../src/protocol/paths.js";
import { testConfig } from "./support/app.js";
import { type StoreBackends, startBackends } from "./support/stores.js";

let backends: StoreBackends;
beforeAll(async () => {
  backends = await startBackends(["redis", "upstash"]);
});
afterAll(() => backends.close());

const limiters: Record<string, (prefix: string, perMinute: number) => RateLimiter> = {
  memory: (_prefix, perMinute) => memoryRateLimiter(perMinute),
  redis: (prefix, perMinute) =>
    redisRateLimiter(
      connectTcpRedis({ mode: "single", url: backends.redis!.url }, 1000),
      perMinute,
      prefix,
      1000,
    ),
  upstash: (prefix, perMinute) =>
    upstashRateLimiter(connectUpstash(backends.bridge!.url, backends.bridge!.token, 1000), perMinute, prefix),
};

describe.each(Object.keys(limiters))("rate limiting on %s", (kind) => {
  it("answers 429 with Retry-After past the limit, per caller, and counts across instances", async () => {
    const prefix = `rl-${kind}-${Date.now()}`;
    const make = () =>
      createApp({
        store: backends.open("memory"),
        rateLimiter: limiters[kind]!(prefix, 3),
        config: testConfig(),
      });
    // Two instances share the limit when the limiter lives in Redis (memory: each its own).
    const a = make();
    const b = kind === "memory" ? a : make();
    const post = (app: App) => app.request(pathTo("createStateLock"), { method: "POST" });
    const statuses = [await post(a), await post(b), await post(a)].map((r) => r.status);
    expect(statuses).toEqual([200, 200, 200]);
    const limited = await post(b);
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get("Retry-After"))).toBeGreaterThanOrEqual(1);
    const body = (await limited.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe("rate_limited");
    expect(body.error.message).toMatch(/3 requests per minute/);
    // Another caller (a bearer token, here the admin's) has its own budget.
    const admin = await a.request(pathTo("status", { key: "k" }), {
      headers: { Authorization: "Bearer admin-token-for-tests-0123456789" },
    });
    expect(admin.status).toBe(200);
  });
});

type App = ReturnType<typeof createApp>;

/** Instances of one server (a limit of 3 a minute, shared in `kind`'s store) and an admin's POST. */
function instancesOf(kind: string, prefix: string) {
  const store = backends.open("memory");
  const make = (): App => createApp({ store, rateLimiter: limiters[kind]!(prefix, 3), config: testConfig() });
  const auth = {
    Authorization: "Bearer admin-token-for-tests-0123456789",
    "Content-Type": "application/json",
  };
  const call = async (app: App, path: string, body: object) =>
    await app.request(path, { method: "POST", headers: auth, body: JSON.stringify(body) });
  return { make, call };
}

describe.each(["redis", "upstash"])("renewals and releases on %s", (kind) => {
  it("are counted by each instance, not in the store: they leave the shared count alone", async () => {
    const prefix = `rl-tier-${kind}-${Date.now()}`;
    const { make, call } = instancesOf(kind, prefix);
    const [a, b] = [make(), make()];
    const granted = await call(a, pathTo("acquire", { key: "tiered" }), { ttl_ms: 30_000 });
    expect(granted.status).toBe(200);
    const { token } = (await granted.json()) as { token: string };
    const renew = (app: App) =>
      call(app, pathTo("renew", { key: "tiered" }), { token, ttl_ms: 30_000 }).then((r) => r.status);
    // Each instance allows a caller 3 renewals a minute…
    expect([await renew(a), await renew(a), await renew(a), await renew(a)]).toEqual([200, 200, 200, 429]);
    expect([await renew(b), await renew(b), await renew(b)]).toEqual([200, 200, 200]);
    // …and none of them counted in the store: the shared count still has 2 of its 3.
    const other = (key: string) =>
      call(b, pathTo("acquire", { key }), { ttl_ms: 30_000 }).then((r) => r.status);
    expect([await other("t2"), await other("t3"), await other("t4")]).toEqual([200, 200, 429]);
    // A release is counted in the instance too: past the shared limit, a third instance releases.
    expect((await call(b, pathTo("release", { key: "tiered" }), { token })).status).toBe(429);
    expect((await call(make(), pathTo("release", { key: "tiered" }), { token })).status).toBe(200);
  });
});

describe.each(["redis", "upstash"])("refused renewals on %s", (kind) => {
  it("are counted in the store too: past the shared limit an instance refuses the caller's renewals", async () => {
    const prefix = `rl-refused-${kind}-${Date.now()}`;
    const { make, call } = instancesOf(kind, prefix);
    const [a, b] = [make(), make()];
    const granted = await call(a, pathTo("acquire", { key: "refused" }), { ttl_ms: 30_000 });
    const { token } = (await granted.json()) as { token: string };
    const renew = async (app: App, t: string) =>
      (await call(app, pathTo("renew", { key: "refused" }), { token: t, ttl_ms: 30_000 })).status;
    // Two made-up tokens: refused, and counted in the store (with the acquire: 3 of 3).
    expect([await renew(a, "made-up-1"), await renew(a, "made-up-2")]).toEqual([409, 409]);
    // The third is refused by the store and finds the shared count spent: a blocks the caller…
    expect(await renew(a, "made-up-3")).toBe(409);
    expect(await renew(a, token)).toBe(429);
    // …and b, whose own count is untouched, finds the shared one spent for everything else.
    expect((await call(b, pathTo("acquire", { key: "other" }), { ttl_ms: 30_000 })).status).toBe(429);
    // A renewal the store grants is counted by the instance only.
    expect(await renew(b, token)).toBe(200);
  });
});

describe.each(["redis", "upstash"])("rate limiting on %s with Redis down", (kind) => {
  it("fails closed: 503, not an allowed request", async () => {
    const store = backends.open("memory");
    const app = createApp({
      store,
      rateLimiter: limiters[kind]!(`rl-down-${kind}`, 100),
      config: testConfig(),
    });
    expect((await app.request(pathTo("createStateLock"), { method: "POST" })).status).toBe(200);
    await backends.redis!.kill();
    try {
      const res = await app.request(pathTo("createStateLock"), { method: "POST" });
      expect(res.status).toBe(503);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe("store_unavailable");
    } finally {
      await backends.redis!.restart();
    }
  }, 30_000);
});

describe("the client address behind trusted proxies (LSS_TRUST_PROXY)", () => {
  const appBehind = (proxies: number) =>
    createApp({
      store: backends.open("memory"),
      rateLimiter: memoryRateLimiter(2),
      config: testConfig({ trustProxy: proxies }),
    });
  const post = (app: ReturnType<typeof appBehind>, forwardedFor: string) =>
    app.request(pathTo("createStateLock"), { method: "POST", headers: { "X-Forwarded-For": forwardedFor } });

  it("one proxy: the rightmost entry; rotating the entries a client writes does not escape the limit", async () => {
    const app = appBehind(1);
    const statuses = [];
    for (const spoofed of ["1.1.1.1", "2.2.2.2", "3.3.3.3"]) {
      statuses.push((await post(app, `${spoofed}, 198.51.100.9`)).status);
    }
    expect(statuses).toEqual([200, 200, 429]);
    // …nor can a client get someone else limited by writing their address.
    expect((await post(app, "198.51.100.9, 203.0.113.5")).status).toBe(200);
  });

  it("two proxies: the entry the outer proxy appended", async () => {
    const app = appBehind(2);
    expect((await post(app, "spoof-a, 198.51.100.9, 10.0.0.2")).status).toBe(200);
    expect((await post(app, "spoof-b, 198.51.100.9, 10.0.0.3")).status).toBe(200);
    expect((await post(app, "198.51.100.9, 10.0.0.2")).status).toBe(429);
  });
});
