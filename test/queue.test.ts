/**
 * Waiting done right, on every store: server-side waiting in a first-come-first-served queue,
 * handoff on release without a poll interval, vanished waiters skipped after the grace period,
 * cancelled waiters leaving no trace. On Redis, two server instances (two connections) share
 * the queue.
 */
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sha256Hex } from "../server/crypto.js";
import { FALLBACK_PEEK_MS } from "../server/locks/waiting.js";
import { redisKeys } from "../server/stores/redis/keys.js";
import { GC_SLACK_MS, type LockStore, QUEUE_GRACE_MS } from "../server/stores/types.js";
import { pathTo } from "../src/protocol/paths.js";
import { ADMIN_TOKEN, appOn, testConfig } from "./support/app.js";
import { sleep } from "./support/processes.js";
import { startServerProcess } from "./support/server-process.js";
import { STORE_KINDS, type StoreBackends, startBackends } from "./support/stores.js";

let backends: StoreBackends;
beforeAll(async () => {
  backends = await startBackends(STORE_KINDS);
});
afterAll(() => backends.close());

type Call = ReturnType<typeof appOn>["call"];

describe.each(STORE_KINDS)("the queue on %s", (kind) => {
  /** Two instances on one store (Redis: two connections, two subscribers); memory: one store. */
  const instances = (): [Call, Call, ReturnType<typeof appOn>] => {
    if (kind === "memory") {
      const one = appOn(backends.open("memory"));
      return [one.call, one.call, one];
    }
    const prefix = `q${Math.random().toString(16).slice(2, 8)}`;
    const a = appOn(backends.open(kind, { prefix }));
    const b = appOn(backends.open(kind, { prefix }));
    return [a.call, b.call, a];
  };
  const acquire = (call: Call, key: string, token: string, wait_ms?: number, ttl_ms = 10_000) =>
    call("POST", pathTo("acquire", { key }), { ttl_ms, token, ...(wait_ms ? { wait_ms } : {}) });
  const release = (call: Call, key: string, token: string) =>
    call("POST", pathTo("release", { key }), { token });
  // Every store pushes releases: in process, by PSUBSCRIBE on TCP Redis, by SSE on Upstash.
  const handoffMs = 500;

  it("grants waiters in arrival order, each the moment the lock is released", async () => {
    const [a, b] = instances();
    expect((await acquire(a, "fifo", "holder")).status).toBe(200);
    const order: string[] = [];
    const grants: Record<string, { at: number; fence: number }> = {};
    const waiters = ["w1", "w2", "w3", "w4"].map(async (name, i) => {
      await sleep(60 * i); // arrive in this order, alternating instances
      const res = await acquire(i % 2 ? b : a, "fifo", name, 15_000);
      expect(res.status).toBe(200);
      order.push(name);
      grants[name] = { at: Date.now(), fence: res.body.fencing_token };
      await sleep(30);
      const releasedAt = Date.now();
      expect((await release(i % 2 ? b : a, "fifo", name)).status).toBe(200);
      return releasedAt;
    });
    await sleep(400);
    // While waiting, a status says how many wait.
    expect((await a("GET", pathTo("status", { key: "fifo" }))).body.waiting).toBe(4);
    const releasedAt = Date.now();
    await release(a, "fifo", "holder");
    const released = await Promise.all(waiters);
    expect(order).toEqual(["w1", "w2", "w3", "w4"]);
    // Handoff without a poll interval: each grant follows the previous release within ~0.5 s.
    expect(grants.w1!.at - releasedAt).toBeLessThan(handoffMs);
    for (let i = 1; i < 4; i++) expect(grants[`w${i + 1}`]!.at - released[i - 1]!).toBeLessThan(handoffMs);
    const fences = ["w1", "w2", "w3", "w4"].map((n) => grants[n]!.fence);
    for (let i = 1; i < fences.length; i++) expect(fences[i]).toBeGreaterThan(fences[i - 1]!);
    expect((await a("GET", pathTo("status", { key: "fifo" }))).body).toMatchObject({
      locked: false,
      waiting: 0,
    });
  }, 30_000);

  it("grants higher priority first, first come first served within one, and never preempts the holder", async () => {
    const [a, b] = instances();
    expect((await acquire(a, "prio", "holder")).status).toBe(200);
    const order: string[] = [];
    // Arrival order: low-1, normal-1, hotfix, normal-2, low-2.
    const waiters = [
      ["low-1", -5],
      ["normal-1", 0],
      ["hotfix", 50],
      ["normal-2", 0],
      ["low-2", -5],
    ].map(async ([name, priority], i) => {
      await sleep(60 * i);
      const call = i % 2 ? b : a;
      const res = await call("POST", pathTo("acquire", { key: "prio" }), {
        ttl_ms: 10_000,
        token: name,
        wait_ms: 15_000,
        priority,
      });
      expect(res.status).toBe(200);
      order.push(name as string);
      await sleep(20);
      expect((await release(call, "prio", name as string)).status).toBe(200);
    });
    await sleep(500);
    // The hotfix waits like the others: the holder keeps the key until it lets go.
    expect((await a("GET", pathTo("status", { key: "prio" }))).body).toMatchObject({
      locked: true,
      waiting: 5,
    });
    await release(a, "prio", "holder");
    await Promise.all(waiters);
    expect(order).toEqual(["hotfix", "normal-1", "normal-2", "low-1", "low-2"]);
  }, 30_000);

  it("supersedes the older waiter of a group at once, naming the newer one; holders, other groups and ungrouped waiters keep their places", async () => {
    const [a, b] = instances();
    const wait = (call: Call, token: string, extra: Record<string, unknown>) =>
      call("POST", pathTo("acquire", { key: "sup" }), {
        ttl_ms: 10_000,
        token,
        holder_id: token,
        wait_ms: 15_000,
        ...extra,
      });
    // The holder is of the group too: holders are never touched.
    expect((await wait(a, "e2e", { supersede: "deploy/main", wait_ms: undefined })).status).toBe(200);
    const deploy1 = wait(a, "deploy-1", { supersede: "deploy/main" });
    await sleep(100);
    const other = wait(b, "other-group", { supersede: "deploy/next" });
    await sleep(100);
    const plain = wait(a, "plain", {});
    await sleep(100);
    const started = Date.now();
    const deploy2 = wait(b, "deploy-2", { supersede: "deploy/main", priority: 5 });
    // deploy-1 is answered at once (across instances), not when its wait ends.
    const first = await deploy1;
    expect(Date.now() - started).toBeLessThan(handoffMs);
    expect(first.status).toBe(409);
    expect(first.body).toMatchObject({
      error: { code: "superseded" },
      key: "sup",
      superseded_by: "deploy-2",
    });
    expect(first.body.error.message).toContain("deploy-2");
    await sleep(100);
    const status = (await a("GET", pathTo("status", { key: "sup" }))).body;
    expect(status).toMatchObject({ locked: true, holder_id: "e2e", waiting: 3 });
    expect(status.queue).toMatchObject([
      { position: 1, mode: "exclusive", holder_id: "deploy-2", priority: 5, group: "deploy/main" },
      { position: 2, holder_id: "other-group", priority: 0, group: "deploy/next" },
      { position: 3, holder_id: "plain", priority: 0, group: null },
    ]);
    expect(Date.parse(status.queue[0].waiting_since)).toBeGreaterThan(started - 1000);
    // Asked again with the same token, it is still superseded (a retry reads the same answer).
    expect((await wait(a, "deploy-1", { supersede: "deploy/main", wait_ms: undefined })).body).toMatchObject({
      error: { code: "superseded" },
    });
    await release(a, "sup", "e2e");
    expect((await deploy2).status).toBe(200);
    await release(b, "sup", "deploy-2");
    expect((await other).status).toBe(200);
    await release(b, "sup", "other-group");
    expect((await plain).status).toBe(200);
    await release(a, "sup", "plain");
    const history = (await a("GET", pathTo("history", { key: "sup" }))).body.events;
    expect(history.find((e: { event: string }) => e.event === "superseded")).toMatchObject({
      holder_id: "deploy-1",
      superseded_by: "deploy-2",
      mode: "exclusive",
    });
  }, 30_000);

  it("answers a waiter whose window ends with 409, its place in the queue and the holder", async () => {
    const [a] = instances();
    await call(a, "holder-409");
    await acquire(a, "place", "first", 200);
    const started = Date.now();
    const second = await acquire(a, "place", "second", 400);
    expect(Date.now() - started).toBeGreaterThanOrEqual(350);
    expect(second.status).toBe(409);
    expect(second.body).toMatchObject({ error: { code: "lock_held" }, holder_id: "holder-409", position: 2 });
    async function call(c: Call, holder: string) {
      expect(
        (await c("POST", pathTo("acquire", { key: "place" }), { ttl_ms: 10_000, holder_id: holder })).status,
      ).toBe(200);
    }
  });

  it("does not let a plain acquire jump the queue when the lock frees", async () => {
    const [a, b] = instances();
    await acquire(a, "nojump", "holder");
    const waiting = acquire(b, "nojump", "patient", 10_000);
    await sleep(200);
    await release(a, "nojump", "holder");
    const jumper = await acquire(a, "nojump", "jumper");
    // Either the patient waiter already has it, or the key is free but queued for it.
    expect(jumper.status).toBe(409);
    expect(["lock_held", "queued"]).toContain(jumper.body.error.code);
    expect((await waiting).status).toBe(200);
  });

  it("leaves no trace of a cancelled waiter, and the next one is served at once", async () => {
    const [a, b, one] = instances();
    await acquire(a, "cancel", "holder");
    const controller = new AbortController();
    const cancelled = Promise.resolve(
      one.app.request(pathTo("acquire", { key: "cancel" }), {
        method: "POST",
        headers: {
          Authorization: "Bearer admin-token-for-tests-0123456789",
          "Content-Type": "application/json",
        },
        body: JSON.stringify({ ttl_ms: 10_000, token: "cancelled", wait_ms: 20_000 }),
        signal: controller.signal,
      }),
    ).catch(() => null);
    await sleep(200);
    const next = acquire(b, "cancel", "next", 20_000);
    await sleep(200);
    expect((await a("GET", pathTo("status", { key: "cancel" }))).body.waiting).toBe(2);
    controller.abort();
    await cancelled;
    // An explicit leave (a client that gave up) is also fine to repeat.
    expect((await a("POST", pathTo("leave", { key: "cancel" }), { token: "cancelled" })).status).toBe(200);
    await sleep(100);
    expect((await a("GET", pathTo("status", { key: "cancel" }))).body.waiting).toBe(1);
    const releasedAt = Date.now();
    await release(a, "cancel", "holder");
    const granted = await next;
    expect(granted.status).toBe(200);
    expect(Date.now() - releasedAt).toBeLessThan(handoffMs + 500);
  }, 30_000);

  it(
    "skips a waiter that stopped asking once its window and the grace period have passed",
    async () => {
      const [a, b] = instances();
      await acquire(a, "vanished", "holder");
      // "gone" waits 200 ms and never asks again (a crashed client whose request ended).
      expect((await acquire(a, "vanished", "gone", 200)).status).toBe(409);
      const started = Date.now();
      const patient = acquire(b, "vanished", "patient", 20_000);
      await sleep(100);
      await release(a, "vanished", "holder");
      const res = await patient;
      expect(res.status).toBe(200);
      const waited = Date.now() - started;
      // It had to wait for "gone" to lose its place: at most its window plus the grace period.
      expect(waited).toBeLessThan(200 + QUEUE_GRACE_MS + handoffMs + 1000);
    },
    QUEUE_GRACE_MS + 15_000,
  );

  it("holds a status request until the lock is free (wait_ms), answering at the release", async () => {
    const [a, b] = instances();
    await acquire(a, "watch", "holder");
    const started = Date.now();
    const watching = b("GET", pathTo("status", { key: "watch" }, { wait_ms: "10000" }));
    await sleep(300);
    const releasedAt = Date.now();
    await release(a, "watch", "holder");
    const seen = await watching;
    expect(seen.body.locked).toBe(false);
    expect(Date.now() - releasedAt).toBeLessThan(handoffMs + 100);
    expect(Date.now() - started).toBeGreaterThanOrEqual(300);
  }, 20_000);

  it("does not miss a release that lands between the store's answer and the waiter's sleep", async () => {
    const store = backends.open(kind);
    // The holder lets go right after the waiter's first acquire was answered "held", before the
    // waiting request can go to sleep: the wake-up must not be lost to that gap.
    let raced = false;
    const racing: LockStore = {
      ...store,
      acquire: async (ref, params) => {
        const result = await store.acquire(ref, params);
        if (params.queueWindowMs != null && result.outcome === "held" && !raced) {
          raced = true;
          await store.release(ref, { tokenHash: sha256Hex("holder"), registeredOnly: false, actor: null });
        }
        return result;
      },
    };
    const { call } = appOn(racing);
    expect((await acquire(call, "race", "holder", undefined, 30_000)).status).toBe(200);
    const started = Date.now();
    const waiter = await acquire(call, "race", "waiter", 10_000);
    expect(raced).toBe(true);
    expect(waiter.status).toBe(200);
    expect(Date.now() - started).toBeLessThan(handoffMs);
  });

  it(
    "never lets anyone jump a live waiter behind 40 that stopped asking, and cleans them up in bounded steps",
    async () => {
      const [a, b] = instances();
      await acquire(a, "stale", "holder");
      // 40 waiters that wait 1 ms and never ask again: they keep their place for QUEUE_GRACE_MS.
      for (let i = 0; i < 40; i++)
        expect((await acquire(i % 2 ? b : a, "stale", `gone-${i}`, 1)).status).toBe(409);
      const live = acquire(b, "stale", "live", 30_000);
      await sleep(QUEUE_GRACE_MS + 300); // every one of the 40 has lost its place; "live" has not
      await release(a, "stale", "holder");
      // A plain acquire finds stale waiters ahead (or the live one holding it): never the key.
      const jumper = await acquire(a, "stale", "jumper");
      expect(jumper.status).toBe(409);
      const got = await live;
      expect(got.status).toBe(200);
      expect((await a("GET", pathTo("status", { key: "stale" }))).body).toMatchObject({
        locked: true,
        waiting: 0,
      });
      await release(b, "stale", "live");
      expect((await acquire(a, "stale", "jumper")).status).toBe(200);
    },
    QUEUE_GRACE_MS + 20_000,
  );

  it("refuses wait_ms without a token, cuts it to the server's bound, refuses nonsense", async () => {
    const [a] = instances();
    const noToken = await a("POST", pathTo("acquire", { key: "w" }), { ttl_ms: 1000, wait_ms: 1000 });
    expect(noToken.status).toBe(400);
    expect(noToken.body.error.message).toMatch(/wait_ms needs your own token/);
    const short = appOn(backends.open(kind), testConfig({ maxWaitMs: 300 })).call;
    await short("POST", pathTo("acquire", { key: "w" }), { ttl_ms: 10_000, token: "holder" });
    const started = Date.now();
    const cut = await short("POST", pathTo("acquire", { key: "w" }), {
      ttl_ms: 1000,
      wait_ms: 50_000,
      token: "t",
    });
    expect(cut.status).toBe(409);
    expect(Date.now() - started).toBeLessThan(2000);
    const tooLong = await a("POST", pathTo("acquire", { key: "w" }), {
      ttl_ms: 1000,
      wait_ms: 300_001,
      token: "t",
    });
    expect(tooLong.status).toBe(400);
    expect(tooLong.body.error.message).toMatch(/wait_ms must be at most 300000/);
    const badQuery = await a("GET", pathTo("status", { key: "w" }, { wait_ms: "soon" }));
    expect(badQuery.status).toBe(400);
    expect(badQuery.body.error.message).toMatch(/wait_ms/);
  });
});

describe("when the events source drops", () => {
  const acquire = (call: Call, key: string, token: string, wait_ms?: number) =>
    call("POST", pathTo("acquire", { key }), {
      ttl_ms: 30_000,
      token,
      holder_id: token,
      ...(wait_ms ? { wait_ms } : {}),
    });

  it("Upstash: waiters peek while streams are refused, the first in line gets it, streams come back", async () => {
    const prefix = `drop${Math.random().toString(16).slice(2, 8)}`;
    const { call } = appOn(backends.open("upstash", { prefix }));
    const bridge = backends.bridge!;
    expect((await acquire(call, "outage", "holder")).status).toBe(200);
    const first = acquire(call, "outage", "first", 20_000);
    await sleep(150);
    const second = acquire(call, "outage", "second", 20_000);
    await sleep(150);
    expect(bridge.subscriptions()).toBeGreaterThanOrEqual(2);

    bridge.refuseSubscriptions(true);
    expect(bridge.dropSubscriptions()).toBeGreaterThanOrEqual(2);
    const releasedAt = Date.now();
    expect((await call("POST", pathTo("release", { key: "outage" }), { token: "holder" })).status).toBe(200);
    const got = await first;
    // Found by a peek (every FALLBACK_PEEK_MS), not at the end of the window.
    expect(got.status).toBe(200);
    expect(got.body.holder_id).toBe("first");
    expect(Date.now() - releasedAt).toBeLessThan(FALLBACK_PEEK_MS + 1000);
    // The second is not woken into a grant it is not due.
    expect((await call("GET", pathTo("status", { key: "outage" }))).body).toMatchObject({
      holder_id: "first",
      waiting: 1,
    });

    bridge.refuseSubscriptions(false);
    // The stream is back within the retry delays; the next handoff is pushed again.
    for (let i = 0; i < 60 && bridge.subscriptions() === 0; i++) await sleep(100);
    expect(bridge.subscriptions()).toBeGreaterThanOrEqual(1);
    const handedAt = Date.now();
    await call("POST", pathTo("release", { key: "outage" }), { token: "first" });
    expect((await second).body.holder_id).toBe("second");
    expect(Date.now() - handedAt).toBeLessThan(500);
  }, 30_000);

  it("TCP Redis: a killed subscriber connection loses no handoff", async () => {
    const prefix = `drop${Math.random().toString(16).slice(2, 8)}`;
    const { call } = appOn(backends.open("redis", { prefix }));
    expect((await acquire(call, "outage", "holder")).status).toBe(200);
    const waiter = acquire(call, "outage", "waiter", 20_000);
    await sleep(200);
    const admin = new Redis(backends.redis!.url);
    try {
      expect(await admin.client("KILL", "TYPE", "pubsub")).toBeGreaterThanOrEqual(1);
    } finally {
      admin.disconnect();
    }
    const releasedAt = Date.now();
    await call("POST", pathTo("release", { key: "outage" }), { token: "holder" });
    const got = await waiter;
    expect(got.status).toBe(200);
    expect(Date.now() - releasedAt).toBeLessThan(FALLBACK_PEEK_MS + 1000);
  }, 30_000);
});

describe("a waiter whose server instance dies", () => {
  it.each(["redis", "upstash"] as const)(
    "%s: keeps its place only until its window and the grace period end; the next one gets the key",
    async (kind) => {
      const prefix = `dies${Math.random().toString(16).slice(2, 8)}`;
      const survivor = appOn(backends.open(kind, { prefix })).call;
      const doomed = await startServerProcess({
        ...(kind === "redis"
          ? { REDIS_URL: backends.redis!.url }
          : {
              UPSTASH_REDIS_REST_URL: backends.bridge!.url,
              UPSTASH_REDIS_REST_TOKEN: backends.bridge!.token,
            }),
        LSS_KEY_PREFIX: prefix,
        LSS_ADMIN_TOKEN: ADMIN_TOKEN,
        LSS_RATE_LIMIT: "off",
      });
      try {
        const body = (token: string, wait_ms?: number) => ({
          ttl_ms: 30_000,
          token,
          ...(wait_ms ? { wait_ms } : {}),
        });
        expect((await survivor("POST", pathTo("acquire", { key: "dies" }), body("holder"))).status).toBe(200);
        // The doomed instance's waiter asks to wait 2 s; its instance is killed while it waits.
        const joinedAt = Date.now();
        void fetch(`${doomed.url}${pathTo("acquire", { key: "dies" })}`, {
          method: "POST",
          headers: { Authorization: `Bearer ${ADMIN_TOKEN}`, "Content-Type": "application/json" },
          body: JSON.stringify(body("doomed", 2000)),
        }).catch(() => {});
        await sleep(200);
        const next = survivor("POST", pathTo("acquire", { key: "dies" }), body("next", 30_000));
        await sleep(200);
        await doomed.kill("SIGKILL");
        await survivor("POST", pathTo("release", { key: "dies" }), { token: "holder" });
        const got = await next;
        expect(got.status).toBe(200);
        // It waited for the dead waiter's place to lapse (its 2 s window plus the grace period).
        expect(Date.now() - joinedAt).toBeGreaterThanOrEqual(2000 + QUEUE_GRACE_MS - 300);
        expect(Date.now() - joinedAt).toBeLessThan(2000 + QUEUE_GRACE_MS + 1500);
      } finally {
        await doomed.kill();
      }
    },
    30_000,
  );
});

describe("queue keys on Redis", () => {
  it("expire by themselves: a queue nobody waits in is gone within GC_SLACK_MS of its last place", async () => {
    const prefix = `qttl${Math.random().toString(16).slice(2, 8)}`;
    const { call } = appOn(backends.open("redis", { prefix }));
    await call("POST", pathTo("acquire", { key: "ttl" }), { ttl_ms: 30_000, token: "holder" });
    const before = Date.now();
    expect(
      (await call("POST", pathTo("acquire", { key: "ttl" }), { ttl_ms: 1000, token: "w", wait_ms: 200 }))
        .status,
    ).toBe(409);
    const admin = new Redis(backends.redis!.url);
    try {
      const keys = redisKeys(prefix);
      for (const name of ["queue", "queueUntil"] as const) {
        const ttl = await admin.pttl(keys[name]({ namespace: "default", key: "ttl" }));
        expect(ttl).toBeGreaterThan(0);
        expect(before + ttl).toBeLessThanOrEqual(Date.now() + 200 + QUEUE_GRACE_MS + GC_SLACK_MS + 100);
      }
    } finally {
      admin.disconnect();
    }
  });
});

describe("waiting requests per caller (LSS_MAX_WAITS)", () => {
  it("answers 429 past the cap, counts per caller, and frees a slot when a wait ends", async () => {
    const { call } = appOn(backends.open("memory"), testConfig({ maxWaitsPerCaller: 2 }));
    await call("POST", pathTo("acquire", { key: "busy" }), { ttl_ms: 30_000, token: "holder" });
    const wait = (token: string, wait_ms = 2000, bearer?: string) =>
      call("POST", pathTo("acquire", { key: "busy" }), { ttl_ms: 1000, token, wait_ms }, bearer);
    const first = wait("w1");
    const second = wait("w2", 400);
    await sleep(100);
    const third = await wait("w3");
    expect(third.status).toBe(429);
    expect(third.body.error.code).toBe("rate_limited");
    expect(third.body.error.message).toMatch(/2 waiting requests open.*LSS_MAX_WAITS/);
    expect(third.headers.get("retry-after")).toBe("1");
    // A status wait counts too; a plain acquire does not wait, so it is not counted.
    expect((await call("GET", pathTo("status", { key: "busy" }, { wait_ms: "1000" }))).status).toBe(429);
    expect(
      (await call("POST", pathTo("acquire", { key: "busy" }), { ttl_ms: 1000, token: "plain" })).status,
    ).toBe(409);
    // Another caller has its own slots.
    const other = (await call("POST", pathTo("tokens"), { namespace: "default", scopes: ["locks:write"] }))
      .body.token;
    expect((await wait("o1", 100, other)).status).toBe(409);
    // When a wait ends, its slot is free again.
    expect((await second).status).toBe(409);
    expect((await wait("w4", 100)).status).toBe(409);
    expect((await first).status).toBe(409);
  });
});
