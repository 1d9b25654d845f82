/**
 * GET /metrics (server/metrics.ts): who may read it, and that its numbers say exactly what happened,
 * read from the text exposition as Prometheus would.
 */
import { Hono } from "hono";
import { describe, expect, it } from "vitest";
import { createApp } from "../server/app.js";
import { memoryRateLimiter } from "../server/auth/rate-limit.js";
import { createMetrics, instrumentStore, rateLimitReason } from "../server/metrics.js";
import { createMemoryStore } from "../server/stores/memory.js";
import { type LockStore, StoreUnavailableError } from "../server/stores/types.js";
import { pathTo } from "../src/protocol/paths.js";
import { ADMIN_TOKEN, appOn, testConfig } from "./support/app.js";
import { sleep } from "./support/processes.js";

const METRICS_TOKEN = "metrics-scraper-token-0123456789";

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The samples of a text exposition (format 0.0.4). */
function parse(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, k, v] of (m[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g))
      labels[k as string] = v as string;
    samples.push({ name: m[1] as string, labels, value: Number(m[3]) });
  }
  return samples;
}

/** The one sample of `name` with exactly these labels; undefined when there is none. */
function value(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  const found = parse(text).filter(
    (s) =>
      s.name === name &&
      Object.keys(s.labels).length === Object.keys(labels).length &&
      Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );
  if (found.length > 1) throw new Error(`${found.length} samples of ${name} ${JSON.stringify(labels)}`);
  return found[0]?.value;
}

type App = ReturnType<typeof createApp>;

async function scrape(app: App, token: string | null = METRICS_TOKEN) {
  const res = await app.request("/metrics", {
    headers: token ? { Authorization: `Bearer ${token}` } : {},
  });
  const text = await res.text();
  return { status: res.status, type: res.headers.get("content-type"), text };
}

const json = (method: string, body?: unknown, token: string | null = ADMIN_TOKEN): RequestInit => ({
  method,
  headers: {
    ...(token ? { Authorization: `Bearer ${token}` } : {}),
    ...(body === undefined ? {} : { "Content-Type": "application/json" }),
  },
  body: body === undefined ? undefined : JSON.stringify(body),
});

describe("who may read /metrics", () => {
  const { app, call } = appOn(createMemoryStore(), testConfig({ metricsToken: METRICS_TOKEN }));

  it("refuses no token and an unknown token with 401 in the one error shape", async () => {
    const none = await app.request("/metrics");
    expect(none.status).toBe(401);
    expect(none.headers.get("www-authenticate")).toMatch(/^Bearer/);
    expect(await none.json()).toMatchObject({ status: "error", error: { code: "unauthorized" } });

    const wrong = await scrape(app, "metrics-scraper-token-0123456780");
    expect(wrong.status).toBe(401);
    expect(JSON.parse(wrong.text)).toMatchObject({ status: "error", error: { code: "unauthorized" } });
  });

  it("refuses a token without the admin scope with 403", async () => {
    const minted = await call("POST", pathTo("tokens"), {
      namespace: "team",
      scopes: ["locks:read", "locks:write"],
    });
    expect(minted.status).toBe(201);
    const res = await scrape(app, minted.body.token);
    expect(res.status).toBe(403);
    expect(JSON.parse(res.text)).toMatchObject({ status: "error", error: { code: "forbidden" } });
    expect(JSON.parse(res.text).error.message).toContain("LSS_METRICS_TOKEN");
  });

  it("serves the text format to the admin token and to LSS_METRICS_TOKEN", async () => {
    for (const token of [ADMIN_TOKEN, METRICS_TOKEN]) {
      const res = await scrape(app, token);
      expect(res.status).toBe(200);
      expect(res.type).toMatch(/^text\/plain; version=0\.0\.4/);
      expect(res.text).toContain("# TYPE lss_http_requests_total counter");
    }
  });

  it("LSS_METRICS_TOKEN reads /metrics and nothing else", async () => {
    const acquire = await app.request(
      pathTo("acquire", { key: "k" }),
      json("POST", { ttl_ms: 1000 }, METRICS_TOKEN),
    );
    expect(acquire.status).toBe(401);
    const tokens = await app.request(pathTo("tokens"), json("GET", undefined, METRICS_TOKEN));
    expect(tokens.status).toBe(401);
  });

  it("without LSS_METRICS_TOKEN, only an admin token reads it", async () => {
    const plain = appOn(createMemoryStore()).app;
    expect((await scrape(plain, METRICS_TOKEN)).status).toBe(401);
    expect((await scrape(plain, null)).status).toBe(401);
    expect((await scrape(plain, ADMIN_TOKEN)).status).toBe(200);
  });

  it("LSS_METRICS=off: no /metrics at all", async () => {
    const off = appOn(
      createMemoryStore(),
      testConfig({ metricsEnabled: false, metricsToken: METRICS_TOKEN }),
    ).app;
    const res = await scrape(off, ADMIN_TOKEN);
    expect(res.status).toBe(404);
    expect(JSON.parse(res.text).error.code).toBe("not_found");
  });
});

describe("what /metrics counts", () => {
  it("requests by route pattern and status, their durations, grants, releases, forced releases and 429s", async () => {
    // The admin may make 4 requests a minute, and as many releases; the scraper has its own allowance.
    const app = createApp({
      store: createMemoryStore(),
      rateLimiter: memoryRateLimiter(4),
      config: testConfig({ metricsToken: METRICS_TOKEN, rateLimitPerMinute: 4 }),
    });
    const key = "billing-db-7f3a";
    const path = pathTo("status", { key });
    const granted = await app.request(
      `${path}/acquire`,
      json("POST", { ttl_ms: 60_000, holder_id: "runner-42" }),
    );
    expect(granted.status).toBe(200);
    const { token } = (await granted.json()) as { token: string };
    expect((await app.request(`${path}/acquire`, json("POST", { ttl_ms: 60_000 }))).status).toBe(409);
    expect((await app.request(`${path}/release`, json("POST", { token }))).status).toBe(200);
    const again = await app.request(`${path}/acquire`, json("POST", { ttl_ms: 60_000, mode: "shared" }));
    expect(again.status).toBe(200);
    expect((await app.request(`${path}/release`, json("POST", { force: true }))).status).toBe(200);
    expect((await app.request(path, json("GET"))).status).toBe(200);
    const limited = await app.request(path, json("GET"));
    expect(limited.status).toBe(429);

    const { status, text } = await scrape(app);
    expect(status).toBe(200);
    const acquire = { route: "/infra/locks/:key/acquire", method: "POST" };
    const release = { route: "/infra/locks/:key/release", method: "POST" };
    const lookup = { route: "/infra/locks/:key", method: "GET" };
    expect(value(text, "lss_http_requests_total", { ...acquire, status: "200" })).toBe(2);
    expect(value(text, "lss_http_requests_total", { ...acquire, status: "409" })).toBe(1);
    expect(value(text, "lss_http_requests_total", { ...release, status: "200" })).toBe(2);
    expect(value(text, "lss_http_requests_total", { ...lookup, status: "200" })).toBe(1);
    expect(value(text, "lss_http_requests_total", { ...lookup, status: "429" })).toBe(1);
    // Every request went to one of these route patterns: no series names a key.
    const series = parse(text).filter((s) => s.name === "lss_http_requests_total");
    expect(series.reduce((n, s) => n + s.value, 0)).toBe(7);

    expect(value(text, "lss_http_request_duration_seconds_count", acquire)).toBe(3);
    expect(value(text, "lss_http_request_duration_seconds_bucket", { ...acquire, le: "+Inf" })).toBe(3);
    expect(value(text, "lss_http_request_duration_seconds_sum", acquire)).toBeGreaterThan(0);

    expect(value(text, "lss_lock_grants_total", { mode: "exclusive" })).toBe(1);
    expect(value(text, "lss_lock_grants_total", { mode: "shared" })).toBe(1);
    expect(value(text, "lss_lock_releases_total")).toBe(1);
    expect(value(text, "lss_lock_forced_releases_total")).toBe(1);
    expect(value(text, "lss_rate_limited_total", { reason: "requests" })).toBe(1);
    expect(value(text, "lss_rate_limited_total", { reason: "failed_auth" })).toBe(0);
    expect(value(text, "lss_lock_waiting_requests")).toBe(0);
    expect(value(text, "lss_lock_handoff_seconds_count")).toBe(0);
    // Nothing of a key, a token or a holder in any series.
    expect(text).not.toContain(key);
    expect(text).not.toContain(token);
    expect(text).not.toContain("runner-42");
    expect(text).not.toContain(ADMIN_TOKEN);
    // Only a Node entry adds the process's metrics (node.ts, vercel.ts).
    expect(text).not.toContain("lss_process_cpu");
  });

  it("expiries as a grant or release writes them to the history, and a retried release once", async () => {
    const app = createApp({
      store: createMemoryStore(),
      rateLimiter: null,
      config: testConfig({ metricsToken: METRICS_TOKEN }),
    });
    const path = pathTo("status", { key: "short-lived" });
    expect((await app.request(`${path}/acquire`, json("POST", { ttl_ms: 50 }))).status).toBe(200);
    await sleep(120);
    expect(value((await scrape(app)).text, "lss_lock_expiries_total")).toBe(0);
    const next = await app.request(`${path}/acquire`, json("POST", { ttl_ms: 60_000, token: "next" }));
    expect(next.status).toBe(200);
    expect(value((await scrape(app)).text, "lss_lock_expiries_total")).toBe(1);
    for (let i = 0; i < 2; i++) {
      expect((await app.request(`${path}/release`, json("POST", { token: "next" }))).status).toBe(200);
    }
    const { text } = await scrape(app);
    expect(value(text, "lss_lock_releases_total")).toBe(1);
    expect(value(text, "lss_lock_expiries_total")).toBe(1);
  });

  it("counts an unknown route once, as unmatched, and a failed-authentication 429 by its reason", async () => {
    // This address is refused even with a good token once blocked: read the metrics directly.
    const metrics = createMetrics();
    const app = createApp({
      metrics,
      store: createMemoryStore(),
      rateLimiter: memoryRateLimiter(100),
      config: testConfig({ metricsToken: METRICS_TOKEN, rateLimitPerMinute: 2 }),
    });
    expect((await app.request("/no/such/thing/7f3a", json("GET"))).status).toBe(404);
    const bad = `lss_0123456789abcdef_${"x".repeat(43)}`;
    const statuses = [];
    for (let i = 0; i < 3; i++)
      statuses.push((await app.request(pathTo("status", { key: "k" }), json("GET", undefined, bad))).status);
    expect(statuses).toEqual([401, 401, 429]);
    const text = await metrics.render();
    expect(value(text, "lss_http_requests_total", { route: "unmatched", method: "GET", status: "404" })).toBe(
      1,
    );
    expect(text).not.toContain("7f3a");
    expect(
      value(text, "lss_http_requests_total", { route: "/infra/locks/:key", method: "GET", status: "401" }),
    ).toBe(2);
    expect(value(text, "lss_rate_limited_total", { reason: "failed_auth" })).toBe(1);
    expect(value(text, "lss_rate_limited_total", { reason: "requests" })).toBe(0);
  });

  it("counts a request once where the app is mounted twice (Vercel serves it at / and /api)", async () => {
    const metrics = createMetrics();
    const app = createApp({ metrics, store: createMemoryStore(), rateLimiter: null, config: testConfig() });
    const vercel = new Hono().route("/api", app).route("/", app);
    expect((await vercel.request("/api/infra/locks/k", json("GET"))).status).toBe(200);
    expect((await vercel.request(pathTo("status", { key: "k" }), json("GET"))).status).toBe(200);
    // No route: both mounts' middleware match it.
    expect((await vercel.request("/api/nothing", json("GET"))).status).toBe(404);
    const text = await metrics.render();
    const ok = { method: "GET", status: "200" };
    expect(value(text, "lss_http_requests_total", { route: "/api/infra/locks/:key", ...ok })).toBe(1);
    expect(value(text, "lss_http_requests_total", { route: "/infra/locks/:key", ...ok })).toBe(1);
    expect(value(text, "lss_http_requests_total", { route: "unmatched", method: "GET", status: "404" })).toBe(
      1,
    );
    expect(parse(text).filter((s) => s.name === "lss_http_requests_total")).toHaveLength(3);
  });

  it("a waiter is a waiting request until a release hands it the key: one handoff observation", async () => {
    const { app } = appOn(createMemoryStore(), testConfig({ metricsToken: METRICS_TOKEN }));
    const path = pathTo("status", { key: "handoff" });
    const holder = (await (
      await app.request(`${path}/acquire`, json("POST", { ttl_ms: 60_000 }))
    ).json()) as {
      token: string;
    };
    const waiter = app.request(
      `${path}/acquire`,
      json("POST", { ttl_ms: 60_000, wait_ms: 10_000, token: "waiter-token-0123456789" }),
    );
    await sleep(100);
    const during = await scrape(app);
    expect(value(during.text, "lss_lock_waiting_requests")).toBe(1);
    expect(value(during.text, "lss_lock_handoff_seconds_count")).toBe(0);

    expect((await app.request(`${path}/release`, json("POST", { token: holder.token }))).status).toBe(200);
    expect((await waiter).status).toBe(200);
    const after = await scrape(app);
    expect(value(after.text, "lss_lock_waiting_requests")).toBe(0);
    expect(value(after.text, "lss_lock_handoff_seconds_count")).toBe(1);
    const seconds = value(after.text, "lss_lock_handoff_seconds_sum") as number;
    expect(seconds).toBeGreaterThan(0);
    expect(seconds).toBeLessThan(1);
    expect(value(after.text, "lss_lock_grants_total", { mode: "exclusive" })).toBe(2);
    expect(value(after.text, "lss_lock_releases_total")).toBe(1);
  });

  it("two waiters: each release hands the key to the next, one observation each", async () => {
    const { app } = appOn(createMemoryStore(), testConfig({ metricsToken: METRICS_TOKEN }));
    const path = pathTo("status", { key: "two" });
    const wait = (token: string) =>
      app.request(`${path}/acquire`, json("POST", { ttl_ms: 60_000, wait_ms: 10_000, token }));
    const holder = await app.request(
      `${path}/acquire`,
      json("POST", { ttl_ms: 60_000, token: "h-0123456789abcdef" }),
    );
    expect(holder.status).toBe(200);
    const first = wait("first-0123456789abcdef");
    await sleep(50);
    const second = wait("second-0123456789abcdef");
    await sleep(50);
    expect(value((await scrape(app)).text, "lss_lock_waiting_requests")).toBe(2);
    // The first waiter's grant reaches the second waiter (an expiry event) before its own answer.
    await app.request(`${path}/release`, json("POST", { token: "h-0123456789abcdef" }));
    expect((await first).status).toBe(200);
    expect(value((await scrape(app)).text, "lss_lock_handoff_seconds_count")).toBe(1);
    await app.request(`${path}/release`, json("POST", { token: "first-0123456789abcdef" }));
    expect((await second).status).toBe(200);
    const { text } = await scrape(app);
    expect(value(text, "lss_lock_handoff_seconds_count")).toBe(2);
    expect(value(text, "lss_lock_waiting_requests")).toBe(0);
  });

  it("a waiter whose window ends, or who is granted a key nobody released, makes no handoff", async () => {
    const { app } = appOn(createMemoryStore(), testConfig({ metricsToken: METRICS_TOKEN }));
    const path = pathTo("status", { key: "patience" });
    expect((await app.request(`${path}/acquire`, json("POST", { ttl_ms: 400 }))).status).toBe(200);
    // Held past the window: 409; then the holder's lease expires while a second waiter waits.
    const short = await app.request(
      `${path}/acquire`,
      json("POST", { ttl_ms: 1000, wait_ms: 100, token: "w1-token-0123456789" }),
    );
    expect(short.status).toBe(409);
    await app.request(`${path}/leave`, json("POST", { token: "w1-token-0123456789" }));
    const expiry = await app.request(
      `${path}/acquire`,
      json("POST", { ttl_ms: 1000, wait_ms: 5000, token: "w2-token-0123456789" }),
    );
    expect(expiry.status).toBe(200);
    const { text } = await scrape(app);
    expect(value(text, "lss_lock_waiting_requests")).toBe(0);
    expect(value(text, "lss_lock_handoff_seconds_count")).toBe(0);
    expect(value(text, "lss_lock_grants_total", { mode: "exclusive" })).toBe(2);
  });
});

describe("handoff is only a release that frees the key", () => {
  it("a waiter that leaves the queue (its client gone) tells the next one it is first: no handoff", async () => {
    const { app } = appOn(createMemoryStore(), testConfig({ metricsToken: METRICS_TOKEN }));
    const path = pathTo("status", { key: "leaving" });
    expect((await app.request(`${path}/acquire`, json("POST", { ttl_ms: 700 }))).status).toBe(200);
    const gone = new AbortController();
    const first = Promise.resolve(
      app.request(`${path}/acquire`, {
        ...json("POST", { ttl_ms: 1000, wait_ms: 5000, token: "gone-token-0123456789" }),
        signal: gone.signal,
      }),
    ).catch(() => null);
    await sleep(50);
    const second = app.request(
      `${path}/acquire`,
      json("POST", { ttl_ms: 1000, wait_ms: 5000, token: "w2-token-0123456789" }),
    );
    await sleep(100);
    expect(value((await scrape(app)).text, "lss_lock_waiting_requests")).toBe(2);
    gone.abort();
    await first;
    await sleep(100);
    expect(value((await scrape(app)).text, "lss_lock_waiting_requests")).toBe(1);
    // The second waiter is first now, and gets the key when the lease expires: nobody released it.
    expect((await second).status).toBe(200);
    const { text } = await scrape(app);
    expect(value(text, "lss_lock_waiting_requests")).toBe(0);
    expect(value(text, "lss_lock_handoff_seconds_count")).toBe(0);
    expect(value(text, "lss_lock_grants_total", { mode: "exclusive" })).toBe(2);
  });
});

/** A memory store whose named methods fail as the store would. */
function failingStore(failures: Partial<Record<keyof LockStore, () => never>>): LockStore {
  const store = createMemoryStore();
  return new Proxy(store, {
    get(target, prop) {
      const fail = failures[prop as keyof LockStore];
      return fail ? async () => fail() : Reflect.get(target, prop, target);
    },
  });
}

describe("store failures", () => {
  const timeout = () => new DOMException("The operation was aborted due to timeout", "TimeoutError");

  it("are counted by operation and kind: unavailable, timeout, outcome_unknown; each answered 503", async () => {
    const store = failingStore({
      acquire: () => {
        throw new StoreUnavailableError(new Error("connect ECONNREFUSED 127.0.0.1:6379"));
      },
      release: () => {
        throw new StoreUnavailableError(new Error("socket hang up"), null, true);
      },
      inspect: () => {
        throw new StoreUnavailableError(timeout());
      },
      renew: () => {
        throw new StoreUnavailableError(new Error("Command timed out"), null, true);
      },
    });
    const { app } = appOn(store, testConfig({ metricsToken: METRICS_TOKEN }));
    const path = pathTo("status", { key: "k" });
    expect((await app.request(`${path}/acquire`, json("POST", { ttl_ms: 1000 }))).status).toBe(503);
    expect((await app.request(`${path}/acquire`, json("POST", { ttl_ms: 1000 }))).status).toBe(503);
    expect((await app.request(`${path}/release`, json("POST", { token: "t-0123456789abcdef" }))).status).toBe(
      503,
    );
    expect((await app.request(path, json("GET"))).status).toBe(503);
    expect(
      (await app.request(`${path}/renew`, json("POST", { token: "t-0123456789abcdef", ttl_ms: 1000 })))
        .status,
    ).toBe(503);

    const { text } = await scrape(app);
    expect(value(text, "lss_store_errors_total", { operation: "acquire", kind: "unavailable" })).toBe(2);
    expect(value(text, "lss_store_errors_total", { operation: "release", kind: "outcome_unknown" })).toBe(1);
    expect(value(text, "lss_store_errors_total", { operation: "inspect", kind: "timeout" })).toBe(1);
    // A write that timed out may have been applied: outcome_unknown, and a timeout all the same.
    expect(value(text, "lss_store_errors_total", { operation: "renew", kind: "outcome_unknown" })).toBe(1);
    expect(value(text, "lss_store_timeouts_total", { operation: "inspect" })).toBe(1);
    expect(value(text, "lss_store_timeouts_total", { operation: "renew" })).toBe(1);
    expect(value(text, "lss_store_timeouts_total", { operation: "acquire" })).toBeUndefined();
    expect(
      value(text, "lss_http_requests_total", {
        route: "/infra/locks/:key/acquire",
        method: "POST",
        status: "503",
      }),
    ).toBe(2);
    expect(value(text, "lss_lock_grants_total", { mode: "exclusive" })).toBe(0);
  });

  it("of the token records count too (tokens.get, while authenticating)", async () => {
    const store = createMemoryStore();
    const tokens = new Proxy(store.tokens, {
      get: (t, prop) =>
        prop === "get"
          ? async () => {
              throw new StoreUnavailableError(new Error("unreachable"));
            }
          : Reflect.get(t, prop, t),
    });
    const broken = new Proxy(store, {
      get: (t, prop) => (prop === "tokens" ? tokens : Reflect.get(t, prop, t)),
    });
    const { app } = appOn(broken, testConfig({ metricsToken: METRICS_TOKEN }));
    const token = `lss_0123456789abcdef_${"y".repeat(43)}`;
    expect((await app.request(pathTo("status", { key: "k" }), json("GET", undefined, token))).status).toBe(
      503,
    );
    const { text } = await scrape(app);
    expect(value(text, "lss_store_errors_total", { operation: "tokens.get", kind: "unavailable" })).toBe(1);
  });
});

describe("instrumentStore", () => {
  it("forwards every method it does not count itself, also ones added later, and counts their failures", async () => {
    const memory = createMemoryStore();
    const metrics = createMetrics();
    const extended = Object.assign(Object.create(memory) as LockStore, {
      future: async (n: number) => n * 2,
      broken: async () => {
        throw new StoreUnavailableError(new Error("down"));
      },
    });
    const store = instrumentStore(extended, metrics) as LockStore & {
      future(n: number): Promise<number>;
      broken(): Promise<never>;
    };
    expect(await store.future(21)).toBe(42);
    await expect(store.broken()).rejects.toBeInstanceOf(StoreUnavailableError);
    expect(store.kind).toBe("memory");
    expect(await store.peek({ namespace: "n", key: "k" })).toBeNull();
    const text = await metrics.render();
    expect(value(text, "lss_store_errors_total", { operation: "broken", kind: "unavailable" })).toBe(1);
  });

  it("tells the reasons of a 429 apart", () => {
    expect(rateLimitReason("rate limit of 6 requests per minute exceeded; retry in 10 s")).toBe("requests");
    expect(rateLimitReason("too many failed authentications from this address; retry in 3 s")).toBe(
      "failed_auth",
    );
    expect(
      rateLimitReason("this caller already has 100 waiting requests open, the most LSS_MAX_WAITS allows"),
    ).toBe("waits");
  });
});
