/**
 * Fuzz: 10,000 randomized requests per store against `npm start`'s entry running as its own process
 * — any method, paths with odd encodings, every kind of header, JSON bodies of every type, malformed,
 * huge and chunked ones, good and bad tokens. Nothing may answer 5xx but a deliberate 503 (and the
 * store is up, so there should be none), the process must answer afterwards, and its memory must not
 * run away: it runs with a 64 MiB heap, which a leak per request would exhaust. The seed is printed; FUZZ_SEED=<seed> replays a run, FUZZ_RUNS=<n> sets its size.
 */

import { readFileSync } from "node:fs";
import { request } from "node:http";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN_TOKEN } from "./support/app.js";
import { type OidcIssuer, startOidcIssuer } from "./support/oidc-issuer.js";
import { type RedisServerHandle, startRedisServer } from "./support/redis-server.js";
import { type ServerProcess, startServerProcess } from "./support/server-process.js";
import { startUpstashBridge, type UpstashBridge } from "./support/upstash-bridge.js";

const RUNS = Number(process.env.FUZZ_RUNS ?? 10_000);
const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31);
const CONCURRENCY = 16;
/** The server's old-generation heap (MiB) during the run. */
const HEAP_MB = 64;

let redis: RedisServerHandle;
let bridge: UpstashBridge;
let issuer: OidcIssuer;
beforeAll(async () => {
  redis = await startRedisServer();
  bridge = await startUpstashBridge({ redisUrl: redis.url });
  issuer = await startOidcIssuer();
  console.log(`fuzz: seed ${SEED}, ${RUNS} requests per store (FUZZ_SEED=${SEED} replays it)`);
});
afterAll(async () => {
  await bridge?.close();
  await redis?.stop();
  await issuer?.close();
});

interface FuzzRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  /** undefined: no body; string[]: sent in chunks without Content-Length. */
  body?: string | string[];
}

// ------------------------------------------------------------------------------------------------
// What a request may be made of

const pct = (s: string) => encodeURIComponent(s);
const oddKey = fc.oneof(
  fc.constantFrom("qa-env", "a/b", "..", "a..b", ".", "x".repeat(600), "%", "%00", "%zz", "é", "🔒", " ", ""),
  fc.string({ maxLength: 40 }).map(pct),
  fc.string({ unit: "grapheme", maxLength: 20 }).map(pct),
  fc.string({ unit: "binary", maxLength: 10 }).map(pct),
  fc.constantFrom("%2F", "%2e%2e", "a%2Fb", "%C3%28", "%E2%80%AE", "%0A", "%7F", "k%3Fx%3Dy"),
);
const query = fc.oneof(
  fc.constant(""),
  fc.constantFrom("?wait_ms=50", "?wait_ms=-1", "?wait_ms=soon", "?wait_ms=99999999999", "?l=true&e=5"),
  fc.constantFrom("?l=T", "?l=1&e=-3", "?e=1e9", "?k=", "?k=abc", "?k=%00", "?l=yes", "?e=0&l=true"),
  fc.constantFrom("?prefix=qa", "?cursor=%ff", "?cursor=1.1", "?limit=0", "?limit=1000", "?prefix=&limit=1"),
  fc.tuple(fc.string({ maxLength: 8 }), fc.string({ maxLength: 12 })).map(([k, v]) => `?${pct(k)}=${pct(v)}`),
);
/** Origins a request line may name in absolute form (`GET https://vault.example/… HTTP/1.1`). */
const FOREIGN_ORIGINS = ["https://vault.acme.example", "http://evil.example", "http://127.0.0.1:1"];
const path = fc
  .oneof(
    fc
      .tuple(oddKey, fc.constantFrom("acquire", "renew", "release", "leave", "history", "", "nope"))
      .map(([key, op]) => `/infra/locks/${key}${op ? `/${op}` : ""}`),
    fc.tuple(oddKey, fc.constantFrom("", "/lock", "/unlock", "/x")).map(([id, op]) => `/locks/${id}${op}`),
    fc.constantFrom("/locks", "/locks/", "/admin/tokens", "/admin/tokens/0123456789abcdef", "/health"),
    fc.constantFrom("/openapi.json", "/docs", "/", "//", "/infra", "/infra/locks", "/%2e%2e/admin/tokens"),
    // The dashboard and the metrics.
    fc.tuple(oddKey, fc.constantFrom("", "?confirm=force")).map(([key, q]) => `/ui/locks/${key}${q}`),
    fc.constantFrom(
      "/ui",
      "/ui/",
      "/ui/login",
      "/ui/logout",
      "/ui/fragment/locks",
      "/ui/assets/x.js",
      "/metrics",
    ),
    fc.string({ maxLength: 30 }).map((s) => `/${pct(s)}`),
  )
  .chain((p) => query.map((q) => `${p}${q}`))
  .chain((p) =>
    fc.oneof(
      { weight: 9, arbitrary: fc.constant(p) },
      // Absolute form, naming another server's origin: refused with 400 whatever the path.
      { weight: 1, arbitrary: fc.constantFrom(...FOREIGN_ORIGINS).map((origin) => `${origin}${p}`) },
    ),
  );

const latin1 = fc.string({
  unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)),
  maxLength: 60,
});
/** ID tokens of the test's issuer, minted for this server and for other services (filled in beforeAll). */
const idTokens: string[] = [];
/** Those minted for other services: none of them may ever be let through. */
const foreignTokens = new Set<string>();
const token = fc.oneof(
  fc.constant(ADMIN_TOKEN),
  fc
    .nat()
    .map((i) => idTokens[i % Math.max(1, idTokens.length)] ?? "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"),
  fc.constant("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"),
  fc.constant(`lss_0123456789abcdef_${"a".repeat(43)}`),
  fc.constantFrom("lss_", "lss_x_y", "Bearer", "", "null", "admin-token-for-tests-012345678"),
  latin1,
);
const headers = fc.record(
  {
    authorization: fc.oneof(
      token.map((t) => `Bearer ${t}`),
      token.map((t) => `Basic ${t}`),
      token,
      fc.constant("Bearer"),
    ),
    "content-type": fc.constantFrom(
      "application/json",
      "application/json; charset=utf-8",
      "application/vnd.api+json",
      "text/plain",
      "application/x-www-form-urlencoded",
      "multipart/form-data; boundary=x",
      "application/json;;;",
      "",
    ),
    accept: fc.constantFrom("*/*", "text/event-stream", "application/json", "x"),
    "x-forwarded-for": fc.constantFrom("1.2.3.4", "::1", "garbage", ", ,", "1.1.1.1, 2.2.2.2"),
    // Another service's host, as a forged Host header says it.
    host: fc.constantFrom(
      "vault.acme.example",
      "evil.example:443",
      "127.0.0.1",
      "[::1]:80",
      "a..b",
      "x".repeat(300),
    ),
    // The dashboard's session cookie, good and bad, and origins for its forms.
    cookie: fc.oneof(
      token.map((t) => `lss_ui=${encodeURIComponent(t)}`),
      fc.constantFrom("lss_ui=", "lss_ui=%%%", "lss_ui=a; lss_ui=b", "x=y"),
    ),
    origin: fc.constantFrom("http://evil.example", "null", "http://127.0.0.1"),
  },
  { requiredKeys: [] },
);

/** A JSON value of any type, nested, with the fields the API knows mixed in. */
const knownFields = fc.record(
  {
    ttl_ms: fc.oneof(fc.integer(), fc.double(), fc.string(), fc.constant(null), fc.boolean()),
    token: fc.oneof(fc.string({ maxLength: 300 }), fc.integer(), fc.constant(null)),
    holder_id: fc.oneof(fc.string({ unit: "grapheme", maxLength: 300 }), fc.array(fc.string())),
    reason: fc.oneof(fc.string({ maxLength: 600 }), fc.constant("\u202e\u200b")),
    wait_ms: fc.oneof(fc.integer({ min: -5, max: 300 }), fc.constant(10_000_000), fc.string()),
    force: fc.oneof(fc.boolean(), fc.string()),
    namespace: fc.oneof(fc.string({ maxLength: 70 }), fc.constant("ops")),
    scopes: fc.oneof(fc.array(fc.constantFrom("locks:read", "locks:write", "admin", "root")), fc.string()),
  },
  { requiredKeys: [] },
);
const body = fc.oneof(
  { weight: 4, arbitrary: fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)) },
  {
    weight: 6,
    arbitrary: fc
      .tuple(
        knownFields,
        fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 3 }),
      )
      .map(([k, extra]) => JSON.stringify({ ...extra, ...k })),
  },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      "{",
      "[1,",
      '{"ttl_ms":}',
      "nul",
      "\u0000",
      '{"a":1}{"b":2}',
      "\ufeff{}",
      "{'a':1}",
    ),
  },
  {
    weight: 1,
    arbitrary: fc.integer({ min: 17 * 1024, max: 200 * 1024 }).map((n) => `{"reason":"${"x".repeat(n)}"}`),
  },
  { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 200 }) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      "action=hold&duration=1h&reason=fuzz&csrf=x",
      "action=hold&duration=99999d&csrf=",
      "action=release&csrf=%zz",
      "action=force&confirm=yes",
      `token=${ADMIN_TOKEN}`,
      "token=",
      "a=1&a=2&=&&",
    ),
  },
);

const fuzzRequest: fc.Arbitrary<FuzzRequest> = fc.record({
  method: fc.constantFrom(
    "GET",
    "POST",
    "PUT",
    "PATCH",
    "DELETE",
    "HEAD",
    "OPTIONS",
    "TRACE",
    "PROPFIND",
    "BREW",
  ),
  path,
  headers,
  body: fc.option(
    fc.oneof(
      { weight: 5, arbitrary: body },
      { weight: 1, arbitrary: body.map((b) => [b.slice(0, b.length / 2), b.slice(b.length / 2)]) },
    ),
    { nil: undefined, freq: 3 },
  ),
});

// ------------------------------------------------------------------------------------------------

interface Answer {
  status: number;
  code?: string;
}

/** One raw HTTP request (node:http, so that any method and path goes as written). */
function send(base: string, r: FuzzRequest): Promise<Answer | "client-refused"> {
  return new Promise((resolve, reject) => {
    const url = new URL(base);
    let req: ReturnType<typeof request>;
    try {
      const headers = { ...r.headers };
      if (typeof r.body === "string") headers["content-length"] = String(Buffer.byteLength(r.body));
      req = request({
        host: url.hostname,
        port: url.port,
        method: r.method,
        path: r.path,
        headers,
        timeout: 10_000,
      });
    } catch {
      return resolve("client-refused"); // Node would not send it (an invalid path or header)
    }
    req.on("response", (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        let code: string | undefined;
        try {
          code = JSON.parse(Buffer.concat(chunks).toString("utf8"))?.error?.code;
        } catch {
          // not JSON (HEAD, /docs)
        }
        resolve({ status: res.statusCode ?? 0, code });
      });
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error(`no answer within 10 s to ${r.method} ${r.path}`)));
    req.on("error", (err: NodeJS.ErrnoException) => {
      // The server may close a connection on a body it refused (413) before reading all of it.
      if (err.code === "EPIPE" || err.code === "ECONNRESET") resolve({ status: 413, code: "reset" });
      else reject(err);
    });
    if (Array.isArray(r.body)) {
      for (const part of r.body) req.write(part);
      req.end();
    } else req.end(r.body);
  });
}

const rssKb = (pid: number) =>
  Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1]);

describe.each(["memory", "redis", "upstash"] as const)("fuzzing the server on %s", (kind) => {
  let server: ServerProcess;
  beforeAll(async () => {
    server = await startServerProcess((url) => ({
      ...(kind === "redis" ? { REDIS_URL: redis.url } : {}),
      ...(kind === "upstash"
        ? { UPSTASH_REDIS_REST_URL: bridge.url, UPSTASH_REDIS_REST_TOKEN: bridge.token }
        : {}),
      LSS_ADMIN_TOKEN: ADMIN_TOKEN,
      LSS_KEY_PREFIX: `fuzz-${kind}`,
      LSS_RATE_LIMIT: "off",
      LSS_MAX_WAIT_MS: "200",
      LSS_MAX_LOCKS: "2000",
      // A heap this small fails the run (the process dies) if requests leave memory behind; garbage
      // is collected within it. RSS alone would only show how lazily V8 gives memory back.
      NODE_OPTIONS: `--max-old-space-size=${HEAP_MB}`,
      // Workflows' ID tokens too: for this server, and for other services (which must never pass).
      LSS_PUBLIC_URL: url,
      LSS_OIDC_ISSUER: issuer.url,
      LSS_OIDC_POLICY: JSON.stringify([
        {
          name: "acme",
          match: { repository_owner_id: "900001" },
          namespace: "acme",
          scopes: ["locks:read", "locks:write", "locks:force"],
        },
      ]),
    }));
    idTokens.length = 0;
    foreignTokens.clear();
    // Other services' audiences, as their origin (or a forged Host of theirs) would name them.
    const foreign = [...FOREIGN_ORIGINS, "http://vault.acme.example", "http://evil.example:443", "sigstore"];
    idTokens.push(await issuer.token({ audience: server.url }));
    for (const audience of foreign) {
      const jwt = await issuer.token({ audience });
      idTokens.push(jwt);
      foreignTokens.add(jwt);
    }
  });
  afterAll(() => server?.kill());

  it(`answers ${RUNS} random requests without a 5xx, stays up, and its memory stays bounded`, async () => {
    const requests = fc.sample(fuzzRequest, { numRuns: RUNS, seed: SEED });
    const pid = server.pid();
    const statuses = new Map<number, number>();
    const failures: string[] = [];
    let refused = 0;
    let next = 0;
    let rssAtHalf = 0;
    const worker = async () => {
      for (let i = next++; i < requests.length; i = next++) {
        const r = requests[i] as FuzzRequest;
        const answer = await send(server.url, r).catch((err: Error) => ({ status: 0, code: err.message }));
        if (answer === "client-refused") {
          refused++;
          continue;
        }
        statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
        if (answer.status === 0 || answer.status >= 500) {
          failures.push(`#${i} ${r.method} ${r.path} → ${answer.status} ${answer.code ?? ""}`);
        }
        // Whatever else it carries, a request line naming another origin is not served.
        // An ID token minted for another service never opens the lease or admin API.
        const bearer = /^Bearer (\S+)$/.exec(r.headers.authorization ?? "")?.[1];
        if (bearer && foreignTokens.has(bearer) && /^\/(infra|admin)/.test(r.path) && answer.status < 300) {
          failures.push(`#${i} ${r.method} ${r.path} with another service's ID token → ${answer.status}`);
        }
        // (A reset is the server closing on a body it did not read, after its answer.)
        const foreign = FOREIGN_ORIGINS.some((o) => r.path.startsWith(o));
        if (foreign && answer.status !== 400 && answer.code !== "reset") {
          failures.push(`#${i} ${r.method} ${r.path} (absolute form) → ${answer.status}, not 400`);
        }
        if (i === Math.floor(requests.length / 2)) rssAtHalf = rssKb(pid);
      }
    };
    const rssBefore = rssKb(pid);
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    const rssAfter = rssKb(pid);
    console.log(
      `fuzz ${kind}: ${RUNS} requests (${refused} not sendable by Node), statuses ${JSON.stringify(Object.fromEntries(statuses))}; ` +
        `RSS ${Math.round(rssBefore / 1024)} → ${Math.round(rssAtHalf / 1024)} → ${Math.round(rssAfter / 1024)} MiB`,
    );
    expect(failures, `seed ${SEED}: ${failures.slice(0, 10).join("\n")}`).toEqual([]);
    // Still up and serving.
    const health = await fetch(`${server.url}/health`);
    expect(health.status).toBe(200);
    const acquired = await fetch(`${server.url}/infra/locks/after-fuzz/acquire`, {
      method: "POST",
      headers: { Authorization: `Bearer ${ADMIN_TOKEN}`, "Content-Type": "application/json" },
      body: JSON.stringify({ ttl_ms: 1000 }),
    });
    expect(acquired.status).toBe(200);
    // It lived within its small heap all along (the checks above reached it). Its RSS also holds
    // buffers of the large bodies, which the allocator hands back lazily: a loose bound only.
    expect(rssAfter, `RSS ${rssAfter} KiB`).toBeLessThan(512 * 1024);
  }, 240_000);
});
