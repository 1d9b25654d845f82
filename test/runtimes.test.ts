/**
 * One HTTP contract, run where LSS is deployed, each in its own runtime against the Upstash REST
 * bridge (the real @upstash/redis client, a real redis-server behind it):
 * - node: `npm start`'s entry as its own process;
 * - vercel: api/index.ts behind @vercel/node's dev-server, the bridge Vercel's Node.js runtime uses;
 * - workers: server/workers.ts in workerd through `wrangler dev`.
 * Both seed APIs, auth, errors and waiting must behave the same through each.
 */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FALLBACK_PEEK_MS } from "../server/locks/waiting.js";
import { pathTo } from "../src/protocol/paths.js";
import { ADMIN_TOKEN } from "./support/app.js";
import { type OidcIssuer, startOidcIssuer } from "./support/oidc-issuer.js";
import { sleep } from "./support/processes.js";
import { type RedisServerHandle, startRedisServer } from "./support/redis-server.js";
import { type RuntimeKind, type ServerProcess, startServerProcess } from "./support/server-process.js";
import { startUpstashBridge, type UpstashBridge } from "./support/upstash-bridge.js";

const RUNTIMES: RuntimeKind[] = ["node", "vercel", "workers"];

let redis: RedisServerHandle;
let bridge: UpstashBridge;
let issuer: OidcIssuer;
const OIDC_AUDIENCE = "lss-runtimes-test";
const servers = new Map<RuntimeKind, ServerProcess>();

const upstashEnv = () => ({
  UPSTASH_REDIS_REST_URL: bridge.url,
  UPSTASH_REDIS_REST_TOKEN: bridge.token,
  LSS_ADMIN_TOKEN: ADMIN_TOKEN,
  LSS_RATE_LIMIT: "off",
  // The open /locks API in every runtime (Vercel's and Workers' default is bearer).
  LSS_LOCKS_API_AUTH: "open",
  LSS_OIDC_ISSUER: issuer.url,
  LSS_OIDC_AUDIENCE: OIDC_AUDIENCE,
  LSS_OIDC_POLICY: JSON.stringify([
    {
      name: "acme",
      match: { repository_owner_id: "900001" },
      namespace: "default",
      scopes: ["locks:read", "locks:write"],
    },
  ]),
});

beforeAll(async () => {
  redis = await startRedisServer();
  bridge = await startUpstashBridge({ redisUrl: redis.url });
  issuer = await startOidcIssuer();
  await Promise.all(
    RUNTIMES.map(async (kind) => {
      servers.set(kind, await startServerProcess({ ...upstashEnv(), LSS_KEY_PREFIX: `rt-${kind}` }, kind));
    }),
  );
}, 90_000);

afterAll(async () => {
  await Promise.all([...servers.values()].map((s) => s.kill()));
  await bridge?.close();
  await redis?.stop();
  await issuer?.close();
});

interface Reply {
  status: number;
  // biome-ignore lint/suspicious/noExplicitAny: bodies are inspected field by field
  body: any;
  headers: Headers;
}

/** A JSON call to a server; `token: null` sends no Authorization header. */
function client(base: string) {
  return async (
    method: string,
    path: string,
    opts: { body?: unknown; raw?: string; token?: string | null; headers?: Record<string, string> } = {},
  ): Promise<Reply> => {
    const headers: Record<string, string> = { ...opts.headers };
    const token = opts.token === undefined ? ADMIN_TOKEN : opts.token;
    if (token) headers.Authorization = `Bearer ${token}`;
    if (opts.body !== undefined) headers["Content-Type"] ??= "application/json";
    const res = await fetch(`${base}${path}`, {
      method,
      headers,
      body: opts.raw ?? (opts.body === undefined ? undefined : JSON.stringify(opts.body)),
    });
    const text = await res.text();
    let body: unknown = text;
    try {
      body = text ? JSON.parse(text) : null;
    } catch {
      // not JSON: keep the text
    }
    return { status: res.status, body, headers: res.headers };
  };
}

const acquirePath = (key: string) => pathTo("acquire", { key });
const releasePath = (key: string) => pathTo("release", { key });
const renewPath = (key: string) => pathTo("renew", { key });
const statusPath = (key: string) => pathTo("status", { key });

describe.each(RUNTIMES)("on %s", (kind) => {
  const call = (...args: Parameters<ReturnType<typeof client>>) => client(servers.get(kind)!.url)(...args);

  it("says in /health which runtime and store serve it", async () => {
    const health = await call("GET", "/health", { token: null });
    expect(health.status).toBe(200);
    expect(health.body).toMatchObject({
      status: "ok",
      runtime: kind,
      store: "upstash",
      store_reachable: true,
    });
  });

  it("serves the dashboard (sign-in, a signed-in list) and the API reference as HTML", async () => {
    const base = servers.get(kind)!.url;
    for (const path of ["/ui/login", "/docs"]) {
      const page = await fetch(`${base}${path}`);
      expect(page.status, path).toBe(200);
      expect(page.headers.get("content-type"), path).toContain("text/html");
      expect(await page.text(), path).toMatch(/^<!doctype html>/i);
    }
    const signIn = await fetch(`${base}/ui/login`, {
      method: "POST",
      body: new URLSearchParams({ token: ADMIN_TOKEN }),
      redirect: "manual",
    });
    expect(signIn.status).toBe(303);
    const cookie = signIn.headers.get("set-cookie") ?? "";
    expect(cookie).toMatch(/HttpOnly/i);
    const list = await fetch(`${base}/ui`, { headers: { Cookie: cookie.split(";")[0] ?? "" } });
    expect(list.status).toBe(200);
    expect(await list.text()).toContain("Locks in <code>default</code>");
  });

  it("accepts a workflow's OIDC token, verified here (jose against the issuer's keys), held by its verified workflow", async () => {
    const jwt = await issuer.token({ audience: OIDC_AUDIENCE });
    const got = await call("POST", acquirePath(`oidc-${kind}`), {
      token: jwt,
      body: { ttl_ms: 60_000, holder_id: "a name the client makes up" },
    });
    expect(got.status, JSON.stringify(got.body)).toBe(200);
    expect(got.body.holder_id).toMatch(
      /^acme\/webapp · deploy\.yml · .*\/actions\/runs\/4242\/attempts\/1 · octocat$/,
    );
    const elsewhere = await call("POST", acquirePath(`oidc-${kind}`), {
      token: await issuer.token({ audience: "https://another.example" }),
      body: { ttl_ms: 60_000 },
    });
    expect(elsewhere.status).toBe(401);
    expect(elsewhere.body.error.message).toMatch(/audience/);
  });

  it("serves /metrics in Prometheus's text format to an admin token, counting by route pattern", async () => {
    expect((await call("GET", "/metrics", { token: null })).status).toBe(401);
    expect((await call("GET", statusPath("metrics-probe"))).status).toBe(200);
    const res = await call("GET", "/metrics");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(res.body).toContain("# TYPE lss_http_requests_total counter");
    expect(res.body).toMatch(
      /^lss_http_requests_total\{route="\/infra\/locks\/:key",method="GET",status="200"\} [1-9]/m,
    );
    expect(res.body).not.toContain("metrics-probe");
    // The process's own metrics on Node (npm start, Vercel's Node.js runtime); a Worker has none.
    expect(res.body.includes("lss_process_cpu_seconds_total")).toBe(kind !== "workers");
  });

  it("grants, shows, refuses, renews and releases a lease, with fencing tokens that go up", async () => {
    const key = "qa-env";
    const granted = await call("POST", acquirePath(key), {
      body: { ttl_ms: 10_000, holder_id: "e2e", reason: "nightly" },
    });
    expect(granted.status).toBe(200);
    expect(granted.body).toMatchObject({
      status: "ok",
      key,
      locked: true,
      holder_id: "e2e",
      reason: "nightly",
    });
    expect(granted.body.expires_in_ms).toBe(10_000);

    const seen = await call("GET", statusPath(key));
    expect(seen.body).toMatchObject({
      locked: true,
      holder_id: "e2e",
      fencing_token: granted.body.fencing_token,
    });
    expect(JSON.stringify(seen.body)).not.toContain(granted.body.token);

    const refused = await call("POST", acquirePath(key), { body: { ttl_ms: 10_000, holder_id: "deploy" } });
    expect(refused.status).toBe(409);
    expect(refused.body).toMatchObject({ error: { code: "lock_held" }, holder_id: "e2e", reason: "nightly" });

    const renewed = await call("POST", renewPath(key), {
      body: { token: granted.body.token, ttl_ms: 20_000 },
    });
    expect(renewed.status).toBe(200);
    expect(renewed.body.expires_in_ms).toBe(20_000);
    expect(renewed.body.fencing_token).toBe(granted.body.fencing_token);

    expect((await call("POST", releasePath(key), { body: { token: granted.body.token } })).status).toBe(200);
    // A retried release answers 200 again.
    expect((await call("POST", releasePath(key), { body: { token: granted.body.token } })).status).toBe(200);
    expect((await call("GET", statusPath(key))).body).toMatchObject({ locked: false, holder_id: null });

    const next = await call("POST", acquirePath(key), { body: { ttl_ms: 1000 } });
    expect(next.body.fencing_token).toBeGreaterThan(granted.body.fencing_token);
  });

  it("treats a retried acquire with the caller's own token as the same lease", async () => {
    const body = { ttl_ms: 5000, token: `own-token-${kind}` };
    const first = await call("POST", acquirePath("idem"), { body });
    const again = await call("POST", acquirePath("idem"), { body });
    expect([first.status, again.status]).toEqual([200, 200]);
    expect(again.body.fencing_token).toBe(first.body.fencing_token);
  });

  it("serves the Lock State Service API: 423 locked, 204 unlocked, 404 unknown, 401/403 on k", async () => {
    const created = await call("POST", pathTo("createStateLock", {}, { l: "true" }), { token: null });
    expect(created.status).toBe(200);
    const { id, key } = created.body;
    expect(created.body).toMatchObject({ locked: true, lockId: id, lockKey: key, isLocked: true });
    expect((await call("GET", pathTo("stateLock", { id }), { token: null })).status).toBe(423);
    expect((await call("HEAD", pathTo("stateLock", { id }), { token: null })).status).toBe(423);
    expect((await call("PATCH", pathTo("unlockStateLock", { id }), { token: null })).status).toBe(401);
    expect(
      (await call("PATCH", pathTo("unlockStateLock", { id }, { k: "wrong" }), { token: null })).status,
    ).toBe(403);
    expect((await call("PATCH", pathTo("unlockStateLock", { id }, { k: key }), { token: null })).status).toBe(
      204,
    );
    expect((await call("GET", pathTo("stateLock", { id }), { token: null })).status).toBe(204);
    expect(
      (await call("PATCH", pathTo("lockStateLock", { id }, { k: key, e: "60" }), { token: null })).status,
    ).toBe(204);
    // The same lock through the lease API, without its token, by a token of the open API's namespace.
    const reader = (
      await call("POST", pathTo("tokens"), { body: { namespace: "open", scopes: ["locks:read"] } })
    ).body.token;
    const asLease = await call("GET", statusPath(`locks/${id}`), { token: reader });
    expect(asLease.body).toMatchObject({ locked: true });
    expect(asLease.body.expires_in_ms).toBeGreaterThan(50_000);
    expect((await call("GET", pathTo("stateLock", { id: "no-such-lock" }), { token: null })).status).toBe(
      404,
    );
  });

  it("authenticates: 401 without or with an unknown token, 403 without the scope, namespaces apart", async () => {
    const missing = await call("POST", acquirePath("auth"), { body: { ttl_ms: 1000 }, token: null });
    expect(missing.status).toBe(401);
    expect(missing.headers.get("www-authenticate")).toMatch(/^Bearer/);
    const unknown = await call("POST", acquirePath("auth"), {
      body: { ttl_ms: 1000 },
      token: `lss_0123456789abcdef_${"x".repeat(43)}`,
    });
    expect(unknown.status).toBe(401);

    const minted = await call("POST", pathTo("tokens"), {
      body: { namespace: `team-${kind}`, scopes: ["locks:read"], name: "reader" },
    });
    expect(minted.status).toBe(201);
    const reader = minted.body.token as string;
    expect((await call("GET", statusPath("auth"), { token: reader })).status).toBe(200);
    const denied = await call("POST", acquirePath("auth"), { body: { ttl_ms: 1000 }, token: reader });
    expect(denied.status).toBe(403);
    expect(denied.body.error.message).toContain("locks:write");

    // The admin's "auth" (namespace default) is not the team's "auth".
    expect((await call("POST", acquirePath("auth"), { body: { ttl_ms: 5000 } })).status).toBe(200);
    expect((await call("GET", statusPath("auth"), { token: reader })).body.locked).toBe(false);
  });

  it("answers bad input with a clear 4xx in the one error shape, never a 500", async () => {
    const zero = await call("POST", acquirePath("bad"), { body: { ttl_ms: 0 } });
    expect(zero.status).toBe(400);
    expect(zero.body).toMatchObject({ status: "error", error: { code: "bad_request" } });
    expect(zero.body.details).toEqual([expect.objectContaining({ in: "body", field: "ttl_ms" })]);

    const unknownField = await call("POST", acquirePath("bad"), { body: { ttl_ms: 1000, ttll: 5 } });
    expect(unknownField.status).toBe(400);
    expect(unknownField.body.error.message).toContain("ttll");

    const malformed = await call("POST", acquirePath("bad"), {
      raw: "{not json",
      headers: {
        "Content-Type": "application/json",
      },
    });
    expect(malformed.status).toBe(400);

    const text = await call("POST", acquirePath("bad"), {
      raw: "ttl_ms=5",
      headers: { "Content-Type": "text/plain" },
    });
    expect(text.status).toBe(415);
    expect(text.body.error.code).toBe("unsupported_media_type");

    const huge = await call("POST", acquirePath("bad"), {
      body: { ttl_ms: 1000, reason: "x".repeat(20_000) },
    });
    expect(huge.status).toBe(413);

    const nowhere = await call("GET", "/no/such/route");
    expect(nowhere.status).toBe(404);
    expect(nowhere.body.error.code).toBe("not_found");

    // A percent-encoded slash is part of the key.
    const slashed = await call("POST", acquirePath("team/qa"), { body: { ttl_ms: 1000 } });
    expect(slashed.status).toBe(200);
    expect(slashed.body.key).toBe("team/qa");
  });

  /**
   * "At once": woken by the release's event. Without it a waiter would answer only at its next peek
   * (FALLBACK_PEEK_MS) or at the lease's end (30 s); the margin below that is for a busy machine,
   * where the event's round trip through the runtime's bridge has been seen to take 800 ms.
   */
  const AT_ONCE_MS = FALLBACK_PEEK_MS * 0.75;

  it("hands a released lock to the waiting request at once, first come first served", async () => {
    const key = "handoff";
    const holder = await call("POST", acquirePath(key), { body: { ttl_ms: 30_000, holder_id: "first" } });
    expect(holder.status).toBe(200);
    const waitFor = (name: string) =>
      call("POST", acquirePath(key), {
        body: { ttl_ms: 30_000, token: `${name}-${kind}`, holder_id: name, wait_ms: 20_000 },
      }).then((reply) => ({ reply, at: Date.now() }));
    const second = waitFor("second");
    await sleep(200);
    const third = waitFor("third");
    await sleep(300);

    const releasedAt = Date.now();
    expect((await call("POST", releasePath(key), { body: { token: holder.body.token } })).status).toBe(200);
    const got = await second;
    expect(got.reply.status).toBe(200);
    expect(got.reply.body.holder_id).toBe("second");
    expect(got.reply.body.fencing_token).toBeGreaterThan(holder.body.fencing_token);
    expect(got.at - releasedAt).toBeLessThan(AT_ONCE_MS);

    const handedAt = Date.now();
    await call("POST", releasePath(key), { body: { token: `second-${kind}` } });
    const last = await third;
    expect(last.reply.body.holder_id).toBe("third");
    expect(last.at - handedAt).toBeLessThan(AT_ONCE_MS);
    await call("POST", releasePath(key), { body: { token: `third-${kind}` } });
  });

  it("answers a waiter whose wait ends with 409 and its place; a status wait answers when free", async () => {
    const key = "patience";
    const holder = await call("POST", acquirePath(key), { body: { ttl_ms: 30_000 } });
    const waited = await call("POST", acquirePath(key), {
      body: { ttl_ms: 1000, token: `patient-${kind}`, wait_ms: 300 },
    });
    expect(waited.status).toBe(409);
    expect(waited.body.position).toBe(1);
    await call("POST", pathTo("leave", { key }), { body: { token: `patient-${kind}` } });

    const free = call("GET", `${statusPath(key)}?wait_ms=10000`).then((reply) => ({ reply, at: Date.now() }));
    await sleep(300);
    const releasedAt = Date.now();
    await call("POST", releasePath(key), { body: { token: holder.body.token } });
    const seen = await free;
    expect(seen.reply.body.locked).toBe(false);
    expect(seen.at - releasedAt).toBeLessThan(AT_ONCE_MS);
  });
});

describe("the client address serverless runtimes give, for limiting anonymous calls", () => {
  it.each([
    ["vercel", "X-Forwarded-For"],
    ["workers", "CF-Connecting-IP"],
  ] as const)("%s: limits each address on its own (%s)", async (kind, header) => {
    const server = await startServerProcess(
      { ...upstashEnv(), LSS_RATE_LIMIT: "3", LSS_KEY_PREFIX: `rl-${kind}` },
      kind,
    );
    try {
      const create = (address: string) =>
        client(server.url)("POST", pathTo("createStateLock"), {
          token: null,
          headers: { [header]: address },
        });
      for (let i = 0; i < 3; i++) expect((await create("203.0.113.7")).status).toBe(200);
      const limited = await create("203.0.113.7");
      expect(limited.status).toBe(429);
      expect(limited.body.error.code).toBe("rate_limited");
      expect(limited.headers.get("retry-after")).toMatch(/^\d+$/);
      // Another client is not held back by the first one's calls.
      expect((await create("198.51.100.4")).status).toBe(200);
    } finally {
      await server.kill();
    }
  });
});

describe("configuration mistakes", () => {
  /** `npm start`'s entry with env; resolves with its exit code and output once it exits (or is killed). */
  const startNode = (env: Record<string, string>) =>
    new Promise<{ code: number | null; output: string }>((resolve) => {
      const child = spawn(process.execPath, ["--import", "tsx", "server/node.ts"], {
        cwd: fileURLToPath(new URL("..", import.meta.url)),
        env: { PATH: process.env.PATH ?? "", PORT: "0", ...env },
      });
      let output = "";
      child.stdout.on("data", (d) => (output += d));
      child.stderr.on("data", (d) => (output += d));
      const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
      child.on("exit", (code) => {
        clearTimeout(timer);
        resolve({ code, output });
      });
    });

  it("npm start ends at once on a bad variable, with one line naming it and no stack trace", async () => {
    const { code, output } = await startNode({
      UPSTASH_REDIS_REST_URL: "not-a-url",
      UPSTASH_REDIS_REST_TOKEN: "x",
    });
    expect(code).toBe(1);
    expect(output.trim()).toBe("lss: configuration error: UPSTASH_REDIS_REST_URL must be an http(s) URL");
  });

  it("npm start ends at once when Upstash refuses the token, naming UPSTASH_REDIS_REST_TOKEN", async () => {
    const { code, output } = await startNode({ ...upstashEnv(), UPSTASH_REDIS_REST_TOKEN: "not-the-token" });
    expect(code).toBe(1);
    expect(output).toContain(
      "lss: configuration error: Upstash refused the token: check UPSTASH_REDIS_REST_TOKEN",
    );
    expect(output).not.toMatch(/\n\s+at /);
  });

  it("Vercel without a shared store answers every request with one error naming the variables", async () => {
    const server = await startServerProcess({ LSS_ADMIN_TOKEN: ADMIN_TOKEN }, "vercel");
    try {
      const res = await client(server.url)("GET", "/health", { token: null });
      expect(res.status).toBe(500);
      expect(res.body.error).toMatchObject({ code: "misconfigured" });
      expect(res.body.error.message).toContain("UPSTASH_REDIS_REST_URL");
      expect(server.output()).toContain("lss: configuration error:");
      expect(server.output()).not.toMatch(/\n\s+at /); // no stack trace
    } finally {
      await server.kill();
    }
  });

  it("a Worker given REDIS_URL says a Worker needs Upstash", async () => {
    const server = await startServerProcess(
      { REDIS_URL: redis.url, LSS_ADMIN_TOKEN: ADMIN_TOKEN },
      "workers",
    );
    try {
      const res = await client(server.url)("POST", pathTo("createStateLock"), { token: null });
      expect(res.status).toBe(500);
      expect(res.body.error.message).toMatch(/REDIS_URL cannot be used on Cloudflare Workers/);
    } finally {
      await server.kill();
    }
  });

  it("a wrong Upstash token is named in the answer on serverless", async () => {
    const server = await startServerProcess(
      { ...upstashEnv(), UPSTASH_REDIS_REST_TOKEN: "not-the-token" },
      "vercel",
    );
    try {
      const res = await client(server.url)("POST", acquirePath("k"), { body: { ttl_ms: 1000 } });
      expect(res.status).toBe(503);
      expect(res.body.error.message).toContain("UPSTASH_REDIS_REST_TOKEN");
    } finally {
      await server.kill();
    }
  });
});
