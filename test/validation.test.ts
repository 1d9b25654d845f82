/**
 * Every validation rule of the lease API document, the /locks API document and the server's own
 * limits: each rejection has its exact 4xx status, its error code, the one error shape, and a
 * message that names the field. No request in this file may ever get a 5xx.
 */
import { describe, expect, it } from "vitest";
import {
  ADMIN_TOKEN as ADMIN,
  type App,
  type AppConfig,
  expectError,
  type RequestOptions,
  request,
  testApp,
  testConfig,
} from "./support/app.js";
import { sleep } from "./support/processes.js";

const MAX_TTL = testConfig().maxTtlMs;

/** An app on a new memory store, with the tests' config and these overrides. */
const newApp = (overrides: Partial<AppConfig> = {}): App => testApp({ config: overrides }).app;

/** One in-process request, the admin's by default. Asserts that no request ever gets a 5xx. */
const call = (app: App, method: string, path: string, opts: RequestOptions = {}) =>
  request(app, method, path, { ...opts, never5xx: true });

const enc = encodeURIComponent;
const leasePath = (key: string, op?: "acquire" | "renew" | "release") =>
  `/infra/locks/${key}${op ? `/${op}` : ""}`;

async function acquire(app: App, key: string, json: unknown = { ttl_ms: 60_000 }) {
  return call(app, "POST", leasePath(enc(key), "acquire"), { json });
}

async function status(app: App, key: string) {
  const res = await call(app, "GET", leasePath(enc(key)));
  expect(res.status).toBe(200);
  return res.body;
}

// ---------------------------------------------------------------------------------------------
describe("lease key (path parameter)", () => {
  it("an empty key matches no route: 404 JSON error", async () => {
    const app = newApp();
    for (const [method, path] of [
      ["POST", "/infra/locks//acquire"],
      ["POST", "/infra/locks//renew"],
      ["POST", "/infra/locks//release"],
      ["GET", "/infra/locks/"],
    ] as const) {
      const res = await call(app, method, path, method === "POST" ? { json: { ttl_ms: 1000 } } : {});
      expectError(res, 404, "not_found", /no route/);
    }
  });

  it.each([
    ["512 ASCII characters", "a".repeat(512)],
    ["512 two-byte characters", "é".repeat(512)],
    ["unicode", "ключ-🔒-鍵"],
    ["colons and spaces", "invoice:ord_123 eu west"],
    ["a single dot", "a.b"],
    ["percent sign", "100%"],
  ])("accepts %s and reports the key as sent", async (_label, key) => {
    const app = newApp();
    const res = await acquire(app, key);
    expect(res.status).toBe(200);
    expect(res.body.key).toBe(key);
    expect((await status(app, key)).locked).toBe(true);
  });

  it("a%2Fb is the key 'a/b' (an encoded slash does not split the path)", async () => {
    const app = newApp();
    const res = await call(app, "POST", "/infra/locks/a%2Fb/acquire", { json: { ttl_ms: 1000 } });
    expect(res.status).toBe(200);
    expect(res.body.key).toBe("a/b");
    const st = await call(app, "GET", "/infra/locks/a%2Fb");
    expect(st.body).toMatchObject({ status: "ok", key: "a/b", locked: true });
    // An unencoded slash is a different path, which no route serves.
    expectError(await call(app, "GET", "/infra/locks/a/b"), 404, "not_found", /no route/);
  });

  const badKeys: Array<[string, string, RegExp]> = [
    ["513 characters", "a".repeat(513), /key must be at most 512 characters/],
    ['".." inside', "a..b", /key must not contain .*"\.\."/],
    ['".." at the start', "..a", /key must not contain .*"\.\."/],
    ['".." at the end', "a..", /key must not contain .*"\.\."/],
    ["%00 (NUL)", "%00", /key must not contain control characters/],
    ["%01", "a%01b", /key must not contain control characters/],
    ["%1F", "%1F", /key must not contain control characters/],
    ["%7F (DEL)", "x%7F", /key must not contain control characters/],
    ["a newline", "a%0Ab", /key must not contain control characters/],
    ["a tab", "a%09b", /key must not contain control characters/],
  ];
  const endpoints = [
    ["acquire", "POST", "acquire", { ttl_ms: 1000 }],
    ["renew", "POST", "renew", { token: "t", ttl_ms: 1000 }],
    ["release", "POST", "release", { token: "t" }],
    ["status", "GET", undefined, undefined],
  ] as const;
  const cases = badKeys.flatMap(([label, segment, message]) =>
    endpoints.map(([name, method, op, json]) => ({ label, segment, message, name, method, op, json })),
  );

  it.each(cases)(
    "$name rejects a key with $label: 400 naming key",
    async ({ segment, message, method, op, json }) => {
      const app = newApp();
      const res = await call(app, method, leasePath(segment, op), json ? { json } : {});
      expectError(res, 400, "bad_request", [message, /key/]);
      expect(res.body.details).toEqual([expect.objectContaining({ in: "path parameter", field: "key" })]);
    },
  );

  it('a whole segment "%2E%2E" is resolved by URL parsing before routing: 4xx JSON, nothing locked', async () => {
    const app = newApp();
    const res = await call(app, "POST", "/infra/locks/%2E%2E/acquire", { json: { ttl_ms: 1000 } });
    expectError(res, 404, "not_found", /no route/);
  });

  it("a rejected key leaves nothing behind", async () => {
    const app = newApp();
    await call(app, "POST", leasePath("a..b", "acquire"), { json: { ttl_ms: 1000 } });
    // The same characters under a valid neighbour key are untouched.
    expect((await status(app, "a.b")).locked).toBe(false);
  });
});

describe("lengths count characters, as the document's JSON schema does (code points)", () => {
  // "1–512 chars" / "max 256 chars": JSON Schema's length is the number of characters (code points).
  // A character outside the BMP is two UTF-16 code units in JavaScript.
  it("a key of 512 astral-plane characters (🔒) is accepted", async () => {
    const app = newApp();
    const key = "🔒".repeat(512);
    const res = await acquire(app, key);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.key).toBe(key);
  });

  it("a holder_id of 256 astral-plane characters (🔒) is accepted", async () => {
    const app = newApp();
    const res = await acquire(app, "emoji-holder", { ttl_ms: 1000, holder_id: "🔒".repeat(256) });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
  });

  it("a key of 513 astral-plane characters is still rejected", async () => {
    const app = newApp();
    expectError(await acquire(app, "🔒".repeat(513)), 400, "bad_request", /key/);
  });
});

// ---------------------------------------------------------------------------------------------
describe("priority", () => {
  const badPriority: Array<[string, string]> = [
    ["101", "101"],
    ["-101", "-101"],
    ["1.5", "1.5"],
    ['"high" (a string)', '"high"'],
    ['"5" (a string)', '"5"'],
    ["null", "null"],
    ["true", "true"],
  ];
  it.each(badPriority)(
    "acquire rejects priority %s: 400 naming priority, nothing taken",
    async (_label, value) => {
      const app = newApp();
      const res = await call(app, "POST", leasePath("prio-key", "acquire"), {
        raw: `{"ttl_ms":1000,"wait_ms":100,"priority":${value}}`,
      });
      expectError(res, 400, "bad_request", [/priority must be a whole number from -100 to 100/]);
      expect(res.body.details).toContainEqual(expect.objectContaining({ in: "body", field: "priority" }));
      expect((await status(app, "prio-key")).locked).toBe(false);
    },
  );

  it.each([-100, 0, 100])("accepts priority %s", async (priority) => {
    const app = newApp();
    expect((await acquire(app, `prio-ok-${priority}`, { ttl_ms: 1000, priority })).status).toBe(200);
  });
});

// ---------------------------------------------------------------------------------------------
describe("supersede", () => {
  const badGroup: Array<[string, string, RegExp]> = [
    ["empty", '""', /supersede must be 1–128 characters/],
    ["129 characters", JSON.stringify("g".repeat(129)), /supersede must be at most 128 characters/],
    [
      "a control character",
      JSON.stringify("deploy\u001fmain"),
      /supersede must not contain control characters/,
    ],
    ["a newline", JSON.stringify("deploy\nmain"), /supersede must not contain control characters/],
    ["bidirectional formatting", JSON.stringify("deploy\u202emain"), /invisible or bidirectional/],
    ["a number", "5", /supersede must be a string/],
    ["null", "null", /supersede must be a string/],
  ];
  it.each(badGroup)(
    "acquire rejects a supersede group that is %s: 400 naming supersede, nothing taken",
    async (_label, value, message) => {
      const app = newApp();
      const res = await call(app, "POST", leasePath("sup-key", "acquire"), {
        raw: `{"ttl_ms":1000,"wait_ms":100,"supersede":${value}}`,
      });
      expectError(res, 400, "bad_request", [message]);
      expect(res.body.details).toContainEqual(expect.objectContaining({ in: "body", field: "supersede" }));
      expect((await status(app, "sup-key")).locked).toBe(false);
    },
  );

  it.each(["deploy/main", "g".repeat(128), "🚀 deploy · refs/heads/main"])(
    "accepts supersede %s",
    async (group) => {
      const app = newApp();
      expect((await acquire(app, `sup-ok-${group.length}`, { ttl_ms: 1000, supersede: group })).status).toBe(
        200,
      );
    },
  );
});

// ---------------------------------------------------------------------------------------------
describe("ttl_ms", () => {
  const badTtl: Array<[string, string, RegExp]> = [
    ["missing", "{}", /ttl_ms must be an integer/],
    ["0", '{"ttl_ms":0}', /ttl_ms must be at least 1/],
    ["-1", '{"ttl_ms":-1}', /ttl_ms must be at least 1/],
    ["1.5", '{"ttl_ms":1.5}', /ttl_ms must be an integer/],
    ['"1000" (a string)', '{"ttl_ms":"1000"}', /ttl_ms must be an integer/],
    ["null", '{"ttl_ms":null}', /ttl_ms must be an integer/],
    ["true", '{"ttl_ms":true}', /ttl_ms must be an integer/],
    ["an object", '{"ttl_ms":{"ms":5}}', /ttl_ms must be an integer/],
    ["1e400 (Infinity)", '{"ttl_ms":1e400}', /ttl_ms/],
    ["maxTtlMs + 1", `{"ttl_ms":${MAX_TTL + 1}}`, new RegExp(`ttl_ms must be at most ${MAX_TTL}`)],
    ["2^53", `{"ttl_ms":${2 ** 53}}`, /ttl_ms must be at most/],
  ];

  it.each(badTtl)("acquire rejects ttl_ms %s: 400 naming ttl_ms", async (_label, raw, message) => {
    const app = newApp();
    const res = await call(app, "POST", leasePath("ttl-key", "acquire"), { raw });
    expectError(res, 400, "bad_request", [message, /ttl_ms/]);
    expect(res.body.details).toContainEqual(expect.objectContaining({ in: "body", field: "ttl_ms" }));
    // Nothing is lost: a rejected acquire takes nothing.
    expect((await status(app, "ttl-key")).locked).toBe(false);
  });

  it.each(badTtl)(
    "renew rejects ttl_ms %s: 400 naming ttl_ms, lease unchanged",
    async (_label, raw, message) => {
      const app = newApp();
      const granted = await acquire(app, "ttl-renew", { ttl_ms: 30_000, token: "tok-1" });
      expect(granted.status).toBe(200);
      // The same raw ttl_ms beside a valid token (raw, so that 1e400 and 2^53 arrive as written).
      const renewRaw = raw.replace(/^\{/, raw === "{}" ? '{"token":"tok-1"' : '{"token":"tok-1",');
      const res = await call(app, "POST", leasePath("ttl-renew", "renew"), { raw: renewRaw });
      expectError(res, 400, "bad_request", [message, /ttl_ms/]);
      const st = await status(app, "ttl-renew");
      expect(st.locked).toBe(true);
      expect(st.expires_at).toBe(granted.body.expires_at);
    },
  );

  it("accepts ttl_ms = maxTtlMs on acquire and renew", async () => {
    const app = newApp();
    const res = await acquire(app, "max", { ttl_ms: MAX_TTL, token: "max-tok" });
    expect(res.status).toBe(200);
    expect(res.body.expires_in_ms).toBe(MAX_TTL);
    const renewed = await call(app, "POST", leasePath("max", "renew"), {
      json: { token: "max-tok", ttl_ms: MAX_TTL },
    });
    expect(renewed.status).toBe(200);
  });

  it("accepts ttl_ms = 1", async () => {
    const app = newApp();
    expect((await acquire(app, "one", { ttl_ms: 1 })).status).toBe(200);
  });

  describe("with LSS_MAX_TTL_MS = 60000 (the document's bound)", () => {
    it("acquire: 60000 accepted, 60001 rejected naming ttl_ms and the bound", async () => {
      const app = newApp({ maxTtlMs: 60_000 });
      const bad = await acquire(app, "doc-bound", { ttl_ms: 60_001 });
      expectError(bad, 400, "bad_request", [/ttl_ms/, /60000/]);
      expect((await status(app, "doc-bound")).locked).toBe(false);
      const ok = await acquire(app, "doc-bound", { ttl_ms: 60_000 });
      expect(ok.status).toBe(200);
      expect(ok.body.expires_in_ms).toBe(60_000);
    });

    it("renew: 60000 accepted, 60001 rejected naming ttl_ms and the bound", async () => {
      const app = newApp({ maxTtlMs: 60_000 });
      expect((await acquire(app, "doc-renew", { ttl_ms: 1000, token: "r-tok" })).status).toBe(200);
      const bad = await call(app, "POST", leasePath("doc-renew", "renew"), {
        json: { token: "r-tok", ttl_ms: 60_001 },
      });
      expectError(bad, 400, "bad_request", [/ttl_ms/, /60000/]);
      const ok = await call(app, "POST", leasePath("doc-renew", "renew"), {
        json: { token: "r-tok", ttl_ms: 60_000 },
      });
      expect(ok.status).toBe(200);
      expect(ok.body.expires_in_ms).toBe(60_000);
    });
  });
});

// ---------------------------------------------------------------------------------------------
describe("holder_id and reason", () => {
  it.each([
    ["holder_id", 256],
    ["reason", 512],
  ])("%s of exactly %i characters is accepted and reported", async (field, max) => {
    const app = newApp();
    const value = "h".repeat(max);
    const res = await acquire(app, `len-${field}`, { ttl_ms: 1000, [field]: value });
    expect(res.status).toBe(200);
    expect(res.body[field]).toBe(value);
    expect((await status(app, `len-${field}`))[field]).toBe(value);
  });

  it.each<[string, unknown, RegExp]>([
    ["holder_id", "h".repeat(257), /holder_id must be at most 256 characters/],
    ["holder_id", 42, /holder_id must be a string/],
    ["holder_id", null, /holder_id must be a string/],
    ["holder_id", ["w1"], /holder_id must be a string/],
    ["holder_id", "worker\u0001", /holder_id must not contain control characters/],
    ["holder_id", "worker\n1", /holder_id must not contain control characters/],
    ["holder_id", "worker\u007f", /holder_id must not contain control characters/],
    ["reason", "r".repeat(513), /reason must be at most 512 characters/],
    ["reason", 7, /reason must be a string/],
    ["reason", "line\u0000", /reason must not contain control characters/],
    ["holder_id", "admin\u202egnp.exe", /holder_id must not contain invisible or bidirectional/],
    ["holder_id", "trusted\u200bjob", /holder_id must not contain invisible or bidirectional/],
    ["holder_id", "\u2066octo\u2069", /holder_id must not contain invisible or bidirectional/],
    ["reason", "deploy\ufeff", /reason must not contain invisible or bidirectional/],
    ["reason", "\u200fsecurity fix", /reason must not contain invisible or bidirectional/],
  ])("acquire rejects %s = %j: 400 naming the field", async (field, value, message) => {
    const app = newApp();
    const res = await acquire(app, "hr-key", { ttl_ms: 1000, [field]: value });
    expectError(res, 400, "bad_request", [message, new RegExp(field)]);
    expect(res.body.details).toContainEqual(expect.objectContaining({ in: "body", field }));
    expect((await status(app, "hr-key")).locked).toBe(false);
  });
});

// ---------------------------------------------------------------------------------------------
describe("token", () => {
  const badTokens: Array<[string, string, RegExp]> = [
    ["missing", "", /token must be a string/],
    ['""', '"token":""', /token must be at least 1 character/],
    ["257 characters", `"token":"${"t".repeat(257)}"`, /token must be at most 256 characters/],
    ["a number", '"token":12345', /token must be a string/],
    ["null", '"token":null', /token must be a string/],
    ["an array", '"token":["a"]', /token must be a string/],
    ["a control character", '"token":"ab\\u0007"', /token must not contain control characters/],
  ];
  const withFields = (token: string, extra: string) =>
    `{${[token, extra].filter((s) => s !== "").join(",")}}`;

  it("release without token (and without force) is 400 naming token; the lease stays held", async () => {
    const app = newApp();
    expect((await acquire(app, "tok-rel", { ttl_ms: 30_000, token: "good" })).status).toBe(200);
    const res = await call(app, "POST", leasePath("tok-rel", "release"), { raw: "{}" });
    expectError(res, 400, "bad_request", [/send either token/, /force/]);
    expect((await status(app, "tok-rel")).locked).toBe(true);
  });

  it.each<[string, string, number, RegExp]>([
    ["token and force together", '{"token":"good","force":true}', 400, /not both/],
    ["force: false", '{"force":false}', 400, /force must be true/],
    ['force: "yes"', '{"force":"yes"}', 400, /force must be true/],
  ])("release with %s is rejected; the lease stays held", async (_l, raw, code, message) => {
    const app = newApp();
    expect((await acquire(app, "force-bad", { ttl_ms: 30_000, token: "good" })).status).toBe(200);
    const res = await call(app, "POST", leasePath("force-bad", "release"), { raw });
    expectError(res, code, "bad_request", [message]);
    expect((await status(app, "force-bad")).locked).toBe(true);
  });

  it.each(badTokens.filter(([label]) => label !== "missing"))(
    "release rejects token %s: 400 naming token; the lease stays held",
    async (_l, token, message) => {
      const app = newApp();
      expect((await acquire(app, "tok-rel", { ttl_ms: 30_000, token: "good" })).status).toBe(200);
      const res = await call(app, "POST", leasePath("tok-rel", "release"), { raw: withFields(token, "") });
      expectError(res, 400, "bad_request", [message, /token/]);
      expect(res.body.details).toContainEqual(expect.objectContaining({ in: "body", field: "token" }));
      expect((await status(app, "tok-rel")).locked).toBe(true);
    },
  );

  it.each(badTokens)("renew rejects token %s: 400 naming token", async (_l, token, message) => {
    const app = newApp();
    expect((await acquire(app, "tok-ren", { ttl_ms: 30_000, token: "good" })).status).toBe(200);
    const res = await call(app, "POST", leasePath("tok-ren", "renew"), {
      raw: withFields(token, '"ttl_ms":1000'),
    });
    expectError(res, 400, "bad_request", [message, /token/]);
    expect((await status(app, "tok-ren")).locked).toBe(true);
  });

  it.each(badTokens.filter(([label]) => label !== "missing"))(
    "a client-chosen token on acquire is rejected when %s: 400 naming token",
    async (_l, token, message) => {
      const app = newApp();
      const res = await call(app, "POST", leasePath("tok-acq", "acquire"), {
        raw: withFields(token, '"ttl_ms":1000'),
      });
      expectError(res, 400, "bad_request", [message, /token/]);
      expect((await status(app, "tok-acq")).locked).toBe(false);
    },
  );

  it("a token of exactly 256 characters works for acquire, renew and release", async () => {
    const app = newApp();
    const token = "T".repeat(256);
    const got = await acquire(app, "tok-256", { ttl_ms: 1000, token });
    expect(got.status).toBe(200);
    expect(got.body.token).toBe(token);
    const renewed = await call(app, "POST", leasePath("tok-256", "renew"), { json: { token, ttl_ms: 2000 } });
    expect(renewed.status).toBe(200);
    const released = await call(app, "POST", leasePath("tok-256", "release"), { json: { token } });
    expect(released.status).toBe(200);
    expect(released.body).toEqual({ status: "ok", key: "tok-256", locked: false });
  });

  it("a release with a well-formed but wrong token is 409 and the lease stays held", async () => {
    const app = newApp();
    expect((await acquire(app, "tok-wrong", { ttl_ms: 30_000, token: "right" })).status).toBe(200);
    const res = await call(app, "POST", leasePath("tok-wrong", "release"), { json: { token: "wrong" } });
    expectError(res, 409, "lock_held", /tok-wrong/);
    expect((await status(app, "tok-wrong")).locked).toBe(true);
    const ok = await call(app, "POST", leasePath("tok-wrong", "release"), { json: { token: "right" } });
    expect(ok.status).toBe(200);
    expect((await status(app, "tok-wrong")).locked).toBe(false);
  });
});

// ---------------------------------------------------------------------------------------------
describe("body shape", () => {
  const ops = [
    ["acquire", { ttl_ms: 1000 }],
    ["renew", { token: "t", ttl_ms: 1000 }],
    ["release", { token: "t" }],
  ] as const;

  it.each<[string, Record<string, unknown>, string[]]>([
    ["acquire", { ttl_ms: 1000, ttl: 5 }, ["ttl"]],
    ["acquire", { ttl_ms: 1000, foo: 1, bar: 2 }, ["foo", "bar"]],
    ["acquire", { ttl_ms: 1000, holderId: "w1" }, ["holderId"]],
    ["renew", { token: "t", ttl_ms: 1000, holder_id: "w1" }, ["holder_id"]],
    ["release", { token: "t", ttl_ms: 1000 }, ["ttl_ms"]],
    ["acquire", { ttl_ms: 1000, __proto__x: 1 }, ["__proto__x"]],
  ])("%s rejects unknown fields %j by name", async (op, json, names) => {
    const app = newApp();
    const res = await call(app, "POST", leasePath("unknown-fields", op as "acquire"), { json });
    expectError(res, 400, "bad_request", [/unknown field/, ...names.map((n) => new RegExp(`\\b${n}\\b`))]);
    expect((await status(app, "unknown-fields")).locked).toBe(false);
  });

  it('a literal "__proto__" field is rejected as unknown, not swallowed', async () => {
    const app = newApp();
    const res = await call(app, "POST", leasePath("proto", "acquire"), {
      raw: '{"ttl_ms":1000,"__proto__":{"admin":true}}',
    });
    expectError(res, 400, "bad_request", [/unknown field/, /__proto__/]);
  });

  const notObjects: Array<[string, string]> = [
    ["an array", "[]"],
    ["an array of an object", '[{"ttl_ms":1000}]'],
    ["a number", "5"],
    ['the string "x"', '"x"'],
    ["null", "null"],
    ["true", "true"],
  ];
  it.each(ops.flatMap(([op]) => notObjects.map(([label, raw]) => ({ op, label, raw }))))(
    "$op rejects a body that is $label: 400 naming the body",
    async ({ op, raw }) => {
      const app = newApp();
      const res = await call(app, "POST", leasePath("not-object", op), { raw });
      expectError(res, 400, "bad_request", [/body/, /JSON object/]);
    },
  );

  const malformed: Array<[string, string]> = [
    ["truncated", '{"ttl_ms":1000'],
    ["unquoted names", "{ttl_ms:1000}"],
    ["two documents", '{"ttl_ms":1000}{"ttl_ms":1000}'],
    ["a trailing comma", '{"ttl_ms":1000,}'],
    ["single quotes", "{'ttl_ms':1000}"],
    ["empty", ""],
    ["only whitespace", "   "],
  ];
  it.each(ops.flatMap(([op]) => malformed.map(([label, raw]) => ({ op, label, raw }))))(
    "$op rejects malformed JSON ($label): 400 naming the JSON body",
    async ({ op, raw }) => {
      const app = newApp();
      const res = await call(app, "POST", leasePath("malformed", op), { raw });
      expectError(res, 400, "bad_request", [/JSON/, /body/]);
      expect((await status(app, "malformed")).locked).toBe(false);
    },
  );

  it("a POST with a JSON content type and no body at all is 400 naming the body", async () => {
    const app = newApp();
    const res = await call(app, "POST", leasePath("no-body", "acquire"), { type: "application/json" });
    expectError(res, 400, "bad_request", [/JSON/, /body/]);
  });

  const badTypes: Array<[string, string | null]> = [
    ["no Content-Type", null],
    ["text/plain", "text/plain"],
    ["a form (curl -d)", "application/x-www-form-urlencoded"],
    ["multipart", "multipart/form-data; boundary=x"],
    ["text/json", "text/json"],
    ["application/jsonx", "application/jsonx"],
  ];
  it.each(ops.flatMap(([op, json]) => badTypes.map(([label, type]) => ({ op, json, label, type }))))(
    "$op with $label is 415 naming Content-Type",
    async ({ op, json, type }) => {
      const app = newApp();
      const res = await call(app, "POST", leasePath("media", op), { raw: JSON.stringify(json), type });
      expectError(res, 415, "unsupported_media_type", /Content-Type/);
      expect((await status(app, "media")).locked).toBe(false);
    },
  );

  it("a JSON-looking type that is not JSON (application/json-patch) is 415 naming Content-Type", async () => {
    const app = newApp();
    const res = await call(app, "POST", leasePath("media", "acquire"), {
      raw: '{"ttl_ms":1000}',
      type: "application/json-patch",
    });
    expectError(res, 415, "unsupported_media_type", /Content-Type/);
  });

  it.each([
    "application/json; charset=utf-8",
    "application/json;charset=UTF-8",
    "Application/JSON",
    "application/vnd.api+json",
  ])("accepts Content-Type %s", async (type) => {
    const app = newApp();
    const res = await call(app, "POST", leasePath("media-ok", "acquire"), {
      raw: '{"ttl_ms":1000}',
      type,
    });
    expect(res.status).toBe(200);
  });

  const big = JSON.stringify({ ttl_ms: 1000, reason: "x".repeat(17 * 1024) });
  it.each(ops.map(([op]) => op))("%s: a body over 16 KiB is 413 (with Content-Length)", async (op) => {
    const app = newApp();
    const res = await call(app, "POST", leasePath("big", op), {
      raw: big,
      headers: { "Content-Length": String(Buffer.byteLength(big)) },
    });
    expectError(res, 413, "payload_too_large", [/body/, /16384/]);
    expect((await status(app, "big")).locked).toBe(false);
  });

  it.each(ops.map(([op]) => op))(
    "%s: a body over 16 KiB is 413 (streamed, no Content-Length)",
    async (op) => {
      const app = newApp();
      const res = await call(app, "POST", leasePath("big", op), { raw: big });
      expectError(res, 413, "payload_too_large", [/body/, /16384/]);
    },
  );

  it("a body over 16 KiB is 413 even without a JSON Content-Type", async () => {
    const app = newApp();
    const res = await call(app, "POST", leasePath("big", "acquire"), { raw: big, type: "text/plain" });
    expectError(res, 413, "payload_too_large", /body/);
  });

  it("a body of exactly 16 KiB passes the size limit and is judged by the schema", async () => {
    const app = newApp();
    const head = '{"ttl_ms":1000,"reason":"';
    const raw = `${head}${"x".repeat(16 * 1024 - head.length - 2)}"}`;
    expect(Buffer.byteLength(raw)).toBe(16 * 1024);
    const res = await call(app, "POST", leasePath("edge", "acquire"), { raw });
    expectError(res, 400, "bad_request", /reason must be at most 512 characters/);
  });

  it("the /locks API has the same 16 KiB limit", async () => {
    const app = newApp();
    const res = await call(app, "POST", "/locks", { raw: big, auth: null });
    expectError(res, 413, "payload_too_large", /body/);
  });
});

// ---------------------------------------------------------------------------------------------
describe("routes and methods", () => {
  it.each<[string, string, string | null]>([
    ["GET", "/nope", null],
    ["GET", "/infra", `Bearer ${ADMIN}`],
    ["GET", "/infra/nope", `Bearer ${ADMIN}`],
    ["GET", "/infra/locks/k/acquire", `Bearer ${ADMIN}`],
    ["POST", "/infra/locks/k", `Bearer ${ADMIN}`],
    ["POST", "/infra/locks/k/steal", `Bearer ${ADMIN}`],
    ["PUT", "/infra/locks/k/acquire", `Bearer ${ADMIN}`],
    ["DELETE", "/infra/locks/k", `Bearer ${ADMIN}`],
    ["PATCH", "/infra/locks/k/release", `Bearer ${ADMIN}`],
    ["DELETE", "/locks", null],
    ["GET", "/locks", null],
    ["PUT", "/locks/abc", null],
    ["DELETE", "/locks/abc", null],
    ["POST", "/locks/abc/lock", null],
    ["GET", "/locks/abc/unlock", null],
    ["PATCH", "/locks/abc/explode", null],
    ["GET", "/admin", `Bearer ${ADMIN}`],
    ["PUT", "/admin/tokens", `Bearer ${ADMIN}`],
  ])("%s %s is a 404 JSON error naming the route", async (method, path, auth) => {
    const app = newApp();
    const res = await call(app, method, path, { auth });
    expectError(res, 404, "not_found", [/no route/, path]);
  });

  it("an unknown /infra route without a token is refused before routing (401 JSON)", async () => {
    const app = newApp();
    const res = await call(app, "PUT", "/infra/locks/k/acquire", { auth: null });
    expectError(res, 401, "unauthorized", /Authorization/);
  });
});

// ---------------------------------------------------------------------------------------------
describe("/locks API", () => {
  const open = { auth: null } as const;
  const createLock = async (app: App, query = "") => {
    const res = await call(app, "POST", `/locks${query ? `?${query}` : ""}`, open);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    return res.body as { id: string; key: string; locked: boolean; expires_at: string | null };
  };
  const get = (app: App, id: string) => call(app, "GET", `/locks/${id}`, open);
  const patch = (app: App, id: string, op: "lock" | "unlock", query = "") =>
    call(app, "PATCH", `/locks/${id}/${op}${query ? `?${query}` : ""}`, open);

  it("POST /locks returns 200 with id, key, locked and the original names lockId, lockKey, isLocked", async () => {
    const app = newApp();
    const body = await createLock(app);
    expect(body).toMatchObject({
      id: expect.any(String),
      key: expect.any(String),
      locked: false,
      expires_at: null,
    });
    const full = body as Record<string, unknown>;
    expect(full.lockId).toBe(body.id);
    expect(full.lockKey).toBe(body.key);
    expect(full.isLocked).toBe(false);
    expect(body.id).toMatch(/^[A-Za-z0-9_-]{1,128}$/);
    expect(body.key.length).toBeGreaterThan(0);
    expect((await get(app, body.id)).status).toBe(204);
  });

  it("a custom k is returned as key (and lockKey) and works as the lock's key", async () => {
    const app = newApp();
    const body = (await createLock(app, "k=my%20key%2B1")) as Record<string, unknown> & { id: string };
    expect(body.key).toBe("my key+1");
    expect(body.lockKey).toBe("my key+1");
    expect((await patch(app, body.id, "lock", "k=my%20key%2B1")).status).toBe(204);
    expect((await get(app, body.id)).status).toBe(423);
  });

  it.each(["true", "1", "T"])("l=%s creates the lock locked: GET is 423", async (l) => {
    const app = newApp();
    const body = await createLock(app, `l=${l}`);
    expect(body.locked).toBe(true);
    expect((body as Record<string, unknown>).isLocked).toBe(true);
    const res = await get(app, body.id);
    expect(res.status).toBe(423);
    expect(res.body).toMatchObject({ id: body.id, locked: true, expires_at: null, expires_in_ms: null });
  });

  it.each(["false", "0", "F", null])("l=%s creates the lock unlocked: GET is 204", async (l) => {
    const app = newApp();
    const body = await createLock(app, l === null ? "" : `l=${l}`);
    expect(body.locked).toBe(false);
    const res = await get(app, body.id);
    expect(res.status).toBe(204);
    expect(res.body).toBeNull();
  });

  const badQuery: Array<[string, string, RegExp]> = [
    ["l=maybe", "l", /l must be one of true, 1, T/],
    ["l=", "l", /l must be one of/],
    ["l=TRUE", "l", /l must be one of/],
    ["l=yes", "l", /l must be one of/],
    ["e=0", "e", /e must be at least 1 second/],
    ["e=-5", "e", /e must be a whole number of seconds/],
    ["e=1.5", "e", /e must be a whole number of seconds/],
    ["e=abc", "e", /e must be a whole number of seconds/],
    ["e=", "e", /e must be a whole number of seconds/],
    ["e=1e3", "e", /e must be a whole number of seconds/],
    ["e=1000000001", "e", /e must be at most 1000000000 seconds/],
    ["e=99999999999999999999999", "e", /e must be at most/],
    ["k=", "k", /k must be at least 1 character/],
    ["k=a%00b", "k", /k must not contain control characters/],
    ["k=%01", "k", /k must not contain control characters/],
    ["k=a%0Ab", "k", /k must not contain control characters/],
    ["k=a%7F", "k", /k must not contain control characters/],
    [`k=${"k".repeat(257)}`, "k", /k must be at most 256 characters/],
  ];

  it.each(badQuery)("POST /locks?%s is 400 naming %s", async (query, field, message) => {
    const app = newApp();
    const res = await call(app, "POST", `/locks?${query}`, open);
    expectError(res, 400, "bad_request", [message, new RegExp(`\\b${field}\\b`)]);
    expect(res.body.details).toContainEqual(expect.objectContaining({ in: "query parameter", field }));
  });

  it("e=1000000000 (the upper bound) is accepted", async () => {
    const app = newApp();
    const body = await createLock(app, "l=true&e=1000000000");
    expect(body.locked).toBe(true);
    expect(body.expires_at).not.toBeNull();
  });

  it.each(badQuery.filter(([, field]) => field !== "l"))(
    "PATCH lock?%s is 400 naming %s, state unchanged",
    async (query, field, message) => {
      const app = newApp();
      const { id } = await createLock(app, "k=secret");
      const q = field === "k" ? query : `k=secret&${query}`;
      const res = await patch(app, id, "lock", q);
      expectError(res, 400, "bad_request", [message, new RegExp(`\\b${field}\\b`)]);
      expect((await get(app, id)).status).toBe(204);
    },
  );

  it.each(badQuery.filter(([, field]) => field === "k"))(
    "PATCH unlock?%s is 400 naming k, state unchanged",
    async (query, _field, message) => {
      const app = newApp();
      const { id } = await createLock(app, "k=secret&l=1");
      const res = await patch(app, id, "unlock", query);
      expectError(res, 400, "bad_request", [message, /\bk\b/]);
      expect((await get(app, id)).status).toBe(423);
    },
  );

  const badIds: Array<[string, string]> = [
    ["a dot", "a.b"],
    ["129 characters", "a".repeat(129)],
    ["a space", "a%20b"],
    ["a colon", "a:b"],
    ["unicode", enc("ключ")],
    ["an encoded slash", "a%2Fb"],
    ["a control character", "a%01"],
  ];
  it.each(badIds)("a lock id with %s is 400 naming the lock id on GET, lock and unlock", async (_l, id) => {
    const app = newApp();
    for (const res of [
      await get(app, id),
      await patch(app, id, "lock", "k=x"),
      await patch(app, id, "unlock", "k=x"),
    ]) {
      expectError(res, 400, "bad_request", /lock id/);
      expect(res.body.details).toContainEqual(expect.objectContaining({ in: "path parameter", field: "id" }));
    }
  });

  it("a well-formed unknown id (128 characters) is 404 on GET, lock and unlock", async () => {
    const app = newApp();
    const id = "a".repeat(128);
    expectError(await get(app, id), 404, "not_found", id);
    expectError(await patch(app, id, "lock", "k=x"), 404, "not_found", id);
    expectError(await patch(app, id, "unlock", "k=x"), 404, "not_found", id);
  });

  it.each(["lock", "unlock"] as const)("PATCH %s without k is 401 naming k", async (op) => {
    const app = newApp();
    const { id } = await createLock(app, op === "unlock" ? "l=1" : "");
    const res = await patch(app, id, op);
    expectError(res, 401, "unauthorized", /\bk\b/);
    expect((await get(app, id)).status).toBe(op === "unlock" ? 423 : 204);
  });

  it.each(["lock", "unlock"] as const)(
    "PATCH %s with the wrong k is 403 and the state is unchanged",
    async (op) => {
      const app = newApp();
      const { id } = await createLock(app, op === "unlock" ? "k=right&l=1" : "k=right");
      const res = await patch(app, id, op, "k=wrong");
      expectError(res, 403, "forbidden", /\(k\)|\bk\b/);
      expect((await get(app, id)).status).toBe(op === "unlock" ? 423 : 204);
    },
  );

  it("lock with e then GET is 423 with the expiry; unlock is 204 then GET 204", async () => {
    const app = newApp();
    const { id, key } = await createLock(app);
    expect((await patch(app, id, "lock", `k=${enc(key)}&e=60`)).status).toBe(204);
    const locked = await get(app, id);
    expect(locked.status).toBe(423);
    expect(locked.body.expires_in_ms).toBeGreaterThan(58_000);
    expect(locked.body.expires_in_ms).toBeLessThanOrEqual(60_000);
    expect((await patch(app, id, "unlock", `k=${enc(key)}`)).status).toBe(204);
    expect((await get(app, id)).status).toBe(204);
  });

  it("unlocking an unlocked lock is 204 (a no-op)", async () => {
    const app = newApp();
    const { id, key } = await createLock(app);
    expect((await patch(app, id, "unlock", `k=${enc(key)}`)).status).toBe(204);
    expect((await patch(app, id, "unlock", `k=${enc(key)}`)).status).toBe(204);
    expect((await get(app, id)).status).toBe(204);
  });

  it("re-locking with the same k while locked is 204 and sets the new expiry", async () => {
    const app = newApp();
    const { id, key } = await createLock(app, "l=1&e=60");
    const first = await get(app, id);
    expect(first.status).toBe(423);
    expect((await patch(app, id, "lock", `k=${enc(key)}&e=3600`)).status).toBe(204);
    const longer = await get(app, id);
    expect(longer.status).toBe(423);
    expect(longer.body.expires_in_ms).toBeGreaterThan(3_500_000);
    // Without e the lock is held until unlocked.
    expect((await patch(app, id, "lock", `k=${enc(key)}`)).status).toBe(204);
    const forever = await get(app, id);
    expect(forever.status).toBe(423);
    expect(forever.body).toMatchObject({ expires_at: null, expires_in_ms: null });
  });

  it("a lock created with e that runs out reads 204 and still exists (not 404)", async () => {
    const app = newApp();
    const { id, key } = await createLock(app, "l=true&e=1");
    expect((await get(app, id)).status).toBe(423);
    await sleep(1100);
    expect((await get(app, id)).status).toBe(204);
    // Still the same lock: its key still locks it.
    expect((await patch(app, id, "lock", `k=${enc(key)}`)).status).toBe(204);
    expect((await get(app, id)).status).toBe(423);
  });

  it("a lock taken with PATCH ?e=1 runs out too", async () => {
    const app = newApp();
    const { id, key } = await createLock(app);
    expect((await patch(app, id, "lock", `k=${enc(key)}&e=1`)).status).toBe(204);
    expect((await get(app, id)).status).toBe(423);
    await sleep(1100);
    expect((await get(app, id)).status).toBe(204);
  });

  it("a state lock cannot be taken through the lease API without its key", async () => {
    const app = newApp();
    const { id } = await createLock(app, "k=only-me");
    // In the open API's namespace, with a token of it.
    const minted = await call(app, "POST", "/admin/tokens", {
      json: { namespace: "open", scopes: ["locks:write"] },
    });
    const res = await call(app, "POST", leasePath(enc(`locks/${id}`), "acquire"), {
      json: { ttl_ms: 1000 },
      auth: `Bearer ${minted.body.token}`,
    });
    expectError(res, 403, "forbidden", /\(k\)/);
    expect((await get(app, id)).status).toBe(204);
  });
});

// ---------------------------------------------------------------------------------------------
describe("nothing is lost", () => {
  it("after every kind of rejected acquire the key is still free and can be taken", async () => {
    const app = newApp();
    const rejected: RequestOptions[] = [
      { raw: '{"ttl_ms":0}' },
      { raw: '{"ttl_ms":1000,"extra":1}' },
      { raw: "{bad" },
      { raw: '{"ttl_ms":1000}', type: "text/plain" },
      { raw: JSON.stringify({ ttl_ms: 1000, reason: "x".repeat(20_000) }) },
    ];
    for (const opts of rejected) {
      const res = await call(app, "POST", leasePath("kept-free", "acquire"), opts);
      expect(res.status).toBeGreaterThanOrEqual(400);
      expect(await status(app, "kept-free")).toMatchObject({ locked: false, fencing_token: null });
    }
    expect((await acquire(app, "kept-free", { ttl_ms: 1000 })).status).toBe(200);
  });

  it("after rejected releases and renews (bad or wrong token) the lease is still held, unchanged", async () => {
    const app = newApp();
    const granted = await acquire(app, "kept-held", { ttl_ms: 30_000, token: "the-token", holder_id: "w1" });
    expect(granted.status).toBe(200);
    const attempts: Array<[string, RequestOptions]> = [
      ["release", { json: { token: "" } }],
      ["release", { json: { token: 1 } }],
      ["release", { json: {} }],
      ["release", { json: { token: "not-the-token" } }],
      ["renew", { json: { token: "not-the-token", ttl_ms: 1 } }],
      ["renew", { json: { token: "the-token", ttl_ms: 0 } }],
      ["release", { raw: '{"token":"the-token"}', type: "text/plain" }],
    ];
    for (const [op, opts] of attempts) {
      const res = await call(app, "POST", leasePath("kept-held", op as "release"), opts);
      expect(res.status).toBeGreaterThanOrEqual(400);
      const st = await status(app, "kept-held");
      expect(st).toMatchObject({
        locked: true,
        holder_id: "w1",
        fencing_token: granted.body.fencing_token,
        expires_at: granted.body.expires_at,
      });
    }
  });
});
