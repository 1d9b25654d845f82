/**
 * Kill the redis-server mid-run: every endpoint answers 503 within a few seconds, nothing ever
 * reads as unlocked or granted, and service resumes by itself when Redis is back.
 */
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApp } from "../server/app.js";
import { upstashRateLimiter } from "../server/auth/rate-limit-upstash.js";
import { connectUpstash } from "../server/backend.js";
import { redisKeys } from "../server/stores/redis/keys.js";
import { pathTo } from "../src/protocol/paths.js";
import { appOn, request, testConfig } from "./support/app.js";
import { startCuttingProxy } from "./support/cutting-proxy.js";
import { sleep } from "./support/processes.js";
import { type StoreBackends, startBackends } from "./support/stores.js";

let backends: StoreBackends;
beforeAll(async () => {
  backends = await startBackends(["redis", "upstash"]);
});
afterAll(() => backends.close());

describe.each(["redis", "upstash"] as const)("with Redis down, on %s", (kind) => {
  it("answers 503 everywhere, never unlocked or granted, and recovers", async () => {
    const store = backends.open(kind, { timeoutMs: 1000 });
    // No token cache: a minted token must be looked up in the store, which is down.
    const { call } = appOn(store, testConfig({ tokenCacheMs: 0 }));
    const lease = await call("POST", pathTo("acquire", { key: "held" }), { ttl_ms: 600_000 });
    expect(lease.status).toBe(200);
    const lock = (await call("POST", pathTo("createStateLock", {}, { l: "true" }), undefined, null)).body;
    const unlocked = (await call("POST", pathTo("createStateLock"), undefined, null)).body;
    const minted = (await call("POST", pathTo("tokens"), { namespace: "ops", scopes: ["locks:read"] })).body
      .token;

    // Poll the held key while Redis dies: it reads locked, then 503; never unlocked.
    const seen = new Set<string>();
    let polling = true;
    const poller = (async () => {
      while (polling) {
        const r = await call("GET", pathTo("status", { key: "held" }));
        seen.add(r.status === 200 ? `200 locked:${r.body.locked}` : String(r.status));
        const g = await call("GET", pathTo("stateLock", { id: lock.id }), undefined, null);
        seen.add(`locks ${g.status}`);
      }
    })();
    await sleep(50);
    await backends.redis!.kill();
    await sleep(1500);

    const requests: Array<[string, string, unknown?, (string | null)?]> = [
      ["POST", pathTo("acquire", { key: "held" }), { ttl_ms: 1000 }],
      ["POST", pathTo("acquire", { key: "free" }), { ttl_ms: 1000 }],
      ["POST", pathTo("renew", { key: "held" }), { token: lease.body.token, ttl_ms: 1000 }],
      ["POST", pathTo("release", { key: "held" }), { token: lease.body.token }],
      ["GET", pathTo("status", { key: "held" })],
      ["GET", pathTo("status", { key: "free" })],
      ["GET", pathTo("stateLock", { id: lock.id }), undefined, null],
      ["GET", pathTo("stateLock", { id: unlocked.id }), undefined, null],
      ["POST", pathTo("createStateLock", {}, { l: "true" }), undefined, null],
      ["PATCH", pathTo("unlockStateLock", { id: lock.id }, { k: lock.key }), undefined, null],
      ["PATCH", pathTo("lockStateLock", { id: unlocked.id }, { k: unlocked.key }), undefined, null],
      ["GET", pathTo("status", { key: "held" }), undefined, minted],
      ["GET", pathTo("tokens")],
      ["GET", "/health"],
    ];
    for (const [method, path, body, token] of requests) {
      const started = Date.now();
      const res = await call(method, path, body, token === undefined ? undefined : token);
      expect(`${method} ${path} → ${res.status}`).toBe(`${method} ${path} → 503`);
      expect(Date.now() - started).toBeLessThan(5000);
      // Upstash answers an outage with an error of its own, which may as well follow a script's first
      // writes: a write there is outcome_unknown (503 too, its token or lock named), never "done".
      const codes =
        kind === "upstash" && method !== "GET"
          ? ["store_unavailable", "outcome_unknown"]
          : ["store_unavailable"];
      if (path !== "/health") expect(codes).toContain(res.body.error.code);
    }

    polling = false;
    await poller;
    expect([...seen].filter((s) => s.includes("false") || s.includes("204"))).toEqual([]);
    expect(seen).toContain("503");

    await backends.redis!.restart();
    const deadline = Date.now() + 10_000;
    let health = 0;
    while (Date.now() < deadline && health !== 200) {
      health = (await call("GET", "/health")).status;
      if (health !== 200) await sleep(100);
    }
    expect(health).toBe(200);
  }, 40_000);
});

describe("on a Redis that may evict keys (maxmemory-policy)", () => {
  it("refuses lock operations with a 503 naming the policy and the fix, unless the risk is accepted", async () => {
    const admin = new Redis(backends.redis!.url);
    await admin.config("SET", "maxmemory-policy", "volatile-lru");
    try {
      const { call } = appOn(backends.open("redis"));
      const refused = await call("POST", pathTo("acquire", { key: "evictable" }), { ttl_ms: 10_000 });
      expect(refused.status).toBe(503);
      expect(refused.body.error.code).toBe("store_unavailable");
      expect(refused.body.error.message).toMatch(/maxmemory-policy volatile-lru/);
      expect(refused.body.error.message).toMatch(/noeviction/);
      expect(refused.body.error.message).toMatch(/LSS_ALLOW_EVICTION=true/);
      // Reads are refused too: a lease Redis may have dropped must not read as free.
      expect((await call("GET", pathTo("status", { key: "evictable" }))).status).toBe(503);
      expect((await call("GET", pathTo("stateLock", { id: "some-id" }), undefined, null)).status).toBe(503);
      const health = await call("GET", "/health", undefined, null);
      expect(health.status).toBe(503);
      expect(health.body).toMatchObject({ store_reachable: true, eviction_policy: "volatile-lru" });
      expect(health.body.problem).toMatch(/noeviction/);

      const accepted = appOn(backends.open("redis", { allowEviction: true }), testConfig()).call;
      expect(
        (await accepted("POST", pathTo("acquire", { key: "evictable" }), { ttl_ms: 10_000 })).status,
      ).toBe(200);
      const acceptedHealth = await accepted("GET", "/health", undefined, null);
      expect(acceptedHealth.status).toBe(200);
      expect(acceptedHealth.body.eviction_policy).toBe("volatile-lru");
    } finally {
      await admin.config("SET", "maxmemory-policy", "noeviction");
      admin.disconnect();
    }
  });

  /** A user of the test's redis-server that may not run `denied` (as managed services refuse CONFIG). */
  const restrictedUser = async (name: string, denied: string[]) => {
    const admin = new Redis(backends.redis!.url);
    await admin.call(
      "ACL",
      "SETUSER",
      name,
      "reset",
      "on",
      ">pw",
      "~*",
      "&*",
      "+@all",
      ...denied.map((c) => `-${c}`),
    );
    admin.disconnect();
    return `redis://${name}:pw@127.0.0.1:${backends.redis!.port}`;
  };

  it("reads the policy from INFO when CONFIG is refused, and refuses to serve on an evicting one", async () => {
    const url = await restrictedUser("noconfig", ["config"]);
    const admin = new Redis(backends.redis!.url);
    await admin.config("SET", "maxmemory-policy", "volatile-lru");
    try {
      const { call } = appOn(backends.open("redis", { url }));
      const refused = await call("POST", pathTo("acquire", { key: "hidden-config" }), { ttl_ms: 10_000 });
      expect(refused.status).toBe(503);
      expect(refused.body.error.message).toMatch(/maxmemory-policy volatile-lru/);
      const health = await call("GET", "/health", undefined, null);
      expect(health.body).toMatchObject({ eviction_policy: "volatile-lru" });
    } finally {
      await admin.config("SET", "maxmemory-policy", "noeviction");
      admin.disconnect();
    }
    const { call } = appOn(backends.open("redis", { url }));
    expect((await call("POST", pathTo("acquire", { key: "hidden-config" }), { ttl_ms: 10_000 })).status).toBe(
      200,
    );
  });

  it("treats a policy it cannot read (CONFIG and INFO refused) as unsafe, until the operator names it", async () => {
    const url = await restrictedUser("blind", ["config", "info"]);
    const { call } = appOn(backends.open("redis", { url }));
    const refused = await call("POST", pathTo("acquire", { key: "blind" }), { ttl_ms: 10_000 });
    expect(refused.status).toBe(503);
    expect(refused.body.error.message).toMatch(/does not say its maxmemory-policy/);
    expect(refused.body.error.message).toMatch(/LSS_EVICTION_POLICY/);
    expect((await call("GET", pathTo("status", { key: "blind" }))).status).toBe(503);
    const health = await call("GET", "/health", undefined, null);
    expect(health.status).toBe(503);
    expect(health.body).toMatchObject({ store_reachable: true, eviction_policy: null });

    const declared = appOn(backends.open("redis", { url, evictionPolicy: "noeviction" })).call;
    expect((await declared("POST", pathTo("acquire", { key: "blind" }), { ttl_ms: 10_000 })).status).toBe(
      200,
    );
    expect((await declared("GET", "/health", undefined, null)).body).toMatchObject({
      eviction_policy: "noeviction",
      problem: null,
    });
    const evicting = appOn(backends.open("redis", { url, evictionPolicy: "allkeys-lru" })).call;
    const still = await evicting("POST", pathTo("acquire", { key: "blind-2" }), { ttl_ms: 10_000 });
    expect(still.status).toBe(503);
    expect(still.body.error.message).toMatch(/maxmemory-policy allkeys-lru/);
    const accepted = appOn(backends.open("redis", { url, allowEviction: true })).call;
    expect((await accepted("POST", pathTo("acquire", { key: "blind-3" }), { ttl_ms: 10_000 })).status).toBe(
      200,
    );
  });

  it("takes Upstash's documented default (eviction off) for a database whose policy it cannot read", async () => {
    const { call } = appOn(backends.open("upstash"));
    expect((await call("POST", pathTo("acquire", { key: "upstash-kept" }), { ttl_ms: 10_000 })).status).toBe(
      200,
    );
    expect((await call("GET", "/health", undefined, null)).body).toMatchObject({
      eviction_policy: null,
      problem: null,
    });
  });

  it("serves as usual with noeviction, and says so in /health", async () => {
    const { call } = appOn(backends.open("redis"));
    expect((await call("POST", pathTo("acquire", { key: "kept" }), { ttl_ms: 10_000 })).status).toBe(200);
    const health = await call("GET", "/health", undefined, null);
    expect(health.status).toBe(200);
    expect(health.body).toMatchObject({ eviction_policy: "noeviction", problem: null });
  });
});

describe.each(["redis", "upstash"] as const)("a write the store did not confirm, on %s", (kind) => {
  it("answers 503 outcome_unknown with the lease token, and the lease it may have made can be settled", async () => {
    // Redis hangs (SIGSTOP) with the script already sent: the server cannot know whether it ran.
    const { call } = appOn(backends.open(kind, { timeoutMs: 500 }));
    // Connected, and the scripts loaded (else the hung EVALSHA would end in NOSCRIPT, not a grant).
    const warm = await call("POST", pathTo("acquire", { key: "warm" }), { ttl_ms: 1000 });
    expect(warm.status).toBe(200);
    backends.redis!.pause();
    let answer: Awaited<ReturnType<typeof call>>;
    try {
      answer = await call("POST", pathTo("acquire", { key: "hung" }), {
        ttl_ms: 600_000,
        holder_id: "no-token",
      });
    } finally {
      backends.redis!.resume();
    }
    expect(answer.status).toBe(503);
    expect(answer.body.error.code).toBe("outcome_unknown");
    expect(answer.body.error.message).toMatch(/may have happened/);
    expect(answer.headers.get("retry-after")).toBe("1");
    const token = answer.body.token as string;
    expect(token).toMatch(/^[0-9a-f]{32}$/);
    // Once Redis runs again, the script it had read did grant the lease: the token settles it.
    await sleep(200);
    const seen = (await call("GET", pathTo("status", { key: "hung" }))).body;
    expect(seen).toMatchObject({ locked: true, holder_id: "no-token" });
    const retried = await call("POST", pathTo("acquire", { key: "hung" }), { ttl_ms: 600_000, token });
    expect(retried.status).toBe(200);
    expect(retried.body.fencing_token).toBe(seen.fencing_token);
    expect((await call("POST", pathTo("release", { key: "hung" }), { token })).status).toBe(200);
    expect((await call("GET", pathTo("status", { key: "hung" }))).body.locked).toBe(false);
  }, 30_000);

  it.runIf(kind === "upstash")(
    "never says nothing changed when an earlier attempt may have run the script (its answer lost, the retry refused)",
    async () => {
      // In front of the bridge: the first request goes through and its answer is cut off; then
      // the proxy stops listening, so the retry's connection is refused.
      const proxy = await startCuttingProxy(backends.bridge!.url, { cut: 1, thenRefuse: true });
      const prefix = `lost-answer-${Date.now()}`;
      const direct = appOn(backends.open(kind, { prefix })).call;
      // The script loaded (EVALSHA finds it): the lost answer is the one of the script that ran.
      expect((await direct("POST", pathTo("acquire", { key: "warm" }), { ttl_ms: 1000 })).status).toBe(200);
      const cut = appOn(backends.open(kind, { url: proxy.url, prefix })).call;
      const answer = await cut("POST", pathTo("acquire", { key: "lost" }), {
        ttl_ms: 60_000,
        token: "my-token",
      });
      expect(answer.status).toBe(503);
      // Before: store_unavailable "nothing was changed or granted", from the refused retry alone.
      expect(answer.body.error.code).toBe("outcome_unknown");
      expect(answer.body.token).toBe("my-token");
      // It had been granted: the same token settles it.
      expect((await direct("GET", pathTo("status", { key: "lost" }))).body.locked).toBe(true);
      expect((await direct("POST", pathTo("release", { key: "lost" }), { token: "my-token" })).status).toBe(
        200,
      );
    },
  );

  it.runIf(kind === "upstash")(
    "a create whose answer is lost and whose retry goes through answers the lock it made, not a collision",
    async () => {
      const proxy = await startCuttingProxy(backends.bridge!.url, { cut: 1 });
      try {
        const prefix = `lost-create-${Date.now()}`;
        const direct = appOn(backends.open(kind, { prefix })).call;
        // The script loaded (EVALSHA finds it): the lost answer is the one of the script that ran.
        expect((await direct("POST", pathTo("createStateLock"), undefined, null)).status).toBe(200);
        const cut = appOn(backends.open(kind, { url: proxy.url, prefix })).call;
        // Before: the retried script found the lock it had made, and the answer was 500 "collision".
        const created = await cut("POST", pathTo("createStateLock", {}, { l: "true" }), undefined, null);
        expect(created.status, created.text).toBe(200);
        expect(proxy.connections()).toBeGreaterThanOrEqual(2);
        expect(
          (await direct("GET", pathTo("stateLock", { id: created.body.id }), undefined, null)).status,
        ).toBe(423);
        const unlock = pathTo(
          "unlockStateLock",
          { id: created.body.id },
          { k: encodeURIComponent(created.body.key) },
        );
        expect((await direct("PATCH", unlock, undefined, null)).status).toBe(204);
      } finally {
        await proxy.close();
      }
    },
  );

  it("calls a script that failed part-way outcome_unknown, as on TCP Redis", async () => {
    const prefix = `half-${kind}-${Date.now()}`;
    const { call } = appOn(backends.open(kind, { prefix }));
    const shared = { ttl_ms: 60_000, mode: "shared" };
    expect((await call("POST", pathTo("acquire", { key: "broken" }), { ...shared, token: "a" })).status).toBe(
      200,
    );
    // The holders hash replaced by a string: the script's HGETALL fails after it began.
    const client = new Redis(backends.redis!.url);
    await client.set(redisKeys(prefix).holders({ namespace: "default", key: "broken" }), "not a hash");
    client.disconnect();
    const answer = await call("POST", pathTo("acquire", { key: "broken" }), { ...shared, token: "b" });
    expect(answer.status).toBe(503);
    // Before (Upstash): store_unavailable, "nothing was changed or granted".
    expect(answer.body.error.code).toBe("outcome_unknown");
  });

  it("still says store_unavailable, nothing changed, when no connection took the command", async () => {
    const { call } = appOn(backends.open(kind, { timeoutMs: 500 }));
    expect((await call("GET", pathTo("status", { key: "down" }))).status).toBe(200);
    await backends.redis!.kill();
    try {
      const answer = await call("POST", pathTo("acquire", { key: "down" }), { ttl_ms: 1000 });
      expect(answer.status).toBe(503);
      expect(["store_unavailable", "outcome_unknown"]).toContain(answer.body.error.code);
      if (kind === "redis") expect(answer.body.error.code).toBe("store_unavailable");
    } finally {
      await backends.redis!.restart();
    }
  }, 30_000);
});

describe("an Upstash database past its plan's limit (the free plan's requests a month)", () => {
  // With the rate limiter (the default, counted in Upstash before the route) and without it.
  it.each([true, false])(
    "answers 503 naming the cause, on /health too, never granted or unlocked, and recovers (rate limiter on: %s)",
    async (limited) => {
      const store = backends.open("upstash", { timeoutMs: 1000 });
      const bridgeUrl = backends.bridge?.url ?? "";
      const rateLimiter = limited
        ? upstashRateLimiter(
            connectUpstash(bridgeUrl, backends.bridge?.token ?? "", 1000),
            1000,
            `rl${Date.now()}`,
          )
        : null;
      const app = createApp({ store, rateLimiter, config: testConfig({ tokenCacheMs: 0 }) });
      const call = (method: string, path: string, body?: unknown) =>
        request(app, method, path, { json: body });
      const lease = await call("POST", pathTo("acquire", { key: "held" }), { ttl_ms: 600_000 });
      expect(lease.status).toBe(200);
      const bridge = backends.bridge as NonNullable<typeof backends.bridge>;
      bridge.exhaust(true);
      try {
        for (const [method, path, body] of [
          ["POST", pathTo("acquire", { key: "free" }), { ttl_ms: 1000 }],
          ["GET", pathTo("status", { key: "held" })],
          ["POST", pathTo("release", { key: "held" }), { token: lease.body.token }],
        ] as const) {
          const r = await call(method, path, body);
          expect([method, path, r.status]).toEqual([method, path, 503]);
          expect(r.body.error.message).toMatch(
            /past its plan's limit \(max requests limit exceeded\. Limit: 500000\)/,
          );
        }
        await sleep(1100); // /health looks at the store at most once a second
        const health = await call("GET", "/health");
        expect(health.status).toBe(503);
        expect(health.body).toMatchObject({ status: "error", store_reachable: false });
        expect(health.body.problem).toContain("Upstash refuses every command");
      } finally {
        bridge.exhaust(false);
      }
      const after = await call("GET", pathTo("status", { key: "held" }));
      expect(after.body).toMatchObject({ locked: true, fencing_token: lease.body.fencing_token });
    },
  );
});
