/**
 * Bearer auth, scopes, namespaces, token administration and rate limiting, in-process.
 */
import { describe, expect, it, vi } from "vitest";
import { createApp } from "../server/app.js";
import { failedAuthGuard } from "../server/auth/middleware.js";
import { memoryRateLimiter } from "../server/auth/rate-limit.js";
import type { Scope } from "../server/auth/types.js";
import { createMemoryStore } from "../server/stores/memory.js";
import type { LockStore } from "../server/stores/types.js";
import { pathTo } from "../src/protocol/paths.js";
import {
  ADMIN_TOKEN as ADMIN,
  type App,
  type Body,
  expectError,
  type Res,
  request,
  testApp,
  testConfig,
} from "./support/app.js";

/** token: a bearer token, null for no Authorization header, or { header } for a raw header. */
const call = (
  app: App,
  method: string,
  path: string,
  token: string | null | { header: string },
  json?: unknown,
) =>
  request(app, method, path, {
    json,
    auth: typeof token === "string" ? `Bearer ${token}` : token === null ? null : token.header,
    never5xx: true,
  });

interface Minted {
  token: string;
  id: string;
  namespace: string;
  scopes: Scope[];
}

async function mint(app: App, namespace: string, scopes: Scope[], name?: string): Promise<Minted> {
  const res = await call(app, "POST", pathTo("tokens"), ADMIN, {
    namespace,
    scopes,
    ...(name ? { name } : {}),
  });
  expect(res.status, res.text).toBe(201);
  return res.body as Minted;
}

const acquire = (app: App, token: string | null, key: string, body: unknown = { ttl_ms: 30_000 }) =>
  call(app, "POST", pathTo("acquire", { key }), token, body);
const leaseStatus = (app: App, token: string | null, key: string) =>
  call(app, "GET", pathTo("status", { key }), token);

/** The part of a minted token after its id: the actual secret. */
const secretOf = (token: string) => token.split("_").slice(2).join("_");

// ---------------------------------------------------------------------------------------------
describe("bearer authentication", () => {
  const protectedRoutes: Array<[string, string, unknown]> = [
    ["GET", pathTo("status", { key: "k" }), undefined],
    ["POST", pathTo("acquire", { key: "k" }), { ttl_ms: 1000 }],
    ["POST", pathTo("renew", { key: "k" }), { token: "t", ttl_ms: 1000 }],
    ["POST", pathTo("release", { key: "k" }), { token: "t" }],
    ["GET", pathTo("tokens"), undefined],
    ["POST", pathTo("tokens"), { namespace: "a", scopes: ["locks:read"] }],
    ["DELETE", pathTo("token", { id: "0123456789abcdef" }), undefined],
  ];

  it.each(protectedRoutes)(
    "%s %s without Authorization: 401 with WWW-Authenticate",
    async (method, path, json) => {
      const { app } = testApp();
      const res = await call(app, method, path, null, json);
      expectError(res, 401, "unauthorized", /Authorization/);
      expect(res.headers.get("WWW-Authenticate")).toMatch(/^Bearer\b/);
    },
  );

  it.each<[string, string]>([
    ["Bearer nonsense", "Bearer nonsense"],
    ["Basic x", "Basic x"],
    ["Basic with the admin token", `Basic ${ADMIN}`],
    ["Bearer without a token", "Bearer"],
    ["Bearer with two words", `Bearer ${ADMIN} extra`],
    ["the token without a scheme", ADMIN],
    ["an empty-looking well-formed API token", `Bearer lss_0123456789abcdef_${"a".repeat(43)}`],
    ["the admin token with a typo", `Bearer ${ADMIN}x`],
  ])("%s: 401 with WWW-Authenticate naming invalid_token or Bearer", async (_label, header) => {
    const { app } = testApp();
    for (const [method, path, json] of protectedRoutes) {
      const res = await call(app, method, path, { header }, json);
      expectError(res, 401, "unauthorized");
      expect(res.headers.get("WWW-Authenticate")).toMatch(/^Bearer\b/);
    }
  });

  it("an empty Authorization header counts as missing", async () => {
    const { app } = testApp();
    const res = await call(app, "GET", pathTo("status", { key: "k" }), { header: "" });
    expectError(res, 401, "unauthorized", /Authorization/);
  });

  it("the scheme is case-insensitive and surrounding spaces are tolerated", async () => {
    const { app } = testApp();
    const res = await call(app, "GET", pathTo("status", { key: "k" }), { header: `bearer   ${ADMIN}  ` });
    expect(res.status).toBe(200);
  });

  it("no admin token configured: the admin token string is not accepted, nothing is open", async () => {
    const { app } = testApp({ config: { adminToken: null } });
    expectError(await leaseStatus(app, ADMIN, "k"), 401, "unauthorized");
    expectError(await call(app, "GET", pathTo("tokens"), ADMIN), 401, "unauthorized");
  });

  it("the admin token works on every route", async () => {
    const { app } = testApp();
    const got = await acquire(app, ADMIN, "adm", { ttl_ms: 30_000, token: "adm-tok" });
    expect(got.status).toBe(200);
    expect((await leaseStatus(app, ADMIN, "adm")).body.locked).toBe(true);
    const renewed = await call(app, "POST", pathTo("renew", { key: "adm" }), ADMIN, {
      token: "adm-tok",
      ttl_ms: 5000,
    });
    expect(renewed.status).toBe(200);
    const released = await call(app, "POST", pathTo("release", { key: "adm" }), ADMIN, { token: "adm-tok" });
    expect(released.status).toBe(200);
    expect((await call(app, "GET", pathTo("tokens"), ADMIN)).status).toBe(200);
    const minted = await mint(app, "team-a", ["locks:read"]);
    expect((await call(app, "DELETE", pathTo("token", { id: minted.id }), ADMIN)).status).toBe(200);
    const created = await call(app, "POST", pathTo("createStateLock"), ADMIN);
    expect(created.status).toBe(200);
    expect((await call(app, "GET", pathTo("stateLock", { id: created.body.id }), ADMIN)).status).toBe(204);
  });

  it("public routes need no token", async () => {
    const { app } = testApp();
    for (const path of ["/", "/health", "/openapi.json"]) {
      expect((await call(app, "GET", path, null)).status).toBe(200);
    }
  });
});

// ---------------------------------------------------------------------------------------------
describe("admin tokens", () => {
  it("POST /admin/tokens mints {token, id, namespace, scopes}", async () => {
    const { app } = testApp();
    const res = await call(app, "POST", pathTo("tokens"), ADMIN, {
      namespace: "team-a",
      scopes: ["locks:read", "locks:write", "locks:read"],
      name: "ci runner",
    });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({
      status: "ok",
      token: expect.any(String),
      id: expect.stringMatching(/^[0-9a-f]{16}$/),
      namespace: "team-a",
      scopes: ["locks:read", "locks:write"],
      name: "ci runner",
      created_at: expect.any(String),
    });
    expect(res.body.token).toContain(res.body.id);
    expect(secretOf(res.body.token).length).toBeGreaterThanOrEqual(32);
    expect(Number.isNaN(Date.parse(res.body.created_at))).toBe(false);
  });

  it("the minted token works at once", async () => {
    const { app } = testApp();
    const { token } = await mint(app, "team-a", ["locks:read", "locks:write"]);
    expect((await acquire(app, token, "k")).status).toBe(200);
    expect((await leaseStatus(app, token, "k")).body.locked).toBe(true);
  });

  it.each<[string, unknown, string, RegExp]>([
    ['namespace "Bad:NS"', { namespace: "Bad:NS", scopes: ["locks:read"] }, "namespace", /namespace must be/],
    ["an uppercase namespace", { namespace: "Team", scopes: ["locks:read"] }, "namespace", /namespace/],
    [
      "a 64-character namespace",
      { namespace: "a".repeat(64), scopes: ["locks:read"] },
      "namespace",
      /namespace/,
    ],
    ["an empty namespace", { namespace: "", scopes: ["locks:read"] }, "namespace", /namespace/],
    ['namespace "-x"', { namespace: "-x", scopes: ["locks:read"] }, "namespace", /namespace/],
    ["a missing namespace", { scopes: ["locks:read"] }, "namespace", /namespace must be a string/],
    ["scopes []", { namespace: "a", scopes: [] }, "scopes", /scopes must name at least one scope/],
    ['scopes ["nope"]', { namespace: "a", scopes: ["nope"] }, "scopes.0", /scopes must be some of/],
    ["scopes as a string", { namespace: "a", scopes: "locks:read" }, "scopes", /scopes must be an array/],
    ["missing scopes", { namespace: "a" }, "scopes", /scopes must be an array/],
    [
      "a name with a control character",
      { namespace: "a", scopes: ["admin"], name: "x\u0001" },
      "name",
      /name/,
    ],
    ["a 129-character name", { namespace: "a", scopes: ["admin"], name: "n".repeat(129) }, "name", /name/],
    ["an unknown field", { namespace: "a", scopes: ["locks:read"], ttl: 5 }, "", /unknown field.*\bttl\b/],
    ["an array body", [{ namespace: "a", scopes: ["locks:read"] }], "", /JSON object/],
  ])("mint rejects %s: 400 naming the field", async (_label, json, field, message) => {
    const { app, store } = testApp();
    const res = await call(app, "POST", pathTo("tokens"), ADMIN, json);
    expectError(res, 400, "bad_request", message);
    expect(res.body.details).toContainEqual(expect.objectContaining({ in: "body", field }));
    expect(await store.tokens.list()).toEqual([]);
  });

  it("mint with malformed JSON is 400", async () => {
    const { app } = testApp();
    const bad = await app.request(pathTo("tokens"), {
      method: "POST",
      headers: { Authorization: `Bearer ${ADMIN}`, "Content-Type": "application/json" },
      body: "{nope",
    });
    expect(bad.status).toBe(400);
    const body = (await bad.json()) as Body;
    expect(body).toMatchObject({ status: "error", error: { code: "bad_request" } });
    expect(body.error.message).toMatch(/JSON/);
  });

  it.each<[string, string | null]>([
    ["text/plain", "text/plain"],
    ["no Content-Type", null],
  ])("mint with %s is 415 naming Content-Type, as on the lease API", async (_label, type) => {
    const { app, store } = testApp();
    const headers: Record<string, string> = { Authorization: `Bearer ${ADMIN}` };
    if (type) headers["Content-Type"] = type;
    const res = await app.request(pathTo("tokens"), {
      method: "POST",
      headers,
      body: JSON.stringify({ namespace: "a", scopes: ["locks:read"] }),
    });
    expect(res.status).toBe(415);
    const body = (await res.json()) as Body;
    expect(body).toMatchObject({ status: "error", error: { code: "unsupported_media_type" } });
    expect(await store.tokens.list()).toEqual([]);
    expect(body.error.message).toMatch(/Content-Type/);
  });

  it("GET /admin/tokens lists tokens without their secrets", async () => {
    const { app } = testApp();
    const a = await mint(app, "team-a", ["locks:read"], "reader");
    const b = await mint(app, "team-b", ["locks:write", "admin"]);
    const res = await call(app, "GET", pathTo("tokens"), ADMIN);
    expect(res.status).toBe(200);
    expect(res.body.status).toBe("ok");
    expect(res.body.tokens).toEqual([
      {
        id: a.id,
        namespace: "team-a",
        scopes: ["locks:read"],
        name: "reader",
        created_at: expect.any(String),
      },
      {
        id: b.id,
        namespace: "team-b",
        scopes: ["locks:write", "admin"],
        name: null,
        created_at: expect.any(String),
      },
    ]);
    for (const minted of [a, b]) {
      expect(res.text).not.toContain(minted.token);
      expect(res.text).not.toContain(secretOf(minted.token));
    }
    expect(res.text).not.toMatch(/secret|hash|"token"/i);
  });

  it("the stored record holds only a hash of the secret", async () => {
    const { app, store } = testApp();
    const minted = await mint(app, "team-a", ["locks:read"]);
    const record = await store.tokens.get(minted.id);
    expect(record).not.toBeNull();
    if (!record) return;
    expect(record.id).toBe(minted.id);
    expect(record.secretHash).not.toBe(minted.token);
    expect(record.secretHash).not.toBe(secretOf(minted.token));
    expect(record.secretHash).toMatch(/^[0-9a-f]{64}$/);
    const secret = secretOf(minted.token);
    for (const [field, value] of Object.entries(record)) {
      const text = JSON.stringify(value);
      expect(text, field).not.toContain(minted.token);
      expect(text, field).not.toContain(secret);
    }
  });

  it("DELETE /admin/tokens/:id revokes: the next request with it is 401; a second DELETE is 404", async () => {
    const { app } = testApp();
    const minted = await mint(app, "team-a", ["locks:read"]);
    expect((await leaseStatus(app, minted.token, "k")).status).toBe(200);
    const res = await call(app, "DELETE", pathTo("token", { id: minted.id }), ADMIN);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ status: "ok", id: minted.id, revoked: true });
    const after = await leaseStatus(app, minted.token, "k");
    expectError(after, 401, "unauthorized", /revoked|unknown/);
    expect(after.headers.get("WWW-Authenticate")).toMatch(/invalid_token/);
    expectError(
      await call(app, "DELETE", pathTo("token", { id: minted.id }), ADMIN),
      404,
      "not_found",
      minted.id,
    );
    const list = await call(app, "GET", pathTo("tokens"), ADMIN);
    expect(list.body.tokens).toEqual([]);
  });

  it("revoking one token leaves the others working", async () => {
    const { app } = testApp();
    const a = await mint(app, "team-a", ["locks:read"]);
    const b = await mint(app, "team-a", ["locks:read"]);
    expect((await call(app, "DELETE", pathTo("token", { id: a.id }), ADMIN)).status).toBe(200);
    expect((await leaseStatus(app, a.token, "k")).status).toBe(401);
    expect((await leaseStatus(app, b.token, "k")).status).toBe(200);
  });

  it("DELETE of an unknown id is 404 naming it", async () => {
    const { app } = testApp();
    expectError(
      await call(app, "DELETE", pathTo("token", { id: "0123456789abcdef" }), ADMIN),
      404,
      "not_found",
      "0123456789abcdef",
    );
  });

  it.each(["zz", "0123456789ABCDEF", "0123456789abcde", "0123456789abcdef0", "lss_0123456789abcdef"])(
    "DELETE of a malformed id %j is 400 naming the id",
    async (id) => {
      const { app } = testApp();
      const res = await call(app, "DELETE", pathTo("token", { id }), ADMIN);
      expectError(res, 400, "bad_request", /token id/);
      expect(res.body.details).toContainEqual(expect.objectContaining({ in: "path parameter", field: "id" }));
    },
  );

  it("a token with another secret but a real id is refused", async () => {
    const { app } = testApp();
    const minted = await mint(app, "team-a", ["locks:read"]);
    const forged = `lss_${minted.id}_${"A".repeat(43)}`;
    expectError(await leaseStatus(app, forged, "k"), 401, "unauthorized");
  });
});

// ---------------------------------------------------------------------------------------------
describe("scopes", () => {
  it("a locks:read token gets 403 naming locks:write on acquire, renew, release; 200 on status", async () => {
    const { app } = testApp();
    const { token } = await mint(app, "team-a", ["locks:read"]);
    for (const [op, json] of [
      ["acquire", { ttl_ms: 1000 }],
      ["renew", { token: "t", ttl_ms: 1000 }],
      ["release", { token: "t" }],
    ] as const) {
      const res = await call(app, "POST", `/infra/locks/k/${op}`, token, json);
      expectError(res, 403, "forbidden", /locks:write/);
    }
    const st = await leaseStatus(app, token, "k");
    expect(st.status).toBe(200);
    expect(st.body).toMatchObject({ status: "ok", key: "k", locked: false });
  });

  it("a locks:write token can acquire, renew and release", async () => {
    const { app } = testApp();
    const { token } = await mint(app, "team-a", ["locks:write"]);
    expect((await acquire(app, token, "w", { ttl_ms: 1000, token: "lease" })).status).toBe(200);
    expect(
      (await call(app, "POST", pathTo("renew", { key: "w" }), token, { token: "lease", ttl_ms: 1000 }))
        .status,
    ).toBe(200);
    expect((await call(app, "POST", pathTo("release", { key: "w" }), token, { token: "lease" })).status).toBe(
      200,
    );
  });

  it("a locks:write token without locks:read cannot read status (403 naming locks:read)", async () => {
    const { app } = testApp();
    const { token } = await mint(app, "team-a", ["locks:write"]);
    expectError(await leaseStatus(app, token, "k"), 403, "forbidden", /locks:read/);
  });

  it("a scope check happens before body validation (no information for callers without the scope)", async () => {
    const { app } = testApp();
    const { token } = await mint(app, "team-a", ["locks:read"]);
    expectError(await acquire(app, token, "k", { ttl_ms: "bad" }), 403, "forbidden", /locks:write/);
  });

  it.each<[string, string, unknown]>([
    ["GET", pathTo("tokens"), undefined],
    ["POST", pathTo("tokens"), { namespace: "team-a", scopes: ["admin"] }],
    ["DELETE", pathTo("token", { id: "0123456789abcdef" }), undefined],
  ])("a non-admin token gets 403 naming admin on %s %s", async (method, path, json) => {
    const { app, store } = testApp();
    const { token } = await mint(app, "team-a", ["locks:read", "locks:write"]);
    const res = await call(app, method, path, token, json);
    expectError(res, 403, "forbidden", /\badmin\b/);
    expect(await store.tokens.list()).toHaveLength(1);
  });

  it("a minted admin token can mint and revoke", async () => {
    const { app } = testApp();
    const { token } = await mint(app, "ops", ["admin"]);
    const res = await call(app, "POST", pathTo("tokens"), token, {
      namespace: "team-c",
      scopes: ["locks:read"],
    });
    expect(res.status).toBe(201);
    expect((await call(app, "DELETE", pathTo("token", { id: res.body.id }), token)).status).toBe(200);
  });
});

// ---------------------------------------------------------------------------------------------
describe("namespaces", () => {
  it("a key held in team-a is free in team-b, and team-b can acquire the same name independently", async () => {
    const { app } = testApp();
    const a = await mint(app, "team-a", ["locks:read", "locks:write"]);
    const b = await mint(app, "team-b", ["locks:read", "locks:write"]);

    const heldA = await acquire(app, a.token, "deploy", { ttl_ms: 30_000, holder_id: "a-worker" });
    expect(heldA.status).toBe(200);
    expect((await leaseStatus(app, a.token, "deploy")).body).toMatchObject({
      locked: true,
      holder_id: "a-worker",
    });
    expect((await leaseStatus(app, b.token, "deploy")).body).toMatchObject({
      locked: false,
      holder_id: null,
    });

    const heldB = await acquire(app, b.token, "deploy", { ttl_ms: 30_000, holder_id: "b-worker" });
    expect(heldB.status).toBe(200);
    expect((await leaseStatus(app, a.token, "deploy")).body.holder_id).toBe("a-worker");
    expect((await leaseStatus(app, b.token, "deploy")).body.holder_id).toBe("b-worker");

    // team-b cannot release team-a's lease even with its token.
    const cross = await call(app, "POST", pathTo("release", { key: "deploy" }), b.token, {
      token: heldA.body.token,
    });
    expect(cross.status).toBe(409);
    expect((await leaseStatus(app, a.token, "deploy")).body.locked).toBe(true);
  });

  it("two tokens of the same namespace share its keys", async () => {
    const { app } = testApp();
    const a1 = await mint(app, "team-a", ["locks:read", "locks:write"]);
    const a2 = await mint(app, "team-a", ["locks:read"]);
    expect((await acquire(app, a1.token, "shared")).status).toBe(200);
    expect((await leaseStatus(app, a2.token, "shared")).body.locked).toBe(true);
  });

  it("the admin token acts in the default namespace, apart from minted namespaces", async () => {
    const { app } = testApp();
    const a = await mint(app, "team-a", ["locks:read", "locks:write"]);
    expect((await acquire(app, ADMIN, "k")).status).toBe(200);
    expect((await leaseStatus(app, a.token, "k")).body.locked).toBe(false);
  });
});

// ---------------------------------------------------------------------------------------------
describe("/locks API in bearer mode", () => {
  const bearer = { config: { locksApiAuth: "bearer" as const } };

  it.each<[string, string]>([
    ["POST", pathTo("createStateLock")],
    ["GET", pathTo("stateLock", { id: "abc" })],
    ["PATCH", pathTo("lockStateLock", { id: "abc" }, { k: "x" })],
    ["PATCH", pathTo("unlockStateLock", { id: "abc" }, { k: "x" })],
  ])("%s %s without a token is 401 with WWW-Authenticate", async (method, path) => {
    const { app } = testApp(bearer);
    const res = await call(app, method, path, null);
    expectError(res, 401, "unauthorized", /Authorization/);
    expect(res.headers.get("WWW-Authenticate")).toMatch(/^Bearer\b/);
  });

  it("a read-only token can GET but not create, lock or unlock (403)", async () => {
    const { app } = testApp(bearer);
    const writer = await mint(app, "team-a", ["locks:write"]);
    const reader = await mint(app, "team-a", ["locks:read"]);
    const created = await call(app, "POST", pathTo("createStateLock", {}, { k: "key1" }), writer.token);
    expect(created.status).toBe(200);
    const { id } = created.body;
    expect((await call(app, "GET", pathTo("stateLock", { id }), reader.token)).status).toBe(204);
    expectError(
      await call(app, "POST", pathTo("createStateLock"), reader.token),
      403,
      "forbidden",
      /locks:write/,
    );
    expectError(
      await call(app, "PATCH", pathTo("lockStateLock", { id }, { k: "key1" }), reader.token),
      403,
      "forbidden",
      /locks:write/,
    );
    expectError(
      await call(app, "PATCH", pathTo("unlockStateLock", { id }, { k: "key1" }), reader.token),
      403,
      "forbidden",
      /locks:write/,
    );
    expect((await call(app, "GET", pathTo("stateLock", { id }), reader.token)).status).toBe(204);
    expectError(
      await call(app, "GET", pathTo("stateLock", { id }), writer.token),
      403,
      "forbidden",
      /locks:read/,
    );
  });

  it("locks of one namespace are unknown (404) to another", async () => {
    const { app } = testApp(bearer);
    const a = await mint(app, "team-a", ["locks:read", "locks:write"]);
    const b = await mint(app, "team-b", ["locks:read", "locks:write"]);
    const created = await call(app, "POST", pathTo("createStateLock", {}, { l: "1", k: "ka" }), a.token);
    expect(created.status).toBe(200);
    expect((await call(app, "GET", pathTo("stateLock", { id: created.body.id }), a.token)).status).toBe(423);
    expectError(
      await call(app, "GET", pathTo("stateLock", { id: created.body.id }), b.token),
      404,
      "not_found",
    );
    expectError(
      await call(app, "PATCH", pathTo("unlockStateLock", { id: created.body.id }, { k: "ka" }), b.token),
      404,
      "not_found",
    );
    expect((await call(app, "GET", pathTo("stateLock", { id: created.body.id }), a.token)).status).toBe(423);
  });

  it("in open mode the /locks API needs no token", async () => {
    const { app } = testApp();
    const created = await call(app, "POST", pathTo("createStateLock"), null);
    expect(created.status).toBe(200);
    expect((await call(app, "GET", pathTo("stateLock", { id: created.body.id }), null)).status).toBe(204);
  });
});

// ---------------------------------------------------------------------------------------------
describe("rate limiting", () => {
  function expectLimited(res: Res) {
    expectError(res, 429, "rate_limited", /rate limit/);
    const retryAfter = res.headers.get("Retry-After");
    expect(retryAfter).toMatch(/^\d+$/);
    expect(Number(retryAfter)).toBeGreaterThanOrEqual(1);
    expect(Number(retryAfter)).toBeLessThanOrEqual(60);
    expect(res.body.retry_after_seconds).toBe(Number(retryAfter));
  }

  it("the 4th request in a minute by the same token is 429 with Retry-After; another token is not affected", async () => {
    const { app } = testApp({ rateLimiter: memoryRateLimiter(3) });
    const a = await mint(app, "team-a", ["locks:read"]); // the admin's 1st request
    const b = await mint(app, "team-a", ["locks:read"]); // the admin's 2nd request
    for (let i = 0; i < 3; i++) {
      const res = await leaseStatus(app, a.token, "k");
      expect(res.status).toBe(200);
      expect(res.headers.get("RateLimit-Limit")).toBe("3");
      expect(res.headers.get("RateLimit-Remaining")).toBe(String(2 - i));
    }
    expectLimited(await leaseStatus(app, a.token, "k"));
    expectLimited(await acquire(app, a.token, "k"));
    expect((await leaseStatus(app, b.token, "k")).status).toBe(200);
    expect((await call(app, "GET", pathTo("tokens"), ADMIN)).status).toBe(200); // the admin's 3rd
    expectLimited(await call(app, "GET", pathTo("tokens"), ADMIN));
  });

  it("a limited acquire takes nothing", async () => {
    const { app } = testApp({ rateLimiter: memoryRateLimiter(3) });
    const a = await mint(app, "team-a", ["locks:read", "locks:write"]);
    const b = await mint(app, "team-a", ["locks:read"]);
    for (let i = 0; i < 3; i++) expect((await leaseStatus(app, a.token, "k")).status).toBe(200);
    expectLimited(await acquire(app, a.token, "limited"));
    expect((await leaseStatus(app, b.token, "limited")).body.locked).toBe(false);
  });

  it("anonymous /locks calls are limited too (same address in-process)", async () => {
    const { app } = testApp({ rateLimiter: memoryRateLimiter(3) });
    for (let i = 0; i < 3; i++)
      expectError(await call(app, "GET", pathTo("stateLock", { id: "abc" }), null), 404, "not_found");
    expectLimited(await call(app, "GET", pathTo("stateLock", { id: "abc" }), null));
    expectLimited(await call(app, "POST", pathTo("createStateLock"), null));
    expectLimited(await call(app, "PATCH", pathTo("lockStateLock", { id: "abc" }, { k: "x" }), null));
    // A token-holder on the lease API is counted apart from the anonymous address.
    expect((await leaseStatus(app, ADMIN, "k")).status).toBe(200);
  });

  it.each<[string, string, string | null]>([
    ["POST", pathTo("createStateLock"), null],
    ["GET", pathTo("stateLock", { id: "abc" }), null],
    ["PATCH", pathTo("lockStateLock", { id: "abc" }, { k: "x" }), null],
    ["GET", pathTo("status", { key: "k" }), ADMIN],
    ["GET", pathTo("tokens"), ADMIN],
  ])("%s %s counts as exactly one request", async (method, path, token) => {
    const { app } = testApp({ rateLimiter: memoryRateLimiter(5) });
    const res = await call(app, method, path, token);
    expect(res.headers.get("RateLimit-Limit")).toBe("5");
    expect(res.headers.get("RateLimit-Remaining")).toBe("4");
  });

  it("a create, a check and a lock on /locks are three requests, not four", async () => {
    const { app } = testApp({ rateLimiter: memoryRateLimiter(3) });
    const created = await call(app, "POST", pathTo("createStateLock"), null);
    expect(created.status).toBe(200);
    expect((await call(app, "GET", pathTo("stateLock", { id: created.body.id }), null)).status).toBe(204);
    const locked = await call(
      app,
      "PATCH",
      pathTo("lockStateLock", { id: created.body.id }, { k: created.body.key }),
      null,
    );
    expect(locked.status, locked.text).toBe(204);
    expectLimited(await call(app, "GET", pathTo("stateLock", { id: created.body.id }), null));
  });

  it("without a rate limiter nothing is limited", async () => {
    const { app } = testApp();
    for (let i = 0; i < 20; i++) expect((await leaseStatus(app, ADMIN, "k")).status).toBe(200);
  });
});

describe("forced release (an operator, deliberately)", () => {
  it("is what a locks:force token is for, and all it may do", async () => {
    const { app } = testApp();
    const writer = await mint(app, "default", ["locks:write"]);
    const operator = await mint(app, "default", ["locks:force"]);
    expect(
      (await call(app, "POST", pathTo("acquire", { key: "stuck" }), writer.token, { ttl_ms: 600_000 }))
        .status,
    ).toBe(200);
    // Before: 403 "lacks the locks:write scope", although forcing is what locks:force is for.
    const forced = await call(app, "POST", pathTo("release", { key: "stuck" }), operator.token, {
      force: true,
    });
    expect(forced.status, JSON.stringify(forced.body)).toBe(200);
    // Its own release with a token, and taking a lock, still need locks:write.
    expectError(
      await call(app, "POST", pathTo("release", { key: "stuck" }), operator.token, { token: "any" }),
      403,
      "forbidden",
      /lacks the locks:write scope/,
    );
    expectError(
      await call(app, "POST", pathTo("acquire", { key: "stuck" }), operator.token, { ttl_ms: 1000 }),
      403,
      "forbidden",
      /locks:write/,
    );
  });

  it("frees a lease held with someone else's token for admin tokens only", async () => {
    const { app } = testApp();
    const writer = await mint(app, "default", ["locks:read", "locks:write"]);
    const held = await call(app, "POST", pathTo("acquire", { key: "qa-env" }), writer.token, {
      ttl_ms: 600_000,
      token: "qa-team-secret",
      holder_id: "qa-team",
    });
    expect(held.status).toBe(200);

    const denied = await call(app, "POST", pathTo("release", { key: "qa-env" }), writer.token, {
      force: true,
    });
    expectError(denied, 403, "forbidden", /admin/);
    expect((await call(app, "GET", pathTo("status", { key: "qa-env" }), writer.token)).body.locked).toBe(
      true,
    );

    const forced = await call(app, "POST", pathTo("release", { key: "qa-env" }), ADMIN, { force: true });
    expect(forced.status).toBe(200);
    expect((await call(app, "GET", pathTo("status", { key: "qa-env" }), writer.token)).body.locked).toBe(
      false,
    );
    // Nothing left to force: 409 not_held, not a silent success.
    expectError(
      await call(app, "POST", pathTo("release", { key: "qa-env" }), ADMIN, { force: true }),
      409,
      "not_held",
    );
  });
});

describe("what unauthenticated traffic costs the store", () => {
  /** A memory store that counts its token lookups and pings. */
  function counted() {
    const store = createMemoryStore();
    const counts = { lookups: 0, pings: 0 };
    const spied: LockStore = {
      ...store,
      tokens: {
        ...store.tokens,
        get: (id) => {
          counts.lookups++;
          return store.tokens.get(id);
        },
      },
      ping: () => {
        counts.pings++;
        return store.ping();
      },
    };
    return { store: spied, counts };
  }
  const config = testConfig();
  const madeUp = (n: number) => `lss_${n.toString(16).padStart(16, "0")}_${"x".repeat(43)}`;

  it("a made-up token is looked up once per cache period, not once per request", async () => {
    const { store, counts } = counted();
    const app = createApp({ store, rateLimiter: null, config });
    for (let i = 0; i < 5; i++) {
      const res = await app.request(pathTo("status", { key: "k" }), {
        headers: { Authorization: `Bearer ${madeUp(1)}` },
      });
      expect(res.status).toBe(401);
    }
    expect(counts.lookups).toBe(1);
  });

  it("an address past its failed authentications is refused before any lookup", async () => {
    const { store, counts } = counted();
    const app = createApp({
      store,
      rateLimiter: memoryRateLimiter(3),
      config: { ...config, rateLimitPerMinute: 3 },
    });
    const statuses = [];
    for (let i = 0; i < 5; i++) {
      const res = await app.request(pathTo("status", { key: "k" }), {
        headers: { Authorization: `Bearer ${madeUp(i)}` },
      });
      statuses.push(res.status);
    }
    expect(statuses).toEqual([401, 401, 401, 429, 429]);
    expect(counts.lookups).toBe(3);
  });

  it("an address past its failed authentications still takes the valid tokens it can verify without a lookup", async () => {
    const { store, counts } = counted();
    const app = createApp({
      store,
      rateLimiter: memoryRateLimiter(50),
      config: { ...config, rateLimitPerMinute: 3 },
    });
    // A colleague behind the same NAT (every in-process request has the same address) uses a token.
    const colleague = await mint(app, "default", ["locks:read"]);
    const as = (token: string) =>
      app.request(pathTo("status", { key: "k" }), { headers: { Authorization: `Bearer ${token}` } });
    expect((await as(colleague.token)).status).toBe(200);
    for (let i = 0; i < 4; i++) await as(madeUp(100 + i));
    const lookups = counts.lookups;
    // Before: 429 for every token from the address, the colleague's and the admin's too.
    expect((await as(colleague.token)).status).toBe(200);
    expect((await as(ADMIN)).status).toBe(200);
    // Made-up tokens are still refused before any lookup.
    expect((await as(madeUp(200))).status).toBe(429);
    expect(counts.lookups).toBe(lookups);
  });

  it("keeps a real token's record however many made-up ids come (before: 10,001 emptied the cache)", async () => {
    const { store, counts } = counted();
    const app = createApp({ store, rateLimiter: null, config });
    const real = await mint(app, "default", ["locks:read"]);
    const as = (token: string) =>
      app.request(pathTo("status", { key: "k" }), { headers: { Authorization: `Bearer ${token}` } });
    expect((await as(real.token)).status).toBe(200);
    for (let i = 0; i < 10_050; i++) await as(madeUp(1000 + i));
    const lookups = counts.lookups;
    expect((await as(real.token)).status).toBe(200);
    expect(counts.lookups).toBe(lookups);
  });

  it("remembers at most 10,000 addresses, and an address it blocks stays blocked as others come", () => {
    const guard = failedAuthGuard(2);
    const now = Date.now();
    guard.failed("10.0.0.1", now);
    guard.failed("10.0.0.1", now);
    expect(guard.blockedFor("10.0.0.1", now)).toBe(60);
    // Before: the 10,001st address cleared every counter, the blocked ones too.
    for (let i = 0; i < 12_000; i++) guard.failed(`192.168.${i >> 8}.${i & 255}`, now + 1);
    expect(guard.size()).toBe(10_000);
    expect(guard.blockedFor("10.0.0.1", now + 2)).toBeGreaterThan(0);
    expect(guard.blockedFor("10.0.0.1", now + 60_000)).toBe(0);
  });

  it("/health asks the store at most once a second, however often it is asked", async () => {
    const { store, counts } = counted();
    const app = createApp({ store, rateLimiter: null, config });
    const answers = await Promise.all(Array.from({ length: 10 }, () => app.request("/health")));
    for (const res of await Promise.all(answers.map((r) => r.json() as Promise<{ status: string }>))) {
      expect(res.status).toBe("ok");
    }
    expect(counts.pings).toBe(1);
  });

  it("/openapi.json is built once", async () => {
    const app = createApp({ store: createMemoryStore(), rateLimiter: null, config });
    const build = vi.spyOn(app, "getOpenAPIDocument");
    const first = await (await app.request("/openapi.json")).json();
    const second = await (await app.request("/openapi.json")).json();
    expect(second).toEqual(first);
    expect(build).toHaveBeenCalledTimes(1);
  });
});
