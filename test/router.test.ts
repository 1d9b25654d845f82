/**
 * The server validates requests with one synchronous middleware per route (routes/router.ts,
 * "merged") instead of @hono/zod-openapi's own ("stock"). This holds the two to the same answers:
 * randomized requests (valid and broken paths, queries, media types and JSON bodies, on every
 * route) go to an app of each, on stores whose clocks stand still, and every answer must be the
 * same: status, content type and body (minus what is random: ids, tokens, times). The seed is
 * printed; ROUTER_SEED replays a run, ROUTER_RUNS sets its size.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { createApp } from "../server/app.js";
import type { Validation } from "../server/routes/router.js";
import { createMemoryStore } from "../server/stores/memory.js";
import { ADMIN_TOKEN, testConfig } from "./support/app.js";

const RUNS = Number(process.env.ROUTER_RUNS ?? 200);
const SEED = Number(process.env.ROUTER_SEED ?? Date.now() % 2 ** 31);
const NOW = Date.parse("2026-12-02T12:00:00.000Z");

const appOf = (validation: Validation) =>
  createApp({
    store: createMemoryStore({ clock: () => NOW }),
    rateLimiter: null,
    validation,
    // wait_ms is cut to 0: nothing waits, so both apps see the same store at each step.
    config: testConfig({ maxWaitMs: 0 }),
  });

interface Probe {
  method: string;
  path: string;
  type?: string;
  body?: string;
  auth: boolean;
}

const pct = (s: string) => encodeURIComponent(s);
const key = fc.oneof(
  fc.constantFrom("qa-env", "a%2Fb", "x".repeat(600), "%zz", "🔒", ""),
  fc.string({ maxLength: 12 }).map(pct),
);
const query = fc.oneof(
  fc.constant(""),
  fc.constantFrom(
    "?wait_ms=50",
    "?wait_ms=-1",
    "?wait_ms=soon",
    "?wait_ms=99999999999",
    "?limit=0",
    "?limit=5",
  ),
  fc.constantFrom(
    "?l=true&e=5",
    "?l=T",
    "?e=1e9",
    "?k=",
    "?k=abcdefgh",
    "?prefix=qa",
    "?cursor=%ff",
    "?cursor=1.1",
  ),
  fc.constantFrom("?wait_ms=1&wait_ms=2", "?limit=2&limit=3", "?k=a&k=b"),
);
const path = fc.oneof(
  fc
    .tuple(key, fc.constantFrom("/acquire", "/renew", "/release", "/leave", "/history", ""))
    .map(([k, op]) => `/infra/locks/${k}${op}`),
  fc.constantFrom("/infra/locks", "/infra/pools/acquire", "/locks", "/admin/tokens", "/health"),
  fc.tuple(key, fc.constantFrom("", "/lock", "/unlock")).map(([id, op]) => `/locks/${id}${op}`),
  fc.constantFrom("/admin/tokens/0123456789abcdef", "/admin/tokens/nope"),
);
const known = fc.record(
  {
    ttl_ms: fc.oneof(
      fc.integer({ min: -5, max: 100_000_000 }),
      fc.double(),
      fc.string({ maxLength: 4 }),
      fc.constant(null),
    ),
    token: fc.oneof(fc.constantFrom("tok-a", "tok-b", ""), fc.string({ maxLength: 300 }), fc.integer()),
    holder_id: fc.oneof(fc.string({ maxLength: 300 }), fc.array(fc.string({ maxLength: 3 }))),
    reason: fc.string({ maxLength: 600 }),
    wait_ms: fc.oneof(fc.integer({ min: -5, max: 400_000 }), fc.string({ maxLength: 3 })),
    mode: fc.constantFrom("shared", "exclusive", "both"),
    limit: fc.oneof(fc.integer({ min: -1, max: 300 }), fc.string({ maxLength: 2 })),
    keys: fc.oneof(fc.array(fc.constantFrom("qa-1", "qa-2", "qa-3", ""), { maxLength: 12 }), fc.string()),
    force: fc.oneof(fc.boolean(), fc.string({ maxLength: 2 })),
    namespace: fc.constantFrom("ops", "Bad NS", ""),
    scopes: fc.oneof(fc.array(fc.constantFrom("locks:read", "locks:write", "root")), fc.string()),
  },
  { requiredKeys: [] },
);
const body = fc.oneof(
  { weight: 6, arbitrary: known.map((b) => JSON.stringify(b)) },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)) },
  {
    weight: 2,
    arbitrary: fc.constantFrom("{", '{"ttl_ms":}', "nul", "", "\ufeff{}", "ttl_ms=5", '{"a":1}{"b":2}'),
  },
);
const probe: fc.Arbitrary<Probe> = fc.record({
  method: fc.constantFrom("GET", "POST", "POST", "POST", "PATCH", "DELETE", "PUT"),
  path: fc.tuple(path, query).map(([p, q]) => `${p}${q}`),
  type: fc.option(
    fc.constantFrom(
      "application/json",
      "application/json; charset=utf-8",
      "application/vnd.api+json",
      "text/plain",
      "application/x-www-form-urlencoded",
      "application/json;;;",
    ),
    { nil: undefined },
  ),
  body: fc.option(body, { nil: undefined }),
  auth: fc.boolean(),
});

/** What may differ between two runs of the same request: generated ids and secrets, the process clock. */
const comparable = (text: string) =>
  text
    .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, "<uuid>")
    .replace(/"(token|k|id)":"[^"]*"/g, '"$1":"<generated>"')
    .replace(/"(key|lockKey)":"[\w-]{24}"/g, '"$1":"<generated>"')
    .replace(/"latency_ms":[\d.]+/g, '"latency_ms":<ms>')
    .replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z/g, "<time>");

async function answer(app: ReturnType<typeof appOf>, p: Probe) {
  const headers: Record<string, string> = {};
  if (p.type) headers["Content-Type"] = p.type;
  if (p.auth) headers.Authorization = `Bearer ${ADMIN_TOKEN}`;
  const body = p.method === "GET" ? undefined : p.body;
  const res = await app.request(p.path, { method: p.method, headers, body });
  return { status: res.status, type: res.headers.get("content-type"), body: comparable(await res.text()) };
}

describe("merged validation answers as @hono/zod-openapi's", () => {
  it("on randomized histories of requests on every route", { timeout: 120_000 }, async () => {
    console.log(`router: seed ${SEED}, ${RUNS} histories (ROUTER_SEED=${SEED} replays it)`);
    const statuses = new Set<number>();
    await fc.assert(
      fc.asyncProperty(fc.array(probe, { minLength: 1, maxLength: 25 }), async (history) => {
        const merged = appOf("merged");
        const stock = appOf("stock");
        for (const [step, p] of history.entries()) {
          const ours = await answer(merged, p);
          statuses.add(ours.status);
          expect(ours, `step ${step}: ${p.method} ${p.path}`).toEqual(await answer(stock, p));
        }
      }),
      { seed: SEED, numRuns: RUNS },
    );
    // The histories reach the answers that matter: grants, refusals of each kind, bad input.
    for (const status of [200, 400, 404, 415]) expect(statuses).toContain(status);
  });

  it("answers the edge cases of media type and body alike", async () => {
    const merged = appOf("merged");
    const stock = appOf("stock");
    const types = [
      undefined,
      "text/plain",
      "application/json",
      "APPLICATION/JSON",
      "application/json; charset=utf-8",
    ];
    const bodies = [undefined, "", '{"ttl_ms":1000}', '{"ttl_ms":-1}', "{", '{"ttl_ms":1000,"extra":1}'];
    for (const type of types) {
      for (const body of bodies) {
        const p = { method: "POST", path: "/infra/locks/k/acquire", auth: true, type, body };
        expect(await answer(merged, p), `${type} ${body}`).toEqual(await answer(stock, p));
      }
    }
  });
});
