/**
 * A key's history and the namespace's listing, on every store through the HTTP API (part of the
 * contract: the stores must agree on what they record and list).
 */
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createMemoryStore } from "../server/stores/memory.js";
import { DEFAULT_LIMITS, type StoreLimits } from "../server/stores/types.js";
import { pathTo } from "../src/protocol/paths.js";
import { type AppConfig, appOn, testConfig } from "./support/app.js";
import { sleep } from "./support/processes.js";
import { STORE_KINDS, type StoreBackends, startBackends } from "./support/stores.js";

let backends: StoreBackends;
beforeAll(async () => {
  backends = await startBackends(STORE_KINDS);
});
afterAll(() => backends.close());

const path = (key: string) => pathTo("status", { key });
const limits = (overrides: Partial<StoreLimits>): StoreLimits => ({ ...DEFAULT_LIMITS, ...overrides });

/** An app on a fresh store of the kind, and a token of the default namespace with a name. */
async function setUp(kind: (typeof STORE_KINDS)[number], storeLimits?: StoreLimits) {
  const { call } = appOn(backends.open(kind, storeLimits ? { limits: storeLimits } : {}));
  const minted = await call("POST", pathTo("tokens"), {
    namespace: "default",
    scopes: ["locks:read", "locks:write"],
    name: "e2e-pipeline",
  });
  expect(minted.status).toBe(201);
  const token: string = minted.body.token;
  const id: string = minted.body.id;
  return {
    call,
    token,
    id,
    acquire: (key: string, body: Record<string, unknown>, as: string = token) =>
      call("POST", `${path(key)}/acquire`, body, as),
    release: (key: string, body: Record<string, unknown>, as: string = token) =>
      call("POST", `${path(key)}/release`, body, as),
    history: (key: string, query = "", as: string | null = token) =>
      call("GET", `${path(key)}/history${query}`, undefined, as),
    list: (query = "", as: string = token) => call("GET", `/infra/locks${query}`, undefined, as),
  };
}

describe.each(STORE_KINDS)("a key's history on %s", (kind) => {
  it("records a grant, an extension and a release: who, why, which token, fencing token, how long", async () => {
    const { acquire, release, history, id } = await setUp(kind);
    const granted = await acquire("qa-env", {
      ttl_ms: 60_000,
      token: "hist-1",
      holder_id: "acme/web · E2E · https://github.com/acme/web/actions/runs/42",
      reason: "e2e suite",
    });
    expect(granted.status).toBe(200);
    expect((await acquire("qa-env", { ttl_ms: 90_000, token: "hist-1" })).status).toBe(200);
    await sleep(20);
    expect((await release("qa-env", { token: "hist-1" })).status).toBe(200);

    const h = await history("qa-env");
    expect(h.status).toBe(200);
    expect(h.body.key).toBe("qa-env");
    expect(h.body.events.map((e: { event: string }) => e.event)).toEqual(["released", "extended", "granted"]);
    const actor = { token_id: id, token_name: "e2e-pipeline" };
    for (const e of h.body.events) {
      expect(e).toMatchObject({
        holder_id: "acme/web · E2E · https://github.com/acme/web/actions/runs/42",
        reason: "e2e suite",
        mode: "exclusive",
        fencing_token: granted.body.fencing_token,
        actor,
        run_url: "https://github.com/acme/web/actions/runs/42",
      });
    }
    const [released, , grant] = h.body.events;
    expect(grant.at).toBe(granted.body.acquired_at);
    expect(grant.held_ms).toBeNull();
    // held_ms: from the grant to the release, by the store's clock.
    expect(released.held_ms).toBe(Date.parse(released.at) - Date.parse(granted.body.acquired_at));
    expect(released.held_ms).toBeGreaterThanOrEqual(20);
    // Never a token, nor a hash of one.
    expect(JSON.stringify(h.body)).not.toContain("hist-1");
  });

  it("shows an expiry at the time the lease ended, before and after the key is next acquired, once", async () => {
    const { acquire, history } = await setUp(kind);
    const first = await acquire("nightly", { ttl_ms: 150, holder_id: "cron-1", reason: "migration" });
    expect(first.status).toBe(200);
    await sleep(300);
    // Not written yet: read from the key's record.
    const before = await history("nightly");
    expect(before.body.events.map((e: { event: string }) => e.event)).toEqual(["expired", "granted"]);
    expect(before.body.events[0]).toMatchObject({
      at: first.body.expires_at,
      holder_id: "cron-1",
      reason: "migration",
      fencing_token: first.body.fencing_token,
      held_ms: 150,
      actor: null,
    });
    // The next grant writes it; it is not counted twice.
    const second = await acquire("nightly", { ttl_ms: 60_000, holder_id: "cron-2" });
    expect(second.status).toBe(200);
    const after = await history("nightly");
    expect(
      after.body.events.map((e: { event: string; holder_id: string }) => [e.event, e.holder_id]),
    ).toEqual([
      ["granted", "cron-2"],
      ["expired", "cron-1"],
      ["granted", "cron-1"],
    ]);
    expect(after.body.events[1].at).toBe(first.body.expires_at);
  });

  it("records an operator's forced release of every holder, by the admin token", async () => {
    const { acquire, call, history } = await setUp(kind);
    expect((await acquire("shared-env", { ttl_ms: 60_000, mode: "shared", holder_id: "r1" })).status).toBe(
      200,
    );
    expect((await acquire("shared-env", { ttl_ms: 60_000, mode: "shared", holder_id: "r2" })).status).toBe(
      200,
    );
    expect((await call("POST", `${path("shared-env")}/release`, { force: true })).status).toBe(200);
    const h = await history("shared-env");
    const forced = h.body.events.filter((e: { event: string }) => e.event === "forced_release");
    expect(forced.map((e: { holder_id: string }) => e.holder_id).sort()).toEqual(["r1", "r2"]);
    for (const e of forced) {
      expect(e).toMatchObject({ mode: "shared", actor: { token_id: "admin", token_name: "admin" } });
      expect(e.held_ms).toBeGreaterThanOrEqual(0);
    }
  });

  it("records a shared holder's own release and another's expiry, each once", async () => {
    const { acquire, release, history } = await setUp(kind);
    await acquire("readers", { ttl_ms: 60_000, mode: "shared", holder_id: "long", token: "sh-long" });
    await acquire("readers", { ttl_ms: 150, mode: "shared", holder_id: "short", token: "sh-short" });
    await sleep(300);
    expect((await release("readers", { token: "sh-long" })).status).toBe(200);
    expect((await acquire("readers", { ttl_ms: 60_000, holder_id: "writer" })).status).toBe(200);
    const events = (await history("readers")).body.events.map((e: { event: string; holder_id: string }) => [
      e.event,
      e.holder_id,
    ]);
    expect(events).toEqual([
      ["granted", "writer"],
      ["released", "long"],
      ["expired", "short"],
      ["granted", "short"],
      ["granted", "long"],
    ]);
  });

  it("records a waiter that gives up (a queue timeout), with the holder it named and its token", async () => {
    const { acquire, call, history, id } = await setUp(kind);
    await acquire("busy", { ttl_ms: 60_000, holder_id: "owner" });
    const waited = await acquire("busy", {
      ttl_ms: 1000,
      token: "waiter",
      wait_ms: 50,
      holder_id: "impatient",
    });
    expect(waited.status).toBe(409);
    const left = await call(
      "POST",
      `${path("busy")}/leave`,
      { token: "waiter", holder_id: "impatient" },
      (await setUpToken(call)).token,
    );
    expect(left.status).toBe(200);
    const h = await history("busy");
    expect(h.body.events[0]).toMatchObject({
      event: "queue_timeout",
      holder_id: "impatient",
      mode: "exclusive",
    });
    expect(h.body.events[0].actor.token_id).not.toBe(id);
    // Leaving again (not queued any more) records nothing.
    await call("POST", `${path("busy")}/leave`, { token: "waiter" });
    expect((await history("busy")).body.events.length).toBe(h.body.events.length);
  });

  it("records a waiter that stopped asking when the queue moves past it", async () => {
    const { acquire, release, history } = await setUp(kind);
    await acquire("stale", { ttl_ms: 60_000, token: "owner" });
    expect((await acquire("stale", { ttl_ms: 1000, token: "gone", wait_ms: 1 })).status).toBe(409);
    // Its window (1 ms) and the grace period (5 s) pass.
    await sleep(5_300);
    await release("stale", { token: "owner" });
    expect((await acquire("stale", { ttl_ms: 1000, holder_id: "next" })).status).toBe(200);
    const events = (await history("stale")).body.events.map((e: { event: string }) => e.event);
    expect(events.slice(0, 3)).toEqual(["granted", "queue_timeout", "released"]);
  });

  it("records the /locks API's lock and unlock", async () => {
    const { call, history, token } = await setUp(kind);
    const created = await call("POST", pathTo("createStateLock", {}, { l: "true" }), undefined, token);
    expect(created.status).toBe(200);
    const lockId = created.body.id;
    expect(
      (
        await call(
          "PATCH",
          pathTo("unlockStateLock", { id: lockId }, { k: encodeURIComponent(created.body.key) }),
          undefined,
          token,
        )
      ).status,
    ).toBe(204);
    // The open API's locks live in the namespace "open": a token of that namespace reads them.
    const reader = (
      await call("POST", pathTo("tokens"), { namespace: "open", scopes: ["locks:read"], name: "ops" })
    ).body.token;
    const h = await history(`locks/${lockId}`, "", reader);
    expect(h.body.events.map((e: { event: string }) => e.event)).toEqual(["released", "granted"]);
    // The /locks API is open here (LSS_LOCKS_API_AUTH=open): its callers are nobody in particular.
    expect(h.body.events[1].actor).toBeNull();
  });

  it("keeps the newest LSS_HISTORY_EVENTS events, pages through them newest first without gaps or repeats", async () => {
    const { acquire, release, history } = await setUp(kind, limits({ historyPerKey: 7 }));
    for (let i = 0; i < 6; i++) {
      const g = await acquire("busy-key", { ttl_ms: 60_000, holder_id: `job-${i}` });
      expect(g.status).toBe(200);
      expect((await release("busy-key", { token: g.body.token })).status).toBe(200);
    }
    const all = (await history("busy-key", "?limit=100")).body.events;
    expect(all).toHaveLength(7);
    expect(all[0]).toMatchObject({ event: "released", holder_id: "job-5" });
    expect(all[6]).toMatchObject({ event: "released", holder_id: "job-2" });
    const seen: unknown[] = [];
    let cursor: string | null = null;
    for (let pages = 0; pages < 10; pages++) {
      const q: string = cursor ? `?limit=3&cursor=${encodeURIComponent(cursor)}` : "?limit=3";
      const page = await history("busy-key", q);
      expect(page.status).toBe(200);
      seen.push(...page.body.events);
      cursor = page.body.next_cursor;
      if (!cursor) break;
      // A new event between two pages shifts nothing.
      if (pages === 0) await acquire("busy-key", { ttl_ms: 60_000, holder_id: "late" });
    }
    // The late event pushed the oldest out (the bound is 7): the pages saw every other one, once.
    expect(seen).toEqual(all.slice(0, 6));
  });

  it("is the caller's namespace's alone, and needs the read scope", async () => {
    const { acquire, call, history } = await setUp(kind);
    await acquire("private", { ttl_ms: 60_000, holder_id: "ours" });
    const other = (await call("POST", pathTo("tokens"), { namespace: "elsewhere", scopes: ["locks:read"] }))
      .body.token;
    const theirs = await history("private", "", other);
    expect(theirs.status).toBe(200);
    expect(theirs.body.events).toEqual([]);
    const writeOnly = (
      await call("POST", pathTo("tokens"), { namespace: "default", scopes: ["locks:write"] })
    ).body.token;
    expect((await history("private", "", writeOnly)).status).toBe(403);
    expect((await history("private", "", null)).status).toBe(401);
  });
});

/** Another token of the default namespace (a different actor). */
const setUpToken = async (call: ReturnType<typeof appOn>["call"]) =>
  (await call("POST", pathTo("tokens"), { namespace: "default", scopes: ["locks:write"], name: "other" }))
    .body;

describe("run links", () => {
  const holders = [
    "acme/web · E2E · https://github.com/acme/web/actions/runs/42",
    "phish · https://github.com.evil.example/acme/web/actions/runs/42",
    "phish · https://evil.example/acme/web/actions/runs/42 · https://ghes.acme.example/acme/web/actions/runs/9/attempts/2",
    // Hosts that parsers read differently: WHATWG's github.com, RFC 3986's evil.example.
    "phish · https://github.com\\@evil.example/acme/web/actions/runs/42",
    "phish · https://someone@github.com/acme/web/actions/runs/42",
  ];
  const runUrls = async (config: Partial<AppConfig>) => {
    const { call } = appOn(createMemoryStore(), testConfig(config));
    for (const [i, holder_id] of holders.entries())
      expect(
        (await call("POST", pathTo("acquire", { key: `run-${i}` }), { ttl_ms: 60_000, holder_id })).status,
      ).toBe(200);
    const listed = (await call("GET", pathTo("list", {}, { prefix: "run-" }))).body.locks.map(
      (l: { run_url: string | null }) => l.run_url,
    );
    const history = (await call("GET", pathTo("history", { key: "run-2" }))).body.events[0].run_url;
    return { listed, history };
  };

  it("link only to the configured GitHub's runs: another host's address in a holder id is no run", async () => {
    // Before: any host's …/actions/runs/N became a run link.
    expect(await runUrls({})).toEqual({
      listed: ["https://github.com/acme/web/actions/runs/42", null, null, null, null],
      history: null,
    });
    expect(await runUrls({ githubServerUrl: "https://ghes.acme.example" })).toEqual({
      listed: [null, null, "https://ghes.acme.example/acme/web/actions/runs/9/attempts/2", null, null],
      history: "https://ghes.acme.example/acme/web/actions/runs/9/attempts/2",
    });
  });
});

describe.each(STORE_KINDS)("the namespace's listing on %s", (kind) => {
  it("lists every key in order with its state: holder, reason, expiry, holders, waiters, run link", async () => {
    const { acquire, call, list, release } = await setUp(kind);
    await acquire("qa-1", {
      ttl_ms: 60_000,
      holder_id: "acme/web · https://github.com/acme/web/actions/runs/7",
      reason: "deploy",
    });
    await acquire("qa-2", { ttl_ms: 60_000, mode: "shared", holder_id: "r1" });
    await acquire("qa-2", { ttl_ms: 30_000, mode: "shared", holder_id: "r2" });
    const freed = await acquire("qa-3", { ttl_ms: 60_000 });
    await release("qa-3", { token: freed.body.token });
    await acquire("qa-1", { ttl_ms: 1000, token: "w1", wait_ms: 1 });
    await acquire("qa-1", { ttl_ms: 1000, token: "w2", wait_ms: 1 });
    const created = await call("POST", pathTo("createStateLock", {}, { l: "true" }));
    const r = await list("?prefix=qa-");
    expect(r.status).toBe(200);
    expect(r.body.next_cursor).toBeNull();
    const byKey = Object.fromEntries(r.body.locks.map((l: { key: string }) => [l.key, l]));
    expect(r.body.locks.map((l: { key: string }) => l.key)).toEqual(["qa-1", "qa-2", "qa-3"]);
    expect(byKey["qa-1"]).toMatchObject({
      locked: true,
      mode: "exclusive",
      holder_id: "acme/web · https://github.com/acme/web/actions/runs/7",
      reason: "deploy",
      holders: 1,
      waiting: 2,
      registered: false,
      run_url: "https://github.com/acme/web/actions/runs/7",
    });
    expect(byKey["qa-1"].expires_in_ms).toBeGreaterThan(50_000);
    expect(byKey["qa-2"]).toMatchObject({
      locked: true,
      mode: "shared",
      holder_id: "r1",
      holders: 2,
      waiting: 0,
    });
    expect(byKey["qa-3"]).toMatchObject({ locked: false, holder_id: null, holders: 0, expires_at: null });
    // The open /locks API has a namespace of its own ("open"): its lock is listed there, under
    // locks/, and not in the admin's.
    expect((await call("GET", pathTo("list", {}, { prefix: "locks/" }))).body.locks).toEqual([]);
    const reader = (await call("POST", pathTo("tokens"), { namespace: "open", scopes: ["locks:read"] })).body
      .token;
    const theirs = await call("GET", pathTo("list", {}, { prefix: "locks/" }), undefined, reader);
    expect(theirs.body.locks).toEqual([
      expect.objectContaining({ key: `locks/${created.body.id}`, locked: true, registered: true }),
    ]);
  });

  it("filters by prefix and pages with a cursor, however many keys there are", async () => {
    const { acquire, list } = await setUp(kind);
    const keys = Array.from({ length: 23 }, (_, i) => `team-a/job-${String(i).padStart(2, "0")}`);
    for (const key of keys) expect((await acquire(key, { ttl_ms: 60_000 })).status).toBe(200);
    await acquire("team-b/job", { ttl_ms: 60_000 });
    await acquire("team-", { ttl_ms: 60_000 });
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const q: string = `?prefix=team-a/&limit=10${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`;
      const page = await list(q);
      expect(page.status).toBe(200);
      expect(page.body.locks.length).toBeLessThanOrEqual(10);
      seen.push(...page.body.locks.map((l: { key: string }) => l.key));
      cursor = page.body.next_cursor;
      pages++;
    } while (cursor && pages < 10);
    expect(seen).toEqual(keys);
    expect(pages).toBe(3);
    expect((await list("?prefix=team-b")).body.locks.map((l: { key: string }) => l.key)).toEqual([
      "team-b/job",
    ]);
    expect((await list("?prefix=nothing-here")).body).toEqual({ status: "ok", locks: [], next_cursor: null });
  });

  it("lists the caller's namespace only", async () => {
    const { acquire, call } = await setUp(kind);
    await acquire("ours-only", { ttl_ms: 60_000 });
    const other = (
      await call("POST", pathTo("tokens"), { namespace: "team-z", scopes: ["locks:write", "locks:read"] })
    ).body.token;
    await call("POST", `${path("theirs")}/acquire`, { ttl_ms: 60_000 }, other);
    const theirs = await call("GET", pathTo("list"), undefined, other);
    expect(theirs.body.locks.map((l: { key: string }) => l.key)).toEqual(["theirs"]);
  });

  it.each([
    ["limit=0", "?limit=0", /limit must be at least 1/],
    ["limit=101", "?limit=101", /limit must be at most 100/],
    ["limit=ten", "?limit=ten", /limit must be a whole number/],
    ["a cursor with a control character", "?cursor=%01", /control characters/],
  ])("refuses %s with 400 naming the parameter", async (_label, query, message) => {
    const { list } = await setUp(kind);
    const r = await list(query);
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe("bad_request");
    expect(r.body.error.message).toMatch(message);
  });
});

describe("history validation", () => {
  it.each([
    ["a cursor that is not a history's", "?cursor=yesterday", /cursor must be a next_cursor/],
    ["limit=0", "?limit=0", /limit must be at least 1/],
    ["limit=1000", "?limit=1000", /limit must be at most 100/],
  ])("refuses %s with 400", async (_label, query, message) => {
    const { history } = await setUp("memory");
    const r = await history("k", query);
    expect(r.status).toBe(400);
    expect(r.body.error.message).toMatch(message);
  });

  it("refuses a prefix longer than a key", async () => {
    const { list } = await setUp("memory");
    const r = await list(`?prefix=${"p".repeat(513)}`);
    expect(r.status).toBe(400);
    expect(r.body.error.message).toMatch(/prefix must be at most 512 characters/);
  });
});

describe("on Redis", () => {
  it("keeps a key's history bounded and expiring: at most a tenth over the bound, gone its retention after", async () => {
    const store = backends.open("redis", {
      limits: limits({ historyPerKey: 10, historyRetentionMs: 86_400_000 }),
    });
    const { call } = appOn(store);
    for (let i = 0; i < 40; i++) {
      const g = await call("POST", `${path("churn")}/acquire`, { ttl_ms: 60_000 });
      await call("POST", `${path("churn")}/release`, { token: g.body.token });
    }
    const redis = new Redis(backends.redis?.url as string);
    try {
      const [key] = await redis.keys("*:{default}:history:churn");
      expect(key).toBeDefined();
      expect(await redis.llen(key as string)).toBeLessThanOrEqual(11);
      const ttl = await redis.pttl(key as string);
      expect(ttl).toBeGreaterThan(86_400_000 - 60_000);
      expect(ttl).toBeLessThanOrEqual(86_400_000 + 86_400_000 / 30);
    } finally {
      redis.disconnect();
    }
    expect((await call("GET", `${path("churn")}/history?limit=100`)).body.events).toHaveLength(10);
  });
});
