/**
 * Kill the redis-server mid-run: every endpoint answers 503 within a few seconds, nothing ever
 * reads as unlocked or granted, and service resumes by itself when Redis is back.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { appOn, type StoreBackends, startBackends, testConfig } from "./support/stores.js";

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
    const lease = await call("POST", "/infra/locks/held/acquire", { ttl_ms: 600_000 });
    expect(lease.status).toBe(200);
    const lock = (await call("POST", "/locks?l=true", undefined, null)).body;
    const unlocked = (await call("POST", "/locks", undefined, null)).body;
    const minted = (await call("POST", "/admin/tokens", { namespace: "ops", scopes: ["locks:read"] })).body
      .token;

    // Poll the held key while Redis dies: it reads locked, then 503; never unlocked.
    const seen = new Set<string>();
    let polling = true;
    const poller = (async () => {
      while (polling) {
        const r = await call("GET", "/infra/locks/held");
        seen.add(r.status === 200 ? `200 locked:${r.body.locked}` : String(r.status));
        const g = await call("GET", `/locks/${lock.id}`, undefined, null);
        seen.add(`locks ${g.status}`);
      }
    })();
    await new Promise((r) => setTimeout(r, 50));
    await backends.redis!.kill();
    await new Promise((r) => setTimeout(r, 1500));

    const requests: Array<[string, string, unknown?, (string | null)?]> = [
      ["POST", "/infra/locks/held/acquire", { ttl_ms: 1000 }],
      ["POST", "/infra/locks/free/acquire", { ttl_ms: 1000 }],
      ["POST", "/infra/locks/held/renew", { token: lease.body.token, ttl_ms: 1000 }],
      ["POST", "/infra/locks/held/release", { token: lease.body.token }],
      ["GET", "/infra/locks/held"],
      ["GET", "/infra/locks/free"],
      ["GET", `/locks/${lock.id}`, undefined, null],
      ["GET", `/locks/${unlocked.id}`, undefined, null],
      ["POST", "/locks?l=true", undefined, null],
      ["PATCH", `/locks/${lock.id}/unlock?k=${lock.key}`, undefined, null],
      ["PATCH", `/locks/${unlocked.id}/lock?k=${unlocked.key}`, undefined, null],
      ["GET", "/infra/locks/held", undefined, minted],
      ["GET", "/admin/tokens"],
      ["GET", "/health"],
    ];
    for (const [method, path, body, token] of requests) {
      const started = Date.now();
      const res = await call(method, path, body, token === undefined ? undefined : token);
      expect(`${method} ${path} → ${res.status}`).toBe(`${method} ${path} → 503`);
      expect(Date.now() - started).toBeLessThan(5000);
      if (path !== "/health") expect(res.body.error.code).toBe("store_unavailable");
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
      if (health !== 200) await new Promise((r) => setTimeout(r, 100));
    }
    expect(health).toBe(200);
  }, 40_000);
});
