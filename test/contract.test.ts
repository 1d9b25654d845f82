/**
 * The lock contract, run against every store through the HTTP API: memory, a real redis-server,
 * @upstash/redis through the REST bridge to it, and a three-node Redis Cluster. This suite is what
 * keeps the stores equal.
 */
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { redisKeys } from "../server/stores/redis/keys.js";
import { DEFAULT_LIMITS, GC_SLACK_MS, type StoreLimits } from "../server/stores/types.js";
import { appOn, testConfig } from "./support/app.js";
import { sleep } from "./support/processes.js";
import { type StoreBackends, startBackends, WITH_CLUSTER } from "./support/stores.js";

let backends: StoreBackends;
beforeAll(async () => {
  backends = await startBackends(WITH_CLUSTER);
});
afterAll(() => backends.close());

const acquire = (key: string, body: Record<string, unknown>) =>
  ["POST", `/infra/locks/${encodeURIComponent(key)}/acquire`, body] as const;
const release = (key: string, token: string) =>
  ["POST", `/infra/locks/${encodeURIComponent(key)}/release`, { token }] as const;
const renew = (key: string, token: string, ttl_ms: number) =>
  ["POST", `/infra/locks/${encodeURIComponent(key)}/renew`, { token, ttl_ms }] as const;
const status = (key: string) => ["GET", `/infra/locks/${encodeURIComponent(key)}`] as const;

describe.each(WITH_CLUSTER)("lease API on %s", (kind) => {
  const client = () => appOn(backends.open(kind)).call;

  it("grants a lease with a token and a fencing token, and shows its holder but never its token", async () => {
    const call = client();
    const before = Date.now();
    const granted = await call(
      ...acquire("qa-env", { ttl_ms: 15_000, holder_id: "worker-1", reason: "e2e" }),
    );
    expect(granted.status).toBe(200);
    expect(granted.body).toMatchObject({
      status: "ok",
      key: "qa-env",
      locked: true,
      holder_id: "worker-1",
      reason: "e2e",
    });
    expect(granted.body.token).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(granted.body.fencing_token).toBeGreaterThan(0);
    const expiresAt = Date.parse(granted.body.expires_at);
    expect(expiresAt).toBeGreaterThanOrEqual(before + 15_000 - 1000);
    expect(expiresAt).toBeLessThanOrEqual(Date.now() + 15_000 + 1000);
    expect(granted.body.expires_in_ms).toBe(15_000);

    const seen = await call(...status("qa-env"));
    expect(seen.status).toBe(200);
    expect(seen.body).toMatchObject({
      locked: true,
      holder_id: "worker-1",
      reason: "e2e",
      fencing_token: granted.body.fencing_token,
      expires_at: granted.body.expires_at,
    });
    expect(JSON.stringify(seen.body)).not.toContain(granted.body.token);
  });

  it("shows exactly the fencing token each grant handed out (16 digits, none lost)", async () => {
    const call = client();
    for (const key of ["digits-1", "digits-2", "digits-3"]) {
      const granted = await call(...acquire(key, { ttl_ms: 10_000 }));
      expect((await call(...status(key))).body.fencing_token).toBe(granted.body.fencing_token);
    }
  });

  it("answers 409 with the holder and its expiry when the key is held", async () => {
    const call = client();
    const first = await call(...acquire("k", { ttl_ms: 10_000, holder_id: "ci/run-1", reason: "deploy" }));
    const second = await call(...acquire("k", { ttl_ms: 10_000, holder_id: "ci/run-2" }));
    expect(second.status).toBe(409);
    expect(second.body).toMatchObject({
      status: "error",
      error: { code: "lock_held" },
      locked: true,
      holder_id: "ci/run-1",
      reason: "deploy",
      expires_at: first.body.expires_at,
    });
    expect(second.body.error.message).toContain("ci/run-1");
    expect(second.body.expires_in_ms).toBeGreaterThan(9_000);
    expect(JSON.stringify(second.body)).not.toContain(first.body.token);
  });

  it("treats a retried acquire with the same client token as the same lease", async () => {
    const call = client();
    const first = await call(...acquire("idem", { ttl_ms: 5_000, token: "my-chosen-token" }));
    await sleep(20);
    const retry = await call(...acquire("idem", { ttl_ms: 5_000, token: "my-chosen-token" }));
    expect(retry.status).toBe(200);
    expect(retry.body.token).toBe("my-chosen-token");
    expect(retry.body.fencing_token).toBe(first.body.fencing_token);
    expect(Date.parse(retry.body.expires_at)).toBeGreaterThan(Date.parse(first.body.expires_at));
    const other = await call(...acquire("idem", { ttl_ms: 5_000, token: "another-token" }));
    expect(other.status).toBe(409);
    // Acquiring again sets the lease to end ttl_ms from now, as a renewal does: shorter too (a hold
    // of four hours, taken again for one, ends in one).
    const shorter = await call(...acquire("idem", { ttl_ms: 1_000, token: "my-chosen-token" }));
    expect(shorter.body.expires_in_ms).toBe(1_000);
    expect(Date.parse(shorter.body.expires_at)).toBeLessThan(Date.parse(retry.body.expires_at));
    expect((await call(...status("idem"))).body.expires_in_ms).toBeLessThanOrEqual(1_000);
  });

  it("releases only with the lease's token, and a retried release still says released", async () => {
    const call = client();
    const { body: lease } = await call(...acquire("rel", { ttl_ms: 10_000 }));
    const wrong = await call(...release("rel", "not-the-token"));
    expect(wrong.status).toBe(409);
    expect(wrong.body.error.code).toBe("lock_held");
    expect((await call(...status("rel"))).body.locked).toBe(true);

    const ok = await call(...release("rel", lease.token));
    expect(ok.status).toBe(200);
    expect(ok.body).toEqual({ status: "ok", key: "rel", locked: false });
    expect((await call(...status("rel"))).body).toMatchObject({
      locked: false,
      holder_id: null,
      fencing_token: null,
    });
    const again = await call(...release("rel", lease.token));
    expect(again.status).toBe(200);
  });

  it("renews a held lease from now, refuses other tokens, and refuses once expired", async () => {
    const call = client();
    const { body: lease } = await call(...acquire("ren", { ttl_ms: 300 }));
    const renewed = await call(...renew("ren", lease.token, 10_000));
    expect(renewed.status).toBe(200);
    expect(renewed.body.fencing_token).toBe(lease.fencing_token);
    expect(renewed.body.expires_in_ms).toBe(10_000);
    const wrong = await call(...renew("ren", "nope", 10_000));
    expect(wrong.status).toBe(409);
    expect(wrong.body.error.code).toBe("lock_held");

    const { body: short } = await call(...acquire("ren2", { ttl_ms: 100 }));
    await sleep(200);
    const late = await call(...renew("ren2", short.token, 10_000));
    expect(late.status).toBe(409);
    expect(late.body.error.code).toBe("not_held");
    const lateRelease = await call(...release("ren2", short.token));
    expect(lateRelease.status).toBe(409);
    expect(lateRelease.body.error.code).toBe("not_held");
  });

  it("frees an expired lease for the next holder, with a higher fencing token", async () => {
    const call = client();
    const first = await call(...acquire("exp", { ttl_ms: 100, holder_id: "a" }));
    expect((await call(...acquire("exp", { ttl_ms: 100, holder_id: "b" }))).status).toBe(409);
    await sleep(200);
    expect((await call(...status("exp"))).body.locked).toBe(false);
    const second = await call(...acquire("exp", { ttl_ms: 1000, holder_id: "b" }));
    expect(second.status).toBe(200);
    expect(second.body.fencing_token).toBeGreaterThan(first.body.fencing_token);
    // The old holder's token no longer releases anything.
    expect((await call(...release("exp", first.body.token))).status).toBe(409);
    expect((await call(...status("exp"))).body.holder_id).toBe("b");
  });

  it("hands out strictly increasing fencing tokens, also across keys and after release", async () => {
    const call = client();
    const tokens: number[] = [];
    for (let i = 0; i < 10; i++) {
      const key = i % 2 ? "fence-a" : "fence-b";
      const { body } = await call(...acquire(key, { ttl_ms: 5000 }));
      tokens.push(body.fencing_token);
      await call(...release(key, body.token));
    }
    for (let i = 1; i < tokens.length; i++) expect(tokens[i]).toBeGreaterThan(tokens[i - 1] as number);
    // At least the store's clock in ms: a store that lost its counter still hands out larger tokens.
    expect(tokens[0]).toBeGreaterThan(Date.now() - 60_000);
  });

  it("lets an operator force a release, and the next grant gets a higher fencing token", async () => {
    const call = client();
    const held = await call(...acquire("forced", { ttl_ms: 600_000, token: "team-secret" }));
    const forced = await call("POST", "/infra/locks/forced/release", { force: true });
    expect(forced.status).toBe(200);
    expect((await call(...status("forced"))).body.locked).toBe(false);
    expect((await call(...release("forced", "team-secret"))).status).toBe(409);
    const next = await call(...acquire("forced", { ttl_ms: 1000 }));
    expect(next.body.fencing_token).toBeGreaterThan(held.body.fencing_token);
  });

  it("keeps long holder ids and reasons whole (multi-byte text, stored in parts), and a shorter one leaves nothing of the last", async () => {
    const call = client();
    const holder = "ci · é漢字🔒 ".repeat(23).slice(0, 256);
    const reason = "why · ünïcödé ✓ ".repeat(40).slice(0, 512);
    const granted = await call(...acquire("long-text", { ttl_ms: 60_000, holder_id: holder, reason }));
    expect(granted.status).toBe(200);
    expect(granted.body).toMatchObject({ holder_id: holder, reason });
    expect((await call(...status("long-text"))).body).toMatchObject({ holder_id: holder, reason });
    const listed = await call("GET", "/infra/locks?prefix=long-text");
    expect(listed.body.locks[0]).toMatchObject({ holder_id: holder, reason });
    expect((await call(...release("long-text", granted.body.token))).status).toBe(200);
    const next = await call(...acquire("long-text", { ttl_ms: 60_000, holder_id: "short" }));
    expect(next.body).toMatchObject({ holder_id: "short", reason: null });
    expect((await call(...status("long-text"))).body).toMatchObject({ holder_id: "short", reason: null });
    const history = (await call("GET", "/infra/locks/long-text/history")).body.events;
    expect(history.map((e: { holder_id: string }) => e.holder_id)).toEqual(["short", holder, holder]);
  });

  it("keeps keys with odd but valid characters apart", async () => {
    const call = client();
    const keys = ["a/b", "a:b", "ünï cödé ✓", "a b", "a%2Fb", "x".repeat(512)];
    const grants = await Promise.all(
      keys.map((k) => call(...acquire(k, { ttl_ms: 5000, holder_id: k.slice(0, 50) }))),
    );
    for (const g of grants) expect(g.status).toBe(200);
    for (const k of keys)
      expect((await call(...status(k))).body).toMatchObject({
        key: k,
        locked: true,
        holder_id: k.slice(0, 50),
      });
  });
});

describe.each(WITH_CLUSTER)("/locks API on %s", (kind) => {
  const client = () => appOn(backends.open(kind)).call;

  it("creates, checks, locks and unlocks as the document shows", async () => {
    const call = client();
    const created = await call("POST", "/locks", undefined, null);
    expect(created.status).toBe(200);
    const { id, key } = created.body;
    expect(created.body).toMatchObject({ locked: false, lockId: id, lockKey: key, isLocked: false });
    expect((await call("GET", `/locks/${id}`, undefined, null)).status).toBe(204);

    expect((await call("PATCH", `/locks/${id}/lock?k=${key}`, undefined, null)).status).toBe(204);
    const locked = await call("GET", `/locks/${id}`, undefined, null);
    expect(locked.status).toBe(423);
    expect(locked.body).toMatchObject({ id, locked: true, expires_at: null });

    expect((await call("PATCH", `/locks/${id}/unlock?k=${key}`, undefined, null)).status).toBe(204);
    expect((await call("GET", `/locks/${id}`, undefined, null)).status).toBe(204);
    expect((await call("GET", "/locks/no-such-lock", undefined, null)).status).toBe(404);
  });

  it("changes nothing for a wrong or missing k", async () => {
    const call = client();
    const { body } = await call("POST", "/locks?l=T&k=team-secret", undefined, null);
    expect(body.key).toBe("team-secret");
    expect((await call("PATCH", `/locks/${body.id}/unlock`, undefined, null)).status).toBe(401);
    expect((await call("PATCH", `/locks/${body.id}/unlock?k=guess`, undefined, null)).status).toBe(403);
    expect((await call("GET", `/locks/${body.id}`, undefined, null)).status).toBe(423);
  });

  it("reads an expired lock as unlocked without deleting it", async () => {
    const call = client();
    const { body } = await call("POST", "/locks?l=1&e=1", undefined, null);
    expect(body.locked).toBe(true);
    expect((await call("GET", `/locks/${body.id}`, undefined, null)).status).toBe(423);
    await sleep(1100);
    expect((await call("GET", `/locks/${body.id}`, undefined, null)).status).toBe(204);
    expect((await call("PATCH", `/locks/${body.id}/lock?k=${body.key}&e=60`, undefined, null)).status).toBe(
      204,
    );
    const again = await call("GET", `/locks/${body.id}`, undefined, null);
    expect(again.status).toBe(423);
    expect(again.body.expires_in_ms).toBeGreaterThan(58_000);
  });

  it("is the lease key locks/<id> on the same engine, in the open API's namespace", async () => {
    const admin = client();
    // The open API's anonymous locks live in the namespace "open": a token of it reaches them.
    const minted = await admin("POST", "/admin/tokens", {
      namespace: "open",
      scopes: ["locks:read", "locks:write"],
    });
    const call = (m: string, p: string, b?: unknown) => admin(m, p, b, minted.body.token);
    const { body } = await call("POST", "/locks?l=true", undefined);
    const leaseKey = `locks/${body.id}`;
    const seen = await call(...status(leaseKey));
    expect(seen.body).toMatchObject({ locked: true, expires_at: null });
    expect(seen.body.fencing_token).toBeGreaterThan(0);
    // Not in the admin's namespace.
    expect((await admin(...status(leaseKey))).body.locked).toBe(false);

    // Without its k, the lease API cannot take or free it.
    const stolen = await call(...acquire(leaseKey, { ttl_ms: 1000 }));
    expect(stolen.status).toBe(403);
    expect((await call(...release(leaseKey, "guess"))).status).toBe(403);
    // With its k as the token, the lease API sees the same lease.
    const same = await call(...acquire(leaseKey, { ttl_ms: 60_000, token: body.key }));
    expect(same.status).toBe(200);
    expect(same.body.fencing_token).toBe(seen.body.fencing_token);
    expect((await call(...release(leaseKey, body.key))).status).toBe(200);
    expect((await admin("GET", `/locks/${body.id}`, undefined, null)).status).toBe(204);
    // A plain lease key under locks/ is not a state lock.
    await call(...acquire("locks/plain", { ttl_ms: 5000 }));
    expect((await admin("GET", "/locks/plain", undefined, null)).status).toBe(404);
  });
});

describe.each(WITH_CLUSTER)("namespaces on %s", (kind) => {
  it("never let two teams see or touch each other's keys", async () => {
    const store = backends.open(kind);
    const { call } = appOn(store);
    const mint = async (namespace: string) =>
      (await call("POST", "/admin/tokens", { namespace, scopes: ["locks:read", "locks:write"] })).body
        .token as string;
    const teamA = await mint("team-a");
    const teamB = await mint("team-b");
    const a = await call(...acquire("shared-name", { ttl_ms: 5000, holder_id: "a" }), teamA);
    expect(a.status).toBe(200);
    expect((await call(...status("shared-name"), undefined, teamB)).body.locked).toBe(false);
    expect((await call(...acquire("shared-name", { ttl_ms: 5000 }), teamB)).status).toBe(200);
    expect((await call(...release("shared-name", a.body.token), teamB)).status).toBe(409);
    expect((await call(...status("shared-name"), undefined, teamA)).body.holder_id).toBe("a");
  });
});

describe.each(WITH_CLUSTER)("the store's bounds on %s", (kind) => {
  const limits = (overrides: Partial<StoreLimits>): StoreLimits => ({ ...DEFAULT_LIMITS, ...overrides });

  it("caps a namespace's locks: a new key past LSS_MAX_LOCKS gets 403 quota_exceeded; kept keys still work", async () => {
    // The /locks API with tokens: it writes to the token's namespace.
    const { call } = appOn(
      backends.open(kind, { limits: limits({ locksPerNamespace: 3 }) }),
      testConfig({ locksApiAuth: "bearer" }),
    );
    const tokens: string[] = [];
    for (const key of ["q1", "q2", "q3"]) {
      const r = await call(...acquire(key, { ttl_ms: 60_000 }));
      expect(r.status).toBe(200);
      tokens.push(r.body.token);
    }
    const refused = await call(...acquire("q4", { ttl_ms: 60_000 }));
    expect(refused.status).toBe(403);
    expect(refused.body).toMatchObject({ error: { code: "quota_exceeded" }, limit: "locks", max: 3 });
    expect(refused.body.error.message).toMatch(/namespace "default" already has 3 live locks.*LSS_MAX_LOCKS/);
    // The /locks API shares the bound of the namespace it writes to (its locks are records too).
    const created = await call("POST", "/locks?l=true");
    expect(created.status).toBe(403);
    expect(created.body.error.code).toBe("quota_exceeded");
    // A key that has a record is not new: released and taken again, it still works.
    expect((await call(...release("q1", tokens[0]!))).status).toBe(200);
    expect((await call(...acquire("q1", { ttl_ms: 60_000 }))).status).toBe(200);
    // Another namespace has its own bound.
    const other = (await call("POST", "/admin/tokens", { namespace: "other", scopes: ["locks:write"] })).body
      .token;
    expect((await call(...acquire("q4", { ttl_ms: 60_000 }), other)).status).toBe(200);
  });

  it("caps a key's queue: a waiter past LSS_MAX_WAITERS gets 403 quota_exceeded", async () => {
    const { call } = appOn(backends.open(kind, { limits: limits({ waitersPerKey: 2 }) }));
    await call(...acquire("crowded", { ttl_ms: 60_000 }));
    const wait = (token: string) => call(...acquire("crowded", { ttl_ms: 1000, token, wait_ms: 100 }));
    expect((await wait("w1")).status).toBe(409);
    expect((await wait("w2")).status).toBe(409);
    const third = await wait("w3");
    expect(third.status).toBe(403);
    expect(third.body).toMatchObject({ error: { code: "quota_exceeded" }, limit: "waiters", max: 2 });
    expect(third.body.error.message).toMatch(/LSS_MAX_WAITERS/);
    // One already in line keeps its place.
    expect((await wait("w1")).body.position).toBe(1);
  });

  it("deletes a /locks lock its retention after its last write, even one locked without end", async () => {
    const { call } = appOn(backends.open(kind, { limits: limits({ lockRetentionMs: 600 }) }));
    const idle = (await call("POST", "/locks", undefined, null)).body;
    const forever = (await call("POST", "/locks?l=true", undefined, null)).body;
    const used = (await call("POST", "/locks", undefined, null)).body;
    await sleep(400);
    // A write (locking it for a second) keeps it: its retention counts from then, or from its end.
    expect((await call("PATCH", `/locks/${used.id}/lock?k=${used.key}&e=1`, undefined, null)).status).toBe(
      204,
    );
    await sleep(400);
    expect((await call("GET", `/locks/${idle.id}`, undefined, null)).status).toBe(404);
    expect((await call("GET", `/locks/${used.id}`, undefined, null)).status).toBe(423);
    expect((await call("GET", `/locks/${forever.id}`, undefined, null)).status).toBe(404);
    await sleep(1400);
    expect((await call("GET", `/locks/${used.id}`, undefined, null)).status).toBe(404);
  });
});

describe("on Redis", () => {
  it("hands out a token above every earlier one when the fencing counter is behind, as a promoted replica's may be", async () => {
    const prefix = "behind";
    const { call } = appOn(backends.open("redis", { prefix }));
    const client = new Redis(backends.redis!.url);
    try {
      const first = await call(...acquire("fenced", { ttl_ms: 60_000 }));
      await call(...release("fenced", first.body.token));
      // The counter as a replica may have it: from before the last grants (here: from long ago).
      await client.set(redisKeys(prefix).fence("default"), "1000");
      const next = await call(...acquire("fenced", { ttl_ms: 60_000 }));
      expect(next.body.fencing_token).toBeGreaterThan(first.body.fencing_token);
      // Before: the counter's INCR alone, 1001.
      expect(next.body.fencing_token).toBeGreaterThan(Date.now() * 1000 - 60_000_000);
    } finally {
      client.disconnect();
    }
  });

  it("leaves nothing behind once a lease has expired or was released: Redis drops it soon after", async () => {
    const prefix = "cleanup";
    const { call } = appOn(backends.open("redis", { prefix }));
    const client = new Redis(backends.redis!.url);
    try {
      for (const [key, ttl_ms, release_it] of [
        ["gone", 50, false],
        ["released", 60_000, true],
      ] as const) {
        const { body } = await call(...acquire(key, { ttl_ms }));
        if (release_it) await call(...release(key, body.token));
        const expiresAt = Date.parse(body.expires_at);
        const dropAt =
          Date.now() + (await client.pttl(redisKeys(prefix).lock({ namespace: "default", key })));
        // The record goes at most GC_SLACK_MS after the lease would have ended.
        expect(dropAt).toBeGreaterThan(expiresAt);
        expect(dropAt).toBeLessThanOrEqual(expiresAt + GC_SLACK_MS + 100);
      }
      // Renewing within the slack does not move the key's expiry (no command spent on it)…
      const { body } = await call(...acquire("renewed", { ttl_ms: 60_000 }));
      const key = redisKeys(prefix).lock({ namespace: "default", key: "renewed" });
      const first = await client.pttl(key);
      await call(...renew("renewed", body.token, 60_000));
      expect(Math.abs((await client.pttl(key)) - first)).toBeLessThan(200);
      // …and renewing beyond it does.
      await call(...renew("renewed", body.token, GC_SLACK_MS + 120_000));
      expect(await client.pttl(key)).toBeGreaterThan(GC_SLACK_MS + 120_000);
    } finally {
      client.disconnect();
    }
  });

  it("stores only hashes of lease tokens and lock keys", async () => {
    const prefix = "hashes";
    const { call } = appOn(backends.open("redis", { prefix }));
    const lease = await call(...acquire("h", { ttl_ms: 60_000 }));
    const lock = await call("POST", "/locks?l=true&k=plain-secret", undefined, null);
    const client = new Redis(backends.redis!.url);
    try {
      const dump = JSON.stringify([
        await client.get(redisKeys(prefix).lock({ namespace: "default", key: "h" })),
        await client.get(redisKeys(prefix).lock({ namespace: "default", key: `locks/${lock.body.id}` })),
      ]);
      expect(dump).not.toContain(lease.body.token);
      expect(dump).not.toContain("plain-secret");
      expect(dump).toMatch(/[0-9a-f]{64}/);
    } finally {
      client.disconnect();
    }
  });

  it("forgets the names of records Redis dropped as new keys come, whether or not anyone lists them", async () => {
    const prefix = "dropped";
    const { call } = appOn(backends.open("redis", { prefix }));
    const client = new Redis(backends.redis!.url);
    const names = redisKeys(prefix).names("default");
    const index = redisKeys(prefix).index("default");
    try {
      for (let i = 0; i < 20; i++)
        expect((await call(...acquire(`one-off-${i}`, { ttl_ms: 60_000 }))).status).toBe(200);
      expect(await client.zcard(names)).toBe(20);
      // As Redis drops records at their time (gc): the record goes, its index entry's time is past.
      for (let i = 0; i < 20; i++) {
        await client.del(redisKeys(prefix).lock({ namespace: "default", key: `one-off-${i}` }));
        await client.zadd(index, Date.now() - 1000, `one-off-${i}`);
      }
      expect((await call(...acquire("next", { ttl_ms: 60_000 }))).status).toBe(200);
      expect((await call(...acquire("after-next", { ttl_ms: 60_000 }))).status).toBe(200);
      expect(await client.zrange(names, 0, -1)).toEqual(["after-next", "next"]);
      // By when Redis drops them: both a minute from now (the same millisecond orders by name).
      expect((await client.zrange(index, 0, -1)).sort()).toEqual(["after-next", "next"]);
    } finally {
      client.disconnect();
    }
  });

  it("judges expiry by Redis's clock: a lease's times come from Redis TIME", async () => {
    const { call } = appOn(backends.open("redis"));
    const client = new Redis(backends.redis!.url);
    try {
      const [sec, usec] = await client.time();
      const redisNow = Number(sec) * 1000 + Math.floor(Number(usec) / 1000);
      const { body } = await call(...acquire("clock", { ttl_ms: 1000 }));
      expect(Math.abs(Date.parse(body.acquired_at) - redisNow)).toBeLessThan(500);
    } finally {
      client.disconnect();
    }
  });
});

describe("on a Redis Cluster", () => {
  it("keeps every key of a namespace in one slot, and spreads namespaces over the nodes", async () => {
    const prefix = "slots";
    const store = backends.open("cluster", { prefix });
    const params = {
      holderId: null,
      reason: null,
      ttlMs: 60_000,
      registeredOnly: false,
      mode: "exclusive" as const,
      limit: 1,
      actor: null,
    };
    const namespaces = Array.from({ length: 12 }, (_, i) => `team-${i}`);
    for (const namespace of namespaces) {
      // A held key, a waiter (its queue), and a pool of two: every kind of key a namespace has.
      await store.acquire(
        { namespace, key: "deploy" },
        { ...params, tokenHash: "a".repeat(64), queueWindowMs: null },
      );
      await store.acquire(
        { namespace, key: "deploy" },
        { ...params, tokenHash: "b".repeat(64), queueWindowMs: 5000 },
      );
      await store.acquireAny(
        [
          { namespace, key: "qa-1" },
          { namespace, key: "qa-2" },
        ],
        { ...params, tokenHash: "c".repeat(64), queueWindowMs: null },
      );
    }
    const cluster = backends.cluster!;
    const nodesOf = new Map<string, Set<number>>();
    for (const [i, node] of cluster.nodes.entries()) {
      const client = new Redis(node.port, "127.0.0.1");
      try {
        for (const key of await client.keys(`${prefix}:*`)) {
          const namespace = /^slots:\{([^}]+)\}:/.exec(key)?.[1] ?? `(untagged ${key})`;
          nodesOf.set(namespace, (nodesOf.get(namespace) ?? new Set()).add(i));
        }
      } finally {
        client.disconnect();
      }
    }
    expect([...nodesOf.keys()].sort()).toEqual([...namespaces].sort());
    for (const nodes of nodesOf.values()) expect(nodes.size).toBe(1);
    expect(new Set([...nodesOf.values()].map((n) => [...n][0])).size).toBeGreaterThan(1);
  });
});
