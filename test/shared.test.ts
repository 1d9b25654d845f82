/**
 * Beyond one holder, on every store: shared (readers-writer) holds, counted slots (a limit), and
 * their queue: an exclusive waiter waits for every shared holder, shared latecomers queue behind it,
 * consecutive shared waiters at the head share the key, fencing tokens rise across modes.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pathTo } from "../src/protocol/paths.js";
import { appOn } from "./support/app.js";
import { sleep } from "./support/processes.js";
import { type StoreBackends, startBackends, WITH_CLUSTER } from "./support/stores.js";

let backends: StoreBackends;
beforeAll(async () => {
  backends = await startBackends(WITH_CLUSTER);
});
afterAll(() => backends.close());

type Call = ReturnType<typeof appOn>["call"];

describe.each(WITH_CLUSTER)("shared holds and limits on %s", (kind) => {
  const call = (): Call => appOn(backends.open(kind)).call;
  const take = (c: Call, key: string, token: string, extra: Record<string, unknown> = {}) =>
    c("POST", pathTo("acquire", { key }), { ttl_ms: 30_000, token, holder_id: token, ...extra });
  const shared = (c: Call, key: string, token: string, extra: Record<string, unknown> = {}) =>
    take(c, key, token, { mode: "shared", ...extra });
  const release = (c: Call, key: string, token: string) => c("POST", pathTo("release", { key }), { token });
  const status = async (c: Call, key: string) => (await c("GET", pathTo("status", { key }))).body;

  it("admits many shared holders at once, shows every one (never a token), and keeps exclusive out", async () => {
    const c = call();
    const a = await shared(c, "e2e", "suite-a", { reason: "E2E a" });
    const b = await shared(c, "e2e", "suite-b", { reason: "E2E b" });
    expect([a.status, b.status]).toEqual([200, 200]);
    expect(a.body).toMatchObject({ mode: "shared", holder_id: "suite-a" });
    expect(b.body.fencing_token).toBeGreaterThan(a.body.fencing_token);
    const deploy = await take(c, "e2e", "deploy");
    expect(deploy.status).toBe(409);
    expect(deploy.body).toMatchObject({ error: { code: "lock_held" }, mode: "shared" });
    const seen = await status(c, "e2e");
    expect(seen).toMatchObject({ locked: true, mode: "shared", limit: 100 });
    expect(seen.holders.map((h: { holder_id: string }) => h.holder_id)).toEqual(["suite-a", "suite-b"]);
    expect(seen.holders.every((h: { mode: string }) => h.mode === "shared")).toBe(true);
    expect(JSON.stringify(seen)).not.toMatch(/"token"/);
    // Each holder's own fencing token, exactly as its grant said.
    expect(seen.holders.map((h: { fencing_token: number }) => h.fencing_token)).toEqual([
      a.body.fencing_token,
      b.body.fencing_token,
    ]);
    // An exclusive holder keeps shared ones out too.
    const solo = await take(c, "solo", "writer");
    expect(solo.status).toBe(200);
    expect(solo.body.mode).toBe("exclusive");
    expect((await shared(c, "solo", "reader")).status).toBe(409);
  });

  it("a shared holder's release frees only its own lease; a retried release still says released", async () => {
    const c = call();
    await shared(c, "rel", "a");
    await shared(c, "rel", "b");
    expect((await release(c, "rel", "a")).status).toBe(200);
    expect((await release(c, "rel", "a")).status).toBe(200);
    const seen = await status(c, "rel");
    expect(seen.locked).toBe(true);
    expect(seen.holders.map((h: { holder_id: string }) => h.holder_id)).toEqual(["b"]);
    expect((await release(c, "rel", "nobody")).status).toBe(409);
    const renewed = await c("POST", pathTo("renew", { key: "rel" }), { token: "b", ttl_ms: 60_000 });
    expect(renewed.status).toBe(200);
    expect(renewed.body).toMatchObject({ mode: "shared", expires_in_ms: 60_000 });
    expect((await release(c, "rel", "b")).status).toBe(200);
    expect((await status(c, "rel")).locked).toBe(false);
    expect((await take(c, "rel", "writer")).status).toBe(200);
  });

  it("never starves a writer: two readers, then a waiting writer, then a reader who must wait behind it", async () => {
    const c = call();
    await shared(c, "rw", "r1");
    await shared(c, "rw", "r2");
    const writer = take(c, "rw", "w", { wait_ms: 10_000 });
    await sleep(150);
    // Room for more readers, but a writer waits: the latecomer queues behind it.
    const late = await shared(c, "rw", "r3", { wait_ms: 200 });
    expect(late.status).toBe(409);
    expect(late.body.error.code).toBe("queued");
    expect(late.body.position).toBe(2);
    const latecomer = shared(c, "rw", "r3", { wait_ms: 10_000 });
    await release(c, "rw", "r1");
    await sleep(100);
    expect((await status(c, "rw")).holder_id).toBe("r2"); // the writer still waits for r2
    const releasedAt = Date.now();
    await release(c, "rw", "r2");
    const got = await writer;
    expect(got.status).toBe(200);
    expect(got.body.mode).toBe("exclusive");
    expect(Date.now() - releasedAt).toBeLessThan(500);
    await sleep(100);
    expect((await status(c, "rw")).holder_id).toBe("w"); // and r3 waits for the writer
    await release(c, "rw", "w");
    const reader = await latecomer;
    expect(reader.status).toBe(200);
    expect(reader.body.fencing_token).toBeGreaterThan(got.body.fencing_token);
  }, 20_000);

  it("grants consecutive shared waiters at the head together when the writer leaves", async () => {
    const c = call();
    await take(c, "batch", "writer");
    const readers = ["s1", "s2", "s3"].map(async (t, i) => {
      await sleep(50 * i);
      return shared(c, "batch", t, { wait_ms: 10_000 });
    });
    await sleep(300);
    await release(c, "batch", "writer");
    // Each is woken by the one before it (the release woke only the first): a reader left asleep
    // would answer 409 at the end of its 10 s window.
    const got = await Promise.all(readers);
    expect(got.map((r) => r.status)).toEqual([200, 200, 200]);
    expect((await status(c, "batch")).holders).toHaveLength(3);
  });

  it("counts slots: limit 2 admits two, a third waits, and a holder that dies frees its slot at its TTL", async () => {
    const c = call();
    const a = await shared(c, "farm", "a", { limit: 2, ttl_ms: 400 });
    const b = await shared(c, "farm", "b", { limit: 2 });
    expect([a.status, b.status]).toEqual([200, 200]);
    const third = await take(c, "farm", "c", { limit: 2 });
    expect(third.status).toBe(409);
    expect(third.body.error.code).toBe("lock_held");
    expect(third.body.error.message).toMatch(
      /^"farm" is held shared \(its status lists every holder\), by a for another 1 s$/,
    );
    // "a" never renews (a crashed runner): "c" gets its slot when its lease ends (store's clock).
    const waited = await take(c, "farm", "c", { limit: 2, wait_ms: 5000 });
    expect(waited.status).toBe(200);
    expect(Date.parse(waited.body.acquired_at)).toBeGreaterThanOrEqual(Date.parse(a.body.expires_at));
    expect(Date.parse(waited.body.acquired_at)).toBeLessThan(Date.parse(a.body.expires_at) + 1000);
    expect((await status(c, "farm")).limit).toBe(2);
  });

  it("wakes a shared waiter when the first slot ends, though another holder renews meanwhile", async () => {
    const c = call();
    const soon = await shared(c, "renewed", "soon", { limit: 2, ttl_ms: 400 });
    await shared(c, "renewed", "late", { limit: 2, ttl_ms: 1000 });
    const waiting = take(c, "renewed", "c", { limit: 2, wait_ms: 8000 });
    await sleep(150);
    // "late" renews to 5 s: the waiter must still wake when "soon" ends, not when "late" does.
    const renewed = await c("POST", pathTo("renew", { key: "renewed" }), { token: "late", ttl_ms: 5000 });
    expect(renewed.status).toBe(200);
    const got = await waiting;
    expect(got.status).toBe(200);
    expect(Date.parse(got.body.acquired_at)).toBeGreaterThanOrEqual(Date.parse(soon.body.expires_at));
    expect(Date.parse(got.body.acquired_at)).toBeLessThan(Date.parse(renewed.body.expires_at));
  });

  it("leaves the queue when refused after queueing: a waiter that counts otherwise holds nobody up", async () => {
    const c = call();
    await take(c, "refused", "x");
    const three = shared(c, "refused", "s3", { limit: 3, wait_ms: 5000 });
    await sleep(50);
    const five = shared(c, "refused", "s5", { limit: 5, wait_ms: 5000 });
    await sleep(100);
    expect((await status(c, "refused")).waiting).toBe(2);
    await release(c, "refused", "x");
    expect((await three).status).toBe(200);
    const refused = await five;
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe("limit_mismatch");
    expect((await status(c, "refused")).waiting).toBe(0);
  });

  it("tells a caller that counts otherwise the limit in force (409 limit_mismatch)", async () => {
    const c = call();
    await shared(c, "lim", "a", { limit: 2 });
    const other = await shared(c, "lim", "b", { limit: 3 });
    expect(other.status).toBe(409);
    expect(other.body).toMatchObject({ error: { code: "limit_mismatch" }, limit: 2 });
    expect(other.body.error.message).toMatch(/limit 2/);
    // A shared hold without a limit counts the default (100): it disagrees too.
    expect((await shared(c, "lim", "b")).body.error.code).toBe("limit_mismatch");
    // Once nobody holds it, a new limit may be set.
    await release(c, "lim", "a");
    expect((await shared(c, "lim", "b", { limit: 3 })).status).toBe(200);
  });

  it("refuses a shared hold of a /locks lock, and a limit with mode exclusive", async () => {
    const c = call();
    const lock = (await c("POST", pathTo("createStateLock"), undefined, null)).body;
    // The open API's locks are in the namespace "open".
    const opener = (await c("POST", pathTo("tokens"), { namespace: "open", scopes: ["locks:write"] })).body
      .token;
    const sharedLock = await c(
      "POST",
      pathTo("acquire", { key: `locks/${lock.id}` }),
      { ttl_ms: 1000, token: lock.key, mode: "shared" },
      opener,
    );
    expect(sharedLock.status).toBe(409);
    expect(sharedLock.body.error.code).toBe("mode_conflict");
    const contradiction = await take(c, "x", "t", { mode: "exclusive", limit: 2 });
    expect(contradiction.status).toBe(400);
    expect(contradiction.body.details).toEqual([expect.objectContaining({ field: "limit" })]);
  });

  it("hands out fencing tokens that rise across modes", async () => {
    const c = call();
    const fences: number[] = [];
    const step = async (r: Promise<{ status: number; body: { fencing_token: number } }>) => {
      const res = await r;
      expect(res.status).toBe(200);
      fences.push(res.body.fencing_token);
    };
    await step(take(c, "mix", "x1"));
    await release(c, "mix", "x1");
    await step(shared(c, "mix", "s1"));
    await step(shared(c, "mix", "s2"));
    await release(c, "mix", "s1");
    await release(c, "mix", "s2");
    await step(take(c, "mix", "x2"));
    for (let i = 1; i < fences.length; i++) expect(fences[i]).toBeGreaterThan(fences[i - 1]!);
  });

  it("an operator's forced release frees every shared holder", async () => {
    const c = call();
    await shared(c, "force", "a");
    await shared(c, "force", "b");
    expect((await c("POST", pathTo("release", { key: "force" }), { force: true })).status).toBe(200);
    expect((await status(c, "force")).locked).toBe(false);
    expect((await release(c, "force", "a")).status).toBe(409);
    expect((await take(c, "force", "writer")).status).toBe(200);
  });

  it.each<[string, unknown, RegExp]>([
    ["mode", "both", /mode must be exclusive or shared/],
    ["limit", 0, /limit must be at least 1/],
    ["limit", 101, /limit must be at most 100/],
    ["limit", 2.5, /limit must be a whole number/],
    ["limit", "3", /limit must be a whole number/],
  ])("refuses %s = %j with a 400 naming it", async (field, value, message) => {
    const res = await call()("POST", pathTo("acquire", { key: "bad" }), { ttl_ms: 1000, [field]: value });
    expect(res.status).toBe(400);
    expect(res.body.error.message).toMatch(message);
  });
});

describe.each(WITH_CLUSTER)("pools on %s", (kind) => {
  const call = (): Call => appOn(backends.open(kind)).call;
  const pool = (c: Call, token: string, extra: Record<string, unknown> = {}) =>
    c("POST", pathTo("acquirePool"), {
      keys: ["qa-1", "qa-2", "qa-3"],
      ttl_ms: 30_000,
      token,
      holder_id: token,
      ...extra,
    });
  const release = (c: Call, key: string, token: string) => c("POST", pathTo("release", { key }), { token });

  it("hands five contenders three keys: never two on a key, one key each, in arrival order", async () => {
    const c = call();
    const got: Record<string, string> = {};
    const order: string[] = [];
    const contenders = ["c1", "c2", "c3", "c4", "c5"].map(async (t, i) => {
      await sleep(60 * i);
      const res = await pool(c, t, { wait_ms: 10_000 });
      expect(res.status).toBe(200);
      got[t] = res.body.key;
      order.push(t);
      return res;
    });
    await sleep(500);
    // The first three have a key each; no key twice.
    expect(Object.keys(got).sort()).toEqual(["c1", "c2", "c3"]);
    expect(new Set(Object.values(got)).size).toBe(3);
    expect((await c("GET", pathTo("status", { key: got.c1 as string }))).body.waiting).toBe(2); // c4 and c5 wait in every queue
    await release(c, got.c2 as string, "c2");
    await sleep(300);
    expect(got.c4).toBe(got.c2); // c4 came first
    expect(got.c5).toBeUndefined();
    // c4 no longer waits for the other keys.
    expect((await c("GET", pathTo("status", { key: got.c1 as string }))).body.waiting).toBe(1);
    await release(c, got.c3 as string, "c3");
    await Promise.all(contenders);
    expect(got.c5).toBe(got.c3);
    expect(order).toEqual(["c1", "c2", "c3", "c4", "c5"]);
  }, 20_000);

  it("gets the key whose lease ends first, though the first key's lease ends later", async () => {
    const c = call();
    const later = await c("POST", pathTo("acquire", { key: "qa-1" }), { ttl_ms: 4000, token: "h1" });
    const sooner = await c("POST", pathTo("acquire", { key: "qa-2" }), { ttl_ms: 300, token: "h2" });
    await c("POST", pathTo("acquire", { key: "qa-3" }), { ttl_ms: 30_000, token: "h3" });
    const got = await pool(c, "p", { wait_ms: 8000 });
    expect(got.status).toBe(200);
    expect(got.body.key).toBe("qa-2");
    // Granted when qa-2's lease ended (an expiry sends no event), long before qa-1's.
    expect(Date.parse(got.body.acquired_at)).toBeGreaterThanOrEqual(Date.parse(sooner.body.expires_at));
    expect(Date.parse(got.body.acquired_at)).toBeLessThan(Date.parse(later.body.expires_at));
  });

  it("says which key it got, and a retried pool acquire gets the same key and lease back", async () => {
    const c = call();
    await c("POST", pathTo("acquire", { key: "qa-1" }), { ttl_ms: 30_000, token: "someone" });
    const first = await pool(c, "mine");
    expect(first.status).toBe(200);
    expect(first.body.key).toBe("qa-2");
    const again = await pool(c, "mine");
    expect(again.body).toMatchObject({ key: "qa-2", fencing_token: first.body.fencing_token });
    // Renewed and released by its key, as any lease.
    expect((await c("POST", pathTo("renew", { key: "qa-2" }), { token: "mine", ttl_ms: 1000 })).status).toBe(
      200,
    );
    expect((await release(c, "qa-2", "mine")).status).toBe(200);
  });

  it("shares its keys' queues with single-key waiters, first come first served", async () => {
    const c = call();
    await c("POST", pathTo("acquirePool"), { keys: ["a", "b"], ttl_ms: 30_000, token: "h1" });
    await c("POST", pathTo("acquirePool"), { keys: ["a", "b"], ttl_ms: 30_000, token: "h2" });
    const single = c("POST", pathTo("acquire", { key: "b" }), {
      ttl_ms: 30_000,
      token: "single",
      wait_ms: 10_000,
    });
    await sleep(100);
    const pooled = c("POST", pathTo("acquirePool"), {
      keys: ["a", "b"],
      ttl_ms: 30_000,
      token: "pooled",
      wait_ms: 10_000,
    });
    await sleep(100);
    await release(c, "b", "h2");
    expect((await single).status).toBe(200); // it came first, and it waits for b
    await release(c, "a", "h1");
    expect((await pooled).body.key).toBe("a");
  });

  it.each<[string, unknown, RegExp]>([
    ["no keys", [], /keys must name at least 2 keys/],
    ["one key", ["qa-1"], /keys must name at least 2 keys/],
    ["a key twice", ["qa-1", "qa-2", "qa-1"], /keys must not repeat \("qa-1" is named twice\)/],
    ["eleven keys", Array.from({ length: 11 }, (_, i) => `k${i}`), /keys must name at most 10 keys/],
    ["a /locks lock", ["qa-1", "locks/abc"], /a lock of the \/locks API cannot be in a pool/],
    ["not a list", "qa-1,qa-2", /keys must be a list/],
    ["a bad key", ["qa-1", "a..b"], /key/],
  ])("refuses a pool with %s: 400 naming the problem", async (_what, keys, message) => {
    const res = await call()("POST", pathTo("acquirePool"), { keys, ttl_ms: 1000 });
    expect(res.status).toBe(400);
    expect(res.body.error.message).toMatch(message);
  });

  it("takes every key of a pool from the caller's own namespace: another team's qa-1 is another lock", async () => {
    const c = call();
    const minted = await c("POST", pathTo("tokens"), {
      namespace: "team-b",
      scopes: ["locks:read", "locks:write"],
    });
    expect(minted.status).toBe(201);
    // The operator (namespace default) holds qa-1 and qa-2 of its own namespace.
    await pool(c, "ops-1");
    await pool(c, "ops-2");
    const teamB = await c(
      "POST",
      pathTo("acquirePool"),
      { keys: ["qa-1", "qa-2", "qa-3"], ttl_ms: 30_000, token: "b-1" },
      minted.body.token,
    );
    expect(teamB.status).toBe(200);
    expect(teamB.body.key).toBe("qa-1"); // team-b's qa-1 was free
    expect((await c("GET", pathTo("status", { key: "qa-1" }))).body.holder_id).toBe("ops-1");
  });

  it("refuses wait_ms without the caller's own token", async () => {
    const res = await call()("POST", pathTo("acquirePool"), {
      keys: ["x", "y"],
      ttl_ms: 1000,
      wait_ms: 100,
    });
    expect(res.status).toBe(400);
    expect(res.body.error.message).toMatch(/wait_ms needs your own token/);
  });
});
