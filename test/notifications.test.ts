/**
 * Notifications end to end: webhook subscriptions through the API, and lock events delivered to a
 * real HTTP receiver on loopback. Signed JSON (checked as a receiver would), Slack's shape, the
 * events of every kind (on the memory store, on Redis and on Upstash for those a lock operation
 * sets off), retries after a 500, a receiver that hangs or redirects, the SSRF rule, the bound per
 * namespace, and the metrics.
 */
import { createHmac } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApp } from "../server/app.js";
import { createMetrics } from "../server/metrics.js";
import { createNotifier, type Notifier, slottedNotifier } from "../server/notify/notifier.js";
import { deliveryProblem, isPrivateAddress, webhookUrlProblem } from "../server/notify/ssrf.js";
import { keyMatches } from "../server/notify/subscriptions.js";
import { createMemoryStore } from "../server/stores/memory.js";
import type { LockStore } from "../server/stores/types.js";
import { pathTo } from "../src/protocol/paths.js";
import { expectError, request, testConfig } from "./support/app.js";
import { sleep } from "./support/processes.js";
import { type StoreBackends, startBackends } from "./support/stores.js";
import { type Received, startWebhookReceiver, type WebhookReceiver } from "./support/webhook-receiver.js";

let receiver: WebhookReceiver;
let elsewhere: WebhookReceiver;
let backends: StoreBackends;
beforeAll(async () => {
  elsewhere = await startWebhookReceiver();
  receiver = await startWebhookReceiver({ redirectTo: elsewhere.url });
  backends = await startBackends(["redis", "upstash"]);
});
afterAll(async () => {
  await receiver?.close();
  await elsewhere?.close();
  await backends?.close();
});

let paths = 0;
/** A path of the receiver no other test uses. */
const fresh = (kind: "ok" | "flaky" | "hang" | "gone" | "redirect") => `${receiver.url}/${kind}/${paths++}`;
const at = (url: string) => receiver.received.filter((r) => url.endsWith(r.path));

function setup(opts: { store?: LockStore; maxPending?: number; allowPrivate?: boolean } = {}) {
  let offset = 0;
  const now = () => Date.now() + offset;
  const store = opts.store ?? createMemoryStore({ clock: now });
  const metrics = createMetrics();
  const lines: string[] = [];
  const allowPrivate = opts.allowPrivate ?? true;
  const notifier: Notifier = createNotifier({
    store,
    now,
    metrics,
    allowPrivate,
    maxPendingPerNamespace: opts.maxPending ?? 1000,
    deliveryTimeoutMs: 300,
    log: (l) => lines.push(l),
  });
  const app = createApp({
    store,
    rateLimiter: null,
    metrics,
    notifier,
    config: testConfig({ webhooks: { allowPrivate, maxPending: opts.maxPending ?? 1000 } }),
  });
  const call = (method: string, path: string, json?: unknown) => request(app, method, path, { json });
  const acquire = (key: string, body: Record<string, unknown>) =>
    call("POST", pathTo("acquire", { key }), { ttl_ms: 60_000, ...body });
  const release = (key: string, body: Record<string, unknown>) =>
    call("POST", pathTo("release", { key }), body);
  const subscribe = async (body: Record<string, unknown>) => {
    const r = await call("POST", pathTo("webhooks"), body);
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    return r.body as { id: string; secret: string };
  };
  const counted = async (event: string, outcome: string) => {
    const text = await metrics.render();
    const line = text
      .split("\n")
      .find((l) => l.startsWith(`lss_webhook_deliveries_total{event="${event}",outcome="${outcome}"}`));
    return line ? Number(line.split(" ").pop()) : 0;
  };
  return {
    store,
    app,
    notifier,
    lines,
    call,
    acquire,
    release,
    subscribe,
    counted,
    advance: (ms: number) => (offset += ms),
  };
}

/** The signature check a receiver makes (the README shows the same). */
function verified(r: Received, secret: string): boolean {
  const header = String(r.headers["x-lss-signature"] ?? "");
  const [, t, v1] = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(header) ?? [];
  if (!t || !v1) return false;
  const expected = createHmac("sha256", secret).update(`${t}.${r.body}`).digest("hex");
  return expected === v1 && Math.abs(Date.now() / 1000 - Number(t)) < 300;
}

describe("webhook subscriptions", () => {
  it("shows the secret once, lists without it, and deletes", async () => {
    const t = setup();
    const created = await t.call("POST", pathTo("webhooks"), {
      url: `${receiver.url}/ok/list`,
      events: ["released", "held_longer_than"],
      key_pattern: "qa-*",
      format: "slack",
      held_longer_than_ms: 4 * 3_600_000,
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      status: "ok",
      url: `${receiver.url}/ok/list`,
      events: ["released", "held_longer_than"],
      key_pattern: "qa-*",
      format: "slack",
      held_longer_than_ms: 14_400_000,
      queue_longer_than_ms: null,
    });
    expect(created.body.secret).toMatch(/^whsec_[\w-]{32}$/);
    const listed = await t.call("GET", pathTo("webhooks"));
    expect(listed.body.webhooks).toHaveLength(1);
    expect(JSON.stringify(listed.body)).not.toContain(created.body.secret);
    const id = created.body.id;
    expect((await t.call("DELETE", pathTo("webhook", { id }))).body).toMatchObject({ deleted: true });
    expect((await t.call("GET", pathTo("webhooks"))).body.webhooks).toEqual([]);
    expectError(
      await t.call("DELETE", pathTo("webhook", { id })),
      404,
      "not_found",
      /no webhook subscription/,
    );
  });

  it("is for admins only", async () => {
    const t = setup();
    const minted = await t.call("POST", pathTo("tokens"), { namespace: "default", scopes: ["locks:write"] });
    const r = await request(t.app, "GET", pathTo("webhooks"), { auth: `Bearer ${minted.body.token}` });
    expect(r.status).toBe(403);
  });

  const ok = { url: "https://hooks.example.com/lss", events: ["released"] };
  const bad: Array<[string, Record<string, unknown>, string, RegExp]> = [
    ["http without the private allowance", { url: "http://hooks.example.com/x" }, "url", /url must be https/],
    ["localhost", { url: "https://localhost/x" }, "url", /localhost is loopback, private or link-local/],
    ["127.0.0.1", { url: "https://127.0.0.1:8443/x" }, "url", /127\.0\.0\.1 is loopback/],
    ["a private address", { url: "https://10.1.2.3/x" }, "url", /10\.1\.2\.3 is loopback, private/],
    ["the cloud metadata address", { url: "https://169.254.169.254/latest" }, "url", /169\.254\.169\.254/],
    ["IPv6 loopback", { url: "https://[::1]/x" }, "url", /\[::1\] is loopback/],
    ["IPv4 as IPv6", { url: "https://[::ffff:127.0.0.1]/x" }, "url", /is loopback/],
    ["a decimal IPv4 address", { url: "https://2130706433/x" }, "url", /is loopback/],
    ["a hex IPv4 address", { url: "https://0x7f.1/x" }, "url", /is loopback/],
    ["not a URL", { url: "hooks" }, "url", /url must be an absolute URL/],
    [
      "a user name and password",
      { url: "https://u:p@hooks.example.com/x" },
      "url",
      /must not hold a user name/,
    ],
    ["a URL of 2049 characters", { url: `https://h.example.com/${"a".repeat(2030)}` }, "url", /at most 2048/],
    ["no events", { events: [] }, "events", /events must name at least one event/],
    ["an unknown event", { events: ["deleted"] }, "events.0", /events must be some of granted, released/],
    ["events not a list", { events: "released" }, "events", /events must be an array/],
    ["a bad format", { format: "xml" }, "format", /format must be json or slack/],
    ["an empty key pattern", { key_pattern: "" }, "key_pattern", /key_pattern must not be empty/],
    [
      "a threshold without its event",
      { held_longer_than_ms: 3_600_000 },
      "held_longer_than_ms",
      /held_longer_than_ms needs event held_longer_than/,
    ],
    [
      "the event without its threshold",
      { events: ["queue_longer_than"] },
      "queue_longer_than_ms",
      /queue_longer_than_ms is needed with event queue_longer_than/,
    ],
    [
      "a threshold under a minute",
      { events: ["held_longer_than"], held_longer_than_ms: 1000 },
      "held_longer_than_ms",
      /at least 60000/,
    ],
    ["an unknown field", { secret: "mine" }, "", /unrecognized|secret/i],
  ];
  it.each(bad)(
    "refuses %s: 400 naming the field, nothing subscribed",
    async (_label, change, field, message) => {
      const t = setup({ allowPrivate: false });
      const r = await t.call("POST", pathTo("webhooks"), { ...ok, ...change });
      expectError(r, 400, "bad_request", message);
      if (field) expect(r.body.details).toContainEqual(expect.objectContaining({ field }));
      expect((await t.call("GET", pathTo("webhooks"))).body.webhooks).toEqual([]);
    },
  );

  it("takes at most 20 per namespace (403 quota_exceeded)", async () => {
    const t = setup({ allowPrivate: false });
    for (let i = 0; i < 20; i++) await t.subscribe(ok);
    expectError(
      await t.call("POST", pathTo("webhooks"), ok),
      403,
      "quota_exceeded",
      /20 webhook subscriptions/,
    );
  });
});

describe("the SSRF rule", () => {
  it.each([
    ["127.0.0.1", true],
    ["10.0.0.1", true],
    ["172.31.255.255", true],
    ["172.32.0.1", false],
    ["192.168.1.1", true],
    ["100.64.0.1", true],
    ["169.254.169.254", true],
    ["0.0.0.0", true],
    ["8.8.8.8", false],
    ["::1", true],
    ["fd00::1", true],
    ["fe80::1", true],
    ["::ffff:10.0.0.1", true],
    ["::ffff:7f00:1", true],
    ["::ffff:808:808", false],
    ["::127.0.0.1", true],
    ["64:ff9b::a9fe:a9fe", true],
    ["[0:0:0:0:0:0:0:1]", true],
    ["fec0::1", true],
    ["ff02::1", true],
    ["2606:4700::1111", false],
  ])("%s is private: %s", (address, expected) => {
    expect(isPrivateAddress(address)).toBe(expected);
  });

  it("allows http and private addresses only with LSS_WEBHOOK_ALLOW_PRIVATE", async () => {
    expect(webhookUrlProblem("http://127.0.0.1:9/x", true)).toBeNull();
    expect(webhookUrlProblem("https://hooks.slack.com/services/T/B/X", false)).toBeNull();
    // A name that resolves to loopback is not posted to (checked before each delivery, on Node).
    expect(await deliveryProblem("https://localhost/x", false)).toMatch(
      /localhost resolves to .*a private address/,
    );
    expect(await deliveryProblem("https://localhost/x", true)).toBeNull();
  });

  it("matches key patterns with *", () => {
    expect(keyMatches("qa-*", "qa-1")).toBe(true);
    expect(keyMatches("qa-*", "prod")).toBe(false);
    expect(keyMatches("*-db", "nightly-db")).toBe(true);
    expect(keyMatches("a*b*c", "abc")).toBe(true);
    expect(keyMatches("a*b*c", "acb")).toBe(false);
    expect(keyMatches("ab*ba", "aba")).toBe(false);
    expect(keyMatches(null, "anything")).toBe(true);
  });
});

describe.each(["memory", "redis", "upstash"] as const)("deliveries on %s", (kind) => {
  it("signed JSON for granted after waiting, superseded, released and forced_release; never a token", async () => {
    const t = setup({
      store: kind === "memory" ? undefined : backends.open(kind, { prefix: `n${paths++}` }),
    });
    const url = fresh("ok");
    const { secret } = await t.subscribe({
      url,
      events: ["granted", "released", "forced_release", "superseded", "expired"],
    });
    const key = `deliver-${kind}`;
    expect((await t.acquire(key, { token: "tok-e2e", holder_id: "e2e" })).status).toBe(200);
    const older = t.acquire(key, {
      token: "tok-d1",
      holder_id: "deploy-1",
      wait_ms: 5000,
      supersede: "deploy",
    });
    await sleep(100);
    const newer = t.acquire(key, {
      token: "tok-d2",
      holder_id: "deploy-2",
      wait_ms: 5000,
      supersede: "deploy",
    });
    expect((await older).body.error.code).toBe("superseded");
    await receiver.waitFor(1, 5000);
    expect((await t.release(key, { token: "tok-e2e" })).status).toBe(200);
    expect((await newer).status).toBe(200);
    expect((await t.release(key, { force: true })).status).toBe(200);
    const deadline = Date.now() + 5000;
    while (at(url).length < 4 && Date.now() < deadline) await sleep(20);
    const got = at(url).map((r) => ({
      ...JSON.parse(r.body),
      signed: verified(r, secret),
      header: r.headers["x-lss-event"],
    }));
    expect(got.map((g) => g.event).sort()).toEqual(["forced_release", "granted", "released", "superseded"]);
    for (const g of got)
      expect(g).toMatchObject({ signed: true, header: g.event, namespace: "default", key });
    expect(got.find((g) => g.event === "superseded")).toMatchObject({
      holder_id: "deploy-1",
      superseded_by: "deploy-2",
    });
    expect(got.find((g) => g.event === "released")).toMatchObject({
      holder_id: "e2e",
      held_ms: expect.any(Number),
    });
    expect(got.find((g) => g.event === "granted")).toMatchObject({
      holder_id: "deploy-2",
      fencing_token: expect.any(Number),
    });
    expect(got.find((g) => g.event === "forced_release")).toMatchObject({ holder_id: "deploy-2" });
    // A wrong secret does not verify; no delivery carries a lease token.
    expect(verified(at(url)[0] as Received, "whsec_wrong")).toBe(false);
    for (const r of at(url)) expect(r.body).not.toMatch(/tok-/);
    expect(await t.counted("released", "done")).toBe(1);
    // Each event once: a second tick sends nothing more.
    await t.notifier.tick();
    await sleep(100);
    expect(at(url)).toHaveLength(4);
  }, 20_000);
});

/** A memory store that records which kind of records each full read (all()) was of. */
function countingReads() {
  const base = createMemoryStore();
  const reads: string[] = [];
  const store: LockStore = {
    ...base,
    records: (kind) => {
      const records = base.records(kind);
      const all = () => {
        reads.push(kind);
        return records.all();
      };
      return { ...records, all };
    },
  };
  return { store, reads };
}

describe("an idle tick", () => {
  it("costs the store nothing while nobody subscribes, and finds a new subscription at once", async () => {
    const { store, reads } = countingReads();
    const t = setup({ store });
    await t.notifier.tick();
    const first = reads.length;
    expect(first).toBeGreaterThan(0);
    for (let i = 0; i < 5; i++) await t.notifier.tick();
    expect(reads.length).toBe(first);
    // Every five minutes it looks again, for subscriptions made elsewhere.
    t.advance(5 * 60_000 + 1);
    await t.notifier.tick();
    expect(reads.slice(first)).toEqual(["webhooks"]);
    // One made here counts at once: the next tick reads it, and the outbox.
    await t.subscribe({ url: fresh("ok"), events: ["held_longer_than"], held_longer_than_ms: 60_000 });
    const before = reads.length;
    await t.notifier.tick();
    expect(reads.length).toBeGreaterThan(before);
  });
});

describe("a Cron Trigger's tick (Workers)", () => {
  it("looks at the store only at the start of each 5-minute slot while it knows of nothing to do", async () => {
    const { store, reads } = countingReads();
    const t = setup({ store });
    const slot = 5 * 60_000;
    const at = (minuteOfSlot: number) =>
      1_800_000_000_000 - (1_800_000_000_000 % slot) + minuteOfSlot * 60_000;
    // A new isolate knows of nothing: the triggers of minutes 1 to 4 of a slot cost nothing…
    for (const minute of [1, 2, 3, 4]) await slottedNotifier(t.notifier, at(minute)).tick();
    expect(reads).toEqual([]);
    // …and the slot's first looks.
    await slottedNotifier(t.notifier, at(0)).tick();
    expect(reads).toContain("webhooks");
    // An instance that knows of a subscription (made here) ticks at every trigger.
    await t.subscribe({ url: fresh("ok"), events: ["held_longer_than"], held_longer_than_ms: 60_000 });
    const before = reads.length;
    await slottedNotifier(t.notifier, at(3)).tick();
    expect(reads.length).toBeGreaterThan(before);
  });
});

describe("deliveries", () => {
  it("in Slack's shape for an incoming webhook", async () => {
    const t = setup();
    const url = fresh("ok");
    await t.subscribe({ url, events: ["released"], format: "slack" });
    await t.acquire("slack-key", { token: "t1", holder_id: "QA <team> & co", reason: "manual testing" });
    await t.release("slack-key", { token: "t1" });
    const [r] = await receiver.waitFor(1).then(() => waitAt(url, 1));
    const body = JSON.parse(r?.body ?? "{}");
    expect(Object.keys(body)).toEqual(["text"]);
    expect(body.text).toMatch(/^LSS: `slack-key` released by QA &lt;team&gt; &amp; co after \d/);
  });

  it("only for the keys its pattern matches, and none once it is deleted", async () => {
    const t = setup();
    const url = fresh("ok");
    const { id } = await t.subscribe({ url, events: ["released"], key_pattern: "qa-*" });
    for (const key of ["qa-1", "prod"]) {
      await t.acquire(key, { token: `t-${key}` });
      await t.release(key, { token: `t-${key}` });
    }
    expect((await waitAt(url, 1)).map((r) => JSON.parse(r.body).key)).toEqual(["qa-1"]);
    await t.call("DELETE", pathTo("webhook", { id }));
    // Instances forget it within the cache's 10 s; this one at once.
    await t.acquire("qa-2", { token: "t-qa-2" });
    await t.release("qa-2", { token: "t-qa-2" });
    await sleep(200);
    expect(at(url)).toHaveLength(1);
  });

  it("again after a 500, with backoff, from the tick", async () => {
    const t = setup();
    const url = fresh("flaky");
    await t.subscribe({ url, events: ["released"] });
    await t.acquire("flaky-key", { token: "t1" });
    await t.release("flaky-key", { token: "t1" });
    await waitAt(url, 1);
    await until(async () => (await t.counted("released", "retry")) === 1);
    expect(await t.notifier.pending()).toHaveLength(1);
    // Not before its backoff (1 s) …
    await t.notifier.tick();
    expect(at(url)).toHaveLength(1);
    // … then sent, and done.
    t.advance(1_100);
    await t.notifier.tick();
    expect(at(url)).toHaveLength(2);
    expect(JSON.parse(at(url)[1]?.body ?? "{}").id).toBe(JSON.parse(at(url)[0]?.body ?? "{}").id);
    expect(await t.notifier.pending()).toEqual([]);
    expect(await t.counted("released", "done")).toBe(1);
  });

  it("from a receiver that hangs: no lock operation waits for it, and it is tried again later", async () => {
    const t = setup();
    const url = fresh("hang");
    await t.subscribe({ url, events: ["released", "granted"] });
    await t.acquire("hang-key", { token: "t1" });
    const started = performance.now();
    for (let i = 0; i < 5; i++) {
      expect((await t.release("hang-key", { token: `t${i + 1}` })).status).toBe(200);
      expect((await t.acquire("hang-key", { token: `t${i + 2}` })).status).toBe(200);
    }
    // Ten lock operations while deliveries hang: none of them waited for one (each is 300 ms).
    expect(performance.now() - started).toBeLessThan(1000);
    await until(async () => (await t.counted("released", "retry")) >= 1, 3000);
    expect((await t.notifier.pending()).length).toBeGreaterThanOrEqual(1);
  });

  it("a tick with many hanging receivers tries them a few at a time, not one after another", async () => {
    const t = setup();
    for (let i = 0; i < 4; i++) await t.subscribe({ url: fresh("hang"), events: ["released"] });
    for (let i = 0; i < 4; i++) {
      await t.acquire(`many-${i}`, { token: "t" });
      await t.release(`many-${i}`, { token: "t" });
    }
    await until(async () => (await t.counted("released", "retry")) >= 16, 5000);
    t.advance(120_000);
    const started = performance.now();
    await t.notifier.tick();
    // 16 attempts of 300 ms each: one after another 4.8 s; eight at a time, two rounds.
    expect(performance.now() - started).toBeLessThan(2000);
    expect(await t.counted("released", "retry")).toBeGreaterThanOrEqual(32);
  });

  it("never follows a redirect (a public receiver cannot bounce it to loopback): dropped", async () => {
    const t = setup();
    const url = fresh("redirect");
    await t.subscribe({ url, events: ["released"] });
    await t.acquire("redirect-key", { token: "t1" });
    await t.release("redirect-key", { token: "t1" });
    await waitAt(url, 1);
    await until(async () => (await t.counted("released", "dropped")) === 1);
    expect(elsewhere.received).toEqual([]);
    expect(await t.notifier.pending()).toEqual([]);
    expect(t.lines.some((l) => /answered 302/.test(l))).toBe(true);
  });

  it("refused for good (410): dropped, not retried", async () => {
    const t = setup();
    const url = fresh("gone");
    await t.subscribe({ url, events: ["released"] });
    await t.acquire("gone-key", { token: "t1" });
    await t.release("gone-key", { token: "t1" });
    await until(async () => (await t.counted("released", "dropped")) === 1);
    expect(await t.notifier.pending()).toEqual([]);
  });

  it("at most LSS_WEBHOOK_MAX_PENDING per namespace: past it, new ones are dropped and counted", async () => {
    const t = setup({ maxPending: 2 });
    const url = fresh("hang");
    await t.subscribe({ url, events: ["released"] });
    for (let i = 0; i < 4; i++) {
      await t.acquire(`bound-${i}`, { token: "t" });
      await t.release(`bound-${i}`, { token: "t" });
      await sleep(30);
    }
    await until(async () => (await t.counted("released", "overflow")) >= 1, 3000);
    expect((await t.notifier.pending()).length).toBeLessThanOrEqual(2);
  });

  it("expired: the next grant finds its holder died, named from the history", async () => {
    const t = setup();
    const url = fresh("ok");
    await t.subscribe({ url, events: ["expired"] });
    await t.acquire("dead-key", { token: "t1", holder_id: "dead-runner", ttl_ms: 1000 });
    t.advance(5_000);
    await t.acquire("dead-key", { token: "t2", holder_id: "next" });
    const [r] = await waitAt(url, 1);
    expect(JSON.parse(r?.body ?? "{}")).toMatchObject({
      event: "expired",
      holder_id: "dead-runner",
      held_ms: 1000,
    });
  });

  it("held_longer_than and queue_longer_than come from the tick, once per hold and per wait", async () => {
    const t = setup();
    const url = fresh("ok");
    await t.subscribe({
      url,
      events: ["held_longer_than", "queue_longer_than"],
      held_longer_than_ms: 3_600_000,
      queue_longer_than_ms: 1_800_000,
    });
    await t.acquire("long-key", { token: "holder", holder_id: "qa-team", ttl_ms: 86_400_000 });
    await t.store.acquire(
      { namespace: "default", key: "long-key" },
      {
        tokenHash: "w".repeat(64),
        holderId: "deploy",
        reason: null,
        ttlMs: 60_000,
        registeredOnly: false,
        queueWindowMs: 86_400_000,
        mode: "exclusive",
        limit: 1,
        actor: null,
      },
    );
    t.advance(40 * 60_000);
    await t.notifier.tick();
    const first = await waitAt(url, 1);
    expect(JSON.parse(first[0]?.body ?? "{}")).toMatchObject({
      event: "queue_longer_than",
      holder_id: "deploy",
      threshold_ms: 1_800_000,
    });
    t.advance(30 * 60_000);
    await t.notifier.tick();
    await t.notifier.tick();
    const both = await waitAt(url, 2);
    expect(JSON.parse(both[1]?.body ?? "{}")).toMatchObject({
      event: "held_longer_than",
      holder_id: "qa-team",
      held_ms: expect.any(Number),
    });
    await sleep(100);
    expect(at(url)).toHaveLength(2);
  });
});

async function waitAt(url: string, n: number, ms = 5000): Promise<Received[]> {
  const deadline = Date.now() + ms;
  while (at(url).length < n) {
    if (Date.now() > deadline) throw new Error(`${at(url).length} of ${n} deliveries to ${url}`);
    await sleep(10);
  }
  return at(url);
}

async function until(check: () => Promise<boolean>, ms = 5000) {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error("timed out");
    await sleep(10);
  }
}
