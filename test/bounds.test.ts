/**
 * What a key and a namespace keep stays bounded, on every store: a key's shared holders (its
 * holders hash on Redis), a namespace's records (the open /locks API has its own namespace and cap,
 * locks held without end still go, and the cap counts what is live), and a pool waiter that takes
 * one key wakes whoever is first behind it on the others.
 */
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sha256Hex } from "../server/crypto.js";
import { createMemoryStore } from "../server/stores/memory.js";
import { DEFAULT_LIMITS, type LockStore, type StoreLimits } from "../server/stores/types.js";
import { pathTo } from "../src/protocol/paths.js";
import { appOn, testConfig } from "./support/app.js";
import { keyspaceOf, type StoreKeyspace } from "./support/keyspace.js";
import { sleep } from "./support/processes.js";
import { STORE_KINDS, type StoreBackends, type StoreKind, startBackends } from "./support/stores.js";

let backends: StoreBackends;
let redis: Redis;
beforeAll(async () => {
  backends = await startBackends(STORE_KINDS);
  redis = new Redis(backends.redis!.url);
});
afterAll(async () => {
  redis.disconnect();
  await backends.close();
});

let opened = 0;
/** A store of `kind` with its own key prefix (returned, to read its Redis keys). */
const open = (kind: StoreKind, limits: Partial<StoreLimits> = {}) => {
  const prefix = `bounds${opened++}`;
  const store = backends.open(kind, { prefix, limits: { ...DEFAULT_LIMITS, ...limits } });
  const space = keyspaceOf(kind, store, prefix, redis);
  return { store, space, keys: space.keys, ...appOn(store, testConfig()) };
};

const shared = (token: string) => ({ ttl_ms: 30_000, token, holder_id: token, mode: "shared" });

describe.each(STORE_KINDS)("a key's shared holders on %s", (kind) => {
  const holdersOf = (space: StoreKeyspace, key: string) =>
    space.count("HLEN", space.keys.holders({ namespace: "default", key }));

  it("stay few after many shared holds one after another, and a retried release still says released", async () => {
    const { call, space } = open(kind);
    const entriesOf = (key: string) => holdersOf(space, key);
    for (let i = 0; i < 40; i++) {
      expect((await call("POST", pathTo("acquire", { key: "e2e" }), shared(`run-${i}`))).status).toBe(200);
      expect((await call("POST", pathTo("release", { key: "e2e" }), { token: `run-${i}` })).status).toBe(200);
    }
    // Before: one entry per hold, for as long as holds kept coming (8,000 broke the key for good).
    expect(await entriesOf("e2e")).toBeLessThanOrEqual(1);
    const again = await call("POST", pathTo("release", { key: "e2e" }), { token: "run-39" });
    expect(again.status, again.text).toBe(200);
    // Next to a live holder, a shared acquire takes its slot.
    expect((await call("POST", pathTo("acquire", { key: "e2e" }), shared("live-1"))).status).toBe(200);
    expect((await call("POST", pathTo("acquire", { key: "e2e" }), shared("live-2"))).status).toBe(200);
    expect(await entriesOf("e2e")).toBe(2);
  });

  it("stay within twice the limit when the limit changes: a grant drops the entries kept as released", async () => {
    const { call, space } = open(kind);
    // The last holder outlives the 19 releases (and every lease the others had), then runs out
    // unreleased: the key's shared leases have all ended when the next one comes.
    const last = await call("POST", pathTo("acquire", { key: "slots" }), {
      ...shared("h19"),
      limit: 20,
      ttl_ms: 1500,
    });
    expect(last.status).toBe(200);
    for (let i = 0; i < 19; i++)
      expect(
        (
          await call("POST", pathTo("acquire", { key: "slots" }), {
            ...shared(`h${i}`),
            limit: 20,
            ttl_ms: 1000,
          })
        ).status,
      ).toBe(200);
    for (let i = 0; i < 19; i++)
      expect((await call("POST", pathTo("release", { key: "slots" }), { token: `h${i}` })).status).toBe(200);
    await sleep(Math.max(0, Date.parse(last.body.expires_at) - Date.now() + 100));
    expect(
      (await call("POST", pathTo("acquire", { key: "slots" }), { ...shared("solo"), limit: 1 })).status,
    ).toBe(200);
    const entries = await holdersOf(space, "slots");
    // Before (Redis): 20, the 19 released entries and the new one.
    expect(entries).toBeLessThanOrEqual(2);
  });

  it("heal a key an earlier version filled with 9,000 released entries: the next shared grant clears them", async () => {
    const { call, keys, space } = open(kind);
    expect((await call("POST", pathTo("acquire", { key: "broken" }), shared("alive"))).status).toBe(200);
    const hash = keys.holders({ namespace: "default", key: "broken" });
    const long = Date.now() - 3_600_000;
    const entries = Array.from({ length: 9000 }, (_, i) => [
      sha256Hex(`old-${i}`),
      ["-1", String(i), String(long), `old-${i}`, "", String(long)].join("\u001f"),
    ]);
    await space.command("HSET", hash, ...entries.flat());
    // Before: "too many results to unpack" inside the script, after the fencing counter moved.
    const next = await call("POST", pathTo("acquire", { key: "broken" }), shared("next"));
    expect(next.status, next.text).toBe(200);
    expect(await space.count("HLEN", hash)).toBe(2);
  });
});

describe.each(STORE_KINDS)("a namespace's records on %s", (kind) => {
  it("the open /locks API fills its own namespace, never the admin's", async () => {
    const { call } = open(kind, { locksPerNamespace: 3, locksByNamespace: { open: 3 } });
    for (let i = 0; i < 3; i++)
      expect((await call("POST", pathTo("createStateLock", {}, { l: "true" }), undefined, null)).status).toBe(
        200,
      );
    const full = await call("POST", pathTo("createStateLock", {}, { l: "true" }), undefined, null);
    expect(full.status).toBe(403);
    expect(full.body.error).toMatchObject({
      code: "quota_exceeded",
      message: expect.stringMatching(/"open" .*LSS_OPEN_MAX_LOCKS/),
    });
    // Before: the admin's namespace was the one the anonymous locks filled.
    const admin = await call("POST", pathTo("acquire", { key: "deploy" }), { ttl_ms: 10_000 });
    expect(admin.status, admin.text).toBe(200);
  });

  it("counts what is live: records of leases that ended make room for new keys", async () => {
    const { call } = open(kind, { locksPerNamespace: 3 });
    for (const key of ["pr-1", "pr-2", "pr-3"]) {
      const got = await call("POST", pathTo("acquire", { key }), { ttl_ms: 10_000, token: key });
      expect(got.status).toBe(200);
      expect((await call("POST", pathTo("release", { key }), { token: key })).status).toBe(200);
    }
    // Before: 403 for an hour (the ended leases' records), although nothing was held.
    for (const key of ["pr-4", "pr-5", "pr-6"]) {
      const got = await call("POST", pathTo("acquire", { key }), { ttl_ms: 10_000 });
      expect(got.status, got.text).toBe(200);
    }
    // Three held: now it is full.
    const full = await call("POST", pathTo("acquire", { key: "pr-7" }), { ttl_ms: 10_000 });
    expect(full.status).toBe(403);
    expect(full.body.error.code).toBe("quota_exceeded");
  });

  it("writes a dropped record's lapsed lease to its history first", async () => {
    const { call } = open(kind, { locksPerNamespace: 2 });
    expect(
      (await call("POST", pathTo("acquire", { key: "old" }), { ttl_ms: 100, holder_id: "job-1" })).status,
    ).toBe(200);
    await sleep(150);
    expect((await call("POST", pathTo("acquire", { key: "mid" }), { ttl_ms: 10_000 })).status).toBe(200);
    expect((await call("POST", pathTo("acquire", { key: "new" }), { ttl_ms: 10_000 })).status).toBe(200);
    const history = await call("GET", pathTo("history", { key: "old" }));
    expect(history.body.events.map((e: { event: string }) => e.event)).toEqual(["expired", "granted"]);
    expect(history.body.events[0]).toMatchObject({ holder_id: "job-1" });
  });

  it("finds room among leases released early, though their records would outlive younger live ones", async () => {
    const { call } = open(kind, { locksPerNamespace: 100 });
    // Released early, their records keep the expiry of a 6-hour lease; 70 live leases of a minute
    // expire sooner and are what Redis would drop first.
    for (let i = 0; i < 30; i++) {
      const key = `long-${i}`;
      expect(
        (await call("POST", pathTo("acquire", { key }), { ttl_ms: 6 * 3_600_000, token: key })).status,
      ).toBe(200);
      expect((await call("POST", pathTo("release", { key }), { token: key })).status).toBe(200);
    }
    for (let i = 0; i < 70; i++)
      expect((await call("POST", pathTo("acquire", { key: `short-${i}` }), { ttl_ms: 60_000 })).status).toBe(
        200,
      );
    // Before: 403, the 64 records looked at being the live ones.
    const next = await call("POST", pathTo("acquire", { key: "one-more" }), { ttl_ms: 60_000 });
    expect(next.status, next.text).toBe(200);
  });

  it("a pool at the cap takes its free key that has a record, rather than refusing for a new one", async () => {
    const { call } = open(kind, { locksPerNamespace: 3 });
    expect((await call("POST", pathTo("acquire", { key: "held-1" }), { ttl_ms: 60_000 })).status).toBe(200);
    expect((await call("POST", pathTo("acquire", { key: "held-2" }), { ttl_ms: 60_000 })).status).toBe(200);
    expect(
      (await call("POST", pathTo("acquire", { key: "free" }), { ttl_ms: 60_000, token: "f" })).status,
    ).toBe(200);
    expect((await call("POST", pathTo("release", { key: "free" }), { token: "f" })).status).toBe(200);
    // Found by the randomized bounds test: the pool's first key, new, found no room (the free
    // key's record, this very pool's, was not to be dropped), and the answer was 403.
    const got = await call("POST", pathTo("acquirePool"), {
      keys: ["brand-new", "held-1", "free"],
      ttl_ms: 60_000,
    });
    expect(got.status, got.text).toBe(200);
    expect(got.body.key).toBe("free");
  });

  it("finds room in a key whose shared holders all left, though the longest of their leases had not ended", async () => {
    const { call } = open(kind, { locksPerNamespace: 2 });
    const take = (token: string, ttl_ms: number) =>
      call("POST", pathTo("acquire", { key: "readers" }), { ttl_ms, token, mode: "shared" });
    expect((await take("long", 60_000)).status).toBe(200);
    expect((await take("short", 200)).status).toBe(200);
    // The long lease's holder leaves while the short one holds on; then the short one runs out.
    expect((await call("POST", pathTo("release", { key: "readers" }), { token: "long" })).status).toBe(200);
    await sleep(250);
    expect((await call("POST", pathTo("acquire", { key: "held" }), { ttl_ms: 60_000 })).status).toBe(200);
    // Found by the randomized bounds test: the record said a shared lease ran for another minute.
    const next = await call("POST", pathTo("acquire", { key: "next" }), { ttl_ms: 60_000 });
    expect(next.status, next.text).toBe(200);
  });

  it("writes every lapsed lease of a dropped record to its history, shared ones too", async () => {
    const { call } = open(kind, { locksPerNamespace: 2 });
    for (const holder of ["a", "b"]) {
      const got = await call("POST", pathTo("acquire", { key: "readers" }), {
        ttl_ms: 100,
        token: holder,
        holder_id: holder,
        mode: "shared",
      });
      expect(got.status).toBe(200);
    }
    await sleep(150);
    expect((await call("POST", pathTo("acquire", { key: "new-1" }), { ttl_ms: 10_000 })).status).toBe(200);
    expect((await call("POST", pathTo("acquire", { key: "new-2" }), { ttl_ms: 10_000 })).status).toBe(200);
    const history = await call("GET", pathTo("history", { key: "readers" }));
    // Before (Redis): only the grants; the expiries went with the record.
    expect(
      history.body.events.map((e: { event: string; holder_id: string }) => `${e.event} ${e.holder_id}`),
    ).toEqual(["expired b", "expired a", "granted b", "granted a"]);
  });

  it("keeps a /locks lock held without end no longer than its retention", async () => {
    const retention = 86_400_000;
    const { call, keys, space } = open(kind, { lockRetentionMs: retention });
    const made = await call("POST", pathTo("createStateLock", {}, { l: "true" }), undefined, null);
    const record = keys.lock({ namespace: "open", key: `locks/${made.body.id}` });
    // Before: no expiry at all.
    const ttl = await space.count("PTTL", record);
    expect(ttl).toBeGreaterThan(retention - 60_000);
    expect(ttl).toBeLessThanOrEqual(retention + retention / 30);
    expect((await call("GET", pathTo("stateLock", { id: made.body.id }), undefined, null)).status).toBe(423);
  });
});

describe("a /locks lock held without end on the memory store", () => {
  it("reads locked until its retention passes, then unknown (404), never unlocked", async () => {
    let now = Date.now();
    const store = createMemoryStore({
      clock: () => now,
      limits: { ...DEFAULT_LIMITS, lockRetentionMs: 86_400_000 },
    });
    const { call } = appOn(store, testConfig());
    const made = await call("POST", pathTo("createStateLock", {}, { l: "true" }), undefined, null);
    now += 86_400_000;
    expect((await call("GET", pathTo("stateLock", { id: made.body.id }), undefined, null)).status).toBe(423);
    now += 86_400_000 / 30 + 1;
    expect((await call("GET", pathTo("stateLock", { id: made.body.id }), undefined, null)).status).toBe(404);
  });
});

describe.each(STORE_KINDS)("a pool waiter granted one key on %s", (kind) => {
  it("wakes the next waiter of another key it was first for, which is free", async () => {
    const { call, store } = open(kind);
    for (const key of ["env-a", "env-b"]) {
      expect(
        (await call("POST", pathTo("acquire", { key }), { ttl_ms: 30_000, token: `holder-${key}` })).status,
      ).toBe(200);
    }
    // The pool waiter, first in both queues: one ask of a waiting request (it asks again when told).
    const pool = (s: LockStore) =>
      s.acquireAny(
        ["env-a", "env-b"].map((key) => ({ namespace: "default", key })),
        {
          tokenHash: sha256Hex("pool"),
          holderId: "pool",
          reason: null,
          ttlMs: 30_000,
          registeredOnly: false,
          queueWindowMs: 20_000,
          mode: "exclusive",
          limit: 1,
          actor: null,
        },
      );
    expect((await pool(store)).outcome).toBe("held");
    // A single-key waiter behind it on env-b.
    const started = Date.now();
    const waiter = call("POST", pathTo("acquire", { key: "env-b" }), {
      ttl_ms: 30_000,
      token: "single",
      wait_ms: 8000,
    });
    await sleep(200);
    // Both free at about the same time; the pool takes env-a, its first key, and leaves env-b's queue.
    expect((await call("POST", pathTo("release", { key: "env-b" }), { token: "holder-env-b" })).status).toBe(
      200,
    );
    expect((await call("POST", pathTo("release", { key: "env-a" }), { token: "holder-env-a" })).status).toBe(
      200,
    );
    const taken = await pool(store);
    expect(taken).toMatchObject({ outcome: "granted", index: 0 });
    // Before: the single waiter slept on a free key until its window ended (409 queued).
    const got = await waiter;
    expect(got.status, got.text).toBe(200);
    expect(Date.now() - started).toBeLessThan(3000);
  });
});

describe("the memory store's histories and index", () => {
  it("go as Redis's do: a history past its retention, a record's place in the index as new keys come", async () => {
    let now = Date.now();
    const limits = { ...DEFAULT_LIMITS, historyRetentionMs: 86_400_000 };
    const store = createMemoryStore({ clock: () => now, limits });
    const space = keyspaceOf("memory", store, "", redis);
    const params = (token: string) => ({
      tokenHash: sha256Hex(token),
      holderId: null,
      reason: null,
      ttlMs: 1000,
      registeredOnly: false,
      queueWindowMs: null,
      mode: "exclusive" as const,
      limit: 1,
      actor: null,
    });
    const hold = async (key: string, token: string) => {
      const ref = { namespace: "default", key };
      expect((await store.acquire(ref, params(token))).outcome).toBe("granted");
      await store.release(ref, { tokenHash: sha256Hex(token), registeredOnly: false, actor: null });
    };
    for (let i = 0; i < 20; i++) await hold(`once-${i}`, `t${i}`);
    expect(await space.keysStarting(`${space.keys.base("default")}:history:`)).toHaveLength(20);
    now += 2 * 86_400_000;
    // Before: the memory store's own history map kept every key's history for good.
    expect(await space.keysStarting(`${space.keys.base("default")}:history:`)).toEqual([]);
    await hold("new-1", "n1");
    await hold("new-2", "n2");
    expect(await space.count("ZCARD", space.keys.index("default"))).toBe(2);
  });
});
