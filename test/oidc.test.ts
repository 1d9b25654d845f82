/**
 * GitHub Actions OIDC tokens as bearer tokens: verified against a local issuer (its own key pair,
 * OpenID configuration and JWKS on loopback), mapped by the policy to a namespace, scopes and keys;
 * every way a token can be wrong is refused, each with a test; the policy's mistakes are refused
 * at start, naming the rule.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApp } from "../server/app.js";
import type { OidcRule } from "../server/auth/oidc-policy.js";
import { keyMatches, literalRanges } from "../server/auth/oidc-policy.js";
import { ConfigError, loadConfig } from "../server/config.js";
import { createMemoryStore } from "../server/stores/memory.js";
import { pathTo } from "../src/protocol/paths.js";
import { ADMIN_TOKEN, testConfig } from "./support/app.js";
import { type OidcIssuer, startOidcIssuer, type TokenOptions } from "./support/oidc-issuer.js";

/** The audience the test server is configured with (LSS_PUBLIC_URL's origin, or LSS_OIDC_AUDIENCE). */
const ORIGIN = "https://lss.acme.example";

const RULES: OidcRule[] = [
  {
    name: "acme's repositories",
    match: { repository_owner: "acme", repository_owner_id: "900001" },
    namespace: "acme",
    scopes: ["locks:read", "locks:write"],
  },
  {
    name: "webapp's deploy environment may force-release QA",
    match: { repository: "acme/webapp", repository_id: "700001", environment: "deploy" },
    namespace: "acme",
    scopes: ["locks:force"],
    keys: ["qa-*"],
  },
  {
    name: "the mobile team locks its own keys",
    match: { repository_id: "700777" },
    namespace: "mobile",
    scopes: ["locks:read", "locks:write"],
    keys: ["mobile/*"],
  },
];

let issuer: OidcIssuer;
beforeAll(async () => {
  issuer = await startOidcIssuer();
});
afterAll(() => issuer.close());

function appWith(rules: OidcRule[] = RULES, audience = ORIGIN) {
  const app = createApp({
    store: createMemoryStore(),
    rateLimiter: null,
    // The /locks API wants a token here, so that its keys are checked against the rules too.
    config: testConfig({
      locksApiAuth: "bearer",
      oidc: { issuer: issuer.url, audience, rules, jwksCooldownMs: 0 },
    }),
  });
  const call = async (
    method: string,
    path: string,
    bearer: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ) => {
    const res = await app.request(path, {
      method,
      headers: {
        Authorization: `Bearer ${bearer}`,
        ...(body === undefined ? {} : { "Content-Type": "application/json" }),
        ...headers,
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    // biome-ignore lint/suspicious/noExplicitAny: bodies are inspected field by field
    return { status: res.status, body: (text ? JSON.parse(text) : null) as any };
  };
  return { app, call };
}

const token = (opts: TokenOptions = {}) => issuer.token({ audience: ORIGIN, ...opts });
const acquire = (key: string) => ["POST", pathTo("acquire", { key })] as const;

describe("a workflow's OIDC token", () => {
  it("acquires, renews and releases in the namespace its rule names, held by the verified workflow", async () => {
    const { call } = appWith();
    const jwt = await token();
    const got = await call(...acquire("qa-env"), jwt, {
      ttl_ms: 60_000,
      holder_id: "someone else entirely",
      reason: "deploy",
    });
    expect(got.status).toBe(200);
    // The holder is what the verified claims say, not what the client wrote.
    expect(got.body.holder_id).toBe(
      `acme/webapp · deploy.yml · ${issuer.url}/acme/webapp/actions/runs/4242/attempts/1 · octocat`,
    );
    expect(got.body.reason).toBe("deploy");
    const renewed = await call("POST", pathTo("renew", { key: "qa-env" }), jwt, {
      token: got.body.token,
      ttl_ms: 60_000,
    });
    expect(renewed.status).toBe(200);
    const history = await call("GET", pathTo("history", { key: "qa-env" }), jwt);
    expect(history.body.events[0]).toMatchObject({
      event: "granted",
      actor: { token_id: "oidc:700001", token_name: "acme/webapp" },
      run_url: `${issuer.url}/acme/webapp/actions/runs/4242/attempts/1`,
    });
    expect(
      (await call("POST", pathTo("release", { key: "qa-env" }), jwt, { token: got.body.token })).status,
    ).toBe(200);
    // In its namespace: the admin (namespace default) does not see it there.
    const adminView = await call("GET", pathTo("history", { key: "qa-env" }), ADMIN_TOKEN);
    expect(adminView.body.events).toEqual([]);
  });

  it("takes the configured audience only, never the origin the request names", async () => {
    const configured = appWith(RULES, "https://lss.example.com");
    expect((await configured.call(...acquire("a"), await token(), { ttl_ms: 1000 })).status).toBe(401);
    const ok = await configured.call(...acquire("a"), await token({ audience: "https://lss.example.com" }), {
      ttl_ms: 1000,
    });
    expect(ok.status).toBe(200);
    // A token the job minted for another service (Vault), sent with that service's origin as the
    // request's Host and as an absolute URL: the request's origin is not the audience.
    const vault = await token({ audience: "https://vault.acme.example" });
    const viaHost = await configured.call(
      ...acquire("b"),
      vault,
      { ttl_ms: 1000 },
      { Host: "vault.acme.example" },
    );
    expect(viaHost.status).toBe(401);
    expect(viaHost.body.error.message).toMatch(/audience is not this server's/);
    const absolute = await configured.app.request("https://vault.acme.example/infra/locks/b/acquire", {
      method: "POST",
      headers: { Authorization: `Bearer ${vault}`, "Content-Type": "application/json" },
      body: JSON.stringify({ ttl_ms: 1000 }),
    });
    expect(absolute.status).toBe(401);
  });

  it("is accepted once signed by a new key the issuer rotated to", async () => {
    const { call } = appWith();
    expect((await call(...acquire("rot-1"), await token(), { ttl_ms: 1000 })).status).toBe(200);
    const readsBefore = issuer.counts.jwksReads;
    await issuer.rotate({ dropOld: true });
    const signedByNew = await token();
    expect((await call(...acquire("rot-2"), signedByNew, { ttl_ms: 1000 })).status).toBe(200);
    // The unknown key made the server read the JWKS again (once), not on every request.
    expect(issuer.counts.jwksReads).toBe(readsBefore + 1);
    expect((await call(...acquire("rot-3"), signedByNew, { ttl_ms: 1000 })).status).toBe(200);
    expect(issuer.counts.jwksReads).toBe(readsBefore + 1);
  });

  it("with a rule naming keys: only those keys, for locking, reading and listing", async () => {
    const { call } = appWith();
    const mobile = await token({
      claims: {
        repository: "mobileco/app",
        repository_id: "700777",
        repository_owner: "mobileco",
        repository_owner_id: "900777",
      },
    });
    expect((await call(...acquire("mobile/ios"), mobile, { ttl_ms: 60_000 })).status).toBe(200);
    const outside = await call(...acquire("qa-env"), mobile, { ttl_ms: 60_000 });
    expect(outside.status).toBe(403);
    expect(outside.body.error.message).toMatch(/locks:write scope does not cover "qa-env"/);
    expect((await call("GET", pathTo("status", { key: "qa-env" }), mobile)).status).toBe(403);
    expect((await call("POST", pathTo("createStateLock", {}, { l: "true" }), mobile)).status).toBe(403);
    // Only the keys its rule covers are listed.
    const listed = await call("GET", pathTo("list"), mobile);
    expect(listed.body.locks.map((l: { key: string }) => l.key)).toEqual(["mobile/ios"]);
  });

  it("pages a restricted listing without naming, even in a cursor, a key outside its rule", async () => {
    const rules: OidcRule[] = [
      {
        name: "deploys and the shared key",
        match: { repository_id: "700001" },
        namespace: "acme",
        scopes: ["locks:read", "locks:write"],
        keys: ["team/*/deploy", "shared"],
      },
    ];
    const { call } = appWith(rules);
    // Keys of the namespace that the rule does not cover, made by a token of the namespace.
    const ops = (
      await call("POST", pathTo("tokens"), ADMIN_TOKEN, { namespace: "acme", scopes: ["locks:write"] })
    ).body.token;
    // Fifteen in a row between two it may see: more than ten pages of one key (before, the listing
    // read at most ten store pages of the caller's page size, and ended there).
    const run = Array.from({ length: 15 }, (_, i) => `team/a/x-${String(i).padStart(2, "0")}`);
    const hidden = ["a-secret", "shared-2", "team/a/secret", "team/a/secret2", ...run, "team/b/x", "zz-top"];
    const shown = ["shared", "team/a/deploy", "team/b/deploy"];
    for (const key of [...hidden, ...shown])
      expect((await call(...acquire(key), ops, { ttl_ms: 60_000 })).status).toBe(200);
    const jwt = await token();
    const pages: string[] = [];
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const query = `?limit=1${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`;
      const page = await call("GET", `/infra/locks${query}`, jwt);
      expect(page.status).toBe(200);
      pages.push(JSON.stringify(page.body));
      seen.push(...page.body.locks.map((l: { key: string }) => l.key));
      cursor = page.body.next_cursor;
    } while (cursor && pages.length < 20);
    expect(seen).toEqual(shown);
    // Before: next_cursor was the last key read, whoever's it was (team/a/secret, say).
    for (const key of hidden) for (const text of pages) expect(text).not.toContain(`"${key}"`);
    const prefixed = await call("GET", pathTo("list", {}, { prefix: "team/a" }), jwt);
    expect(prefixed.body).toMatchObject({
      locks: [expect.objectContaining({ key: "team/a/deploy" })],
      next_cursor: null,
    });
  });

  it("force-releases only where a rule gives locks:force (the deploy environment, qa-* keys)", async () => {
    const { call } = appWith();
    const ci = await token();
    const deploy = await token({ claims: { environment: "deploy" } });
    for (const key of ["qa-1", "prod"])
      expect((await call(...acquire(key), ci, { ttl_ms: 60_000 })).status).toBe(200);
    const notDeploy = await call("POST", pathTo("release", { key: "qa-1" }), ci, { force: true });
    expect(notDeploy.status).toBe(403);
    expect(notDeploy.body.error.message).toMatch(/admin or locks:force/);
    expect((await call("POST", pathTo("release", { key: "prod" }), deploy, { force: true })).status).toBe(
      403,
    );
    expect((await call("POST", pathTo("release", { key: "qa-1" }), deploy, { force: true })).status).toBe(
      200,
    );
    expect((await call("GET", pathTo("status", { key: "qa-1" }), ci)).body.locked).toBe(false);
    expect((await call("GET", pathTo("status", { key: "prod" }), ci)).body.locked).toBe(true);
  });

  it("is never an admin: it cannot mint tokens", async () => {
    const { call } = appWith();
    const minted = await call("POST", pathTo("tokens"), await token(), {
      namespace: "acme",
      scopes: ["admin"],
    });
    expect(minted.status).toBe(403);
  });
});

describe("refused tokens", () => {
  const refused = async (jwt: string, status: number, message: RegExp) => {
    const { call } = appWith();
    const r = await call(...acquire("qa-env"), jwt, { ttl_ms: 60_000 });
    expect(r.status).toBe(status);
    expect(r.body.error.message).toMatch(message);
    return r;
  };

  it("for another audience", async () => {
    await refused(await token({ audience: "https://other.example" }), 401, /audience is not this server's/);
  });
  it("from another issuer", async () => {
    await refused(
      await token({ issuer: "https://token.actions.githubusercontent.com" }),
      401,
      /not issued by the configured issuer/,
    );
  });
  it("expired (past the minute of clock skew)", async () => {
    await refused(await token({ expiresIn: -120 }), 401, /expired/);
  });
  it("not yet valid (past the minute of clock skew)", async () => {
    await refused(await token({ notBefore: 300, expiresIn: 600 }), 401, /not valid yet/);
  });
  it("signed by a key the issuer does not publish", async () => {
    await refused(await token({ unknownKey: true }), 401, /key the issuer does not publish/);
  });
  it("with alg none", async () => {
    const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");
    const claims = JSON.parse(Buffer.from((await token()).split(".")[1] as string, "base64url").toString());
    // Unsigned, with and without a signature part.
    for (const jwt of [
      `${b64({ alg: "none", typ: "JWT" })}.${b64(claims)}.`,
      `${b64({ alg: "none" })}.${b64(claims)}.x`,
    ]) {
      const { call } = appWith();
      const r = await call(...acquire("qa-env"), jwt, { ttl_ms: 60_000 });
      expect(r.status).toBe(401);
    }
  });
  it("HS256 signed with the issuer's public key as the secret", async () => {
    const claims = JSON.parse(Buffer.from((await token()).split(".")[1] as string, "base64url").toString());
    const secret = new TextEncoder().encode(JSON.stringify(issuer.publicJwk()));
    const forged = await new SignJWT(claims)
      .setProtectedHeader({ alg: "HS256", kid: issuer.publicJwk().kid })
      .sign(secret);
    await refused(forged, 401, /not signed with RS256/);
  });
  it("of a repository matched by name but not by id (re-created under the same name): 403 naming it", async () => {
    const r = await refused(
      await token({ claims: { repository_id: "123456", repository_owner_id: "555" } }),
      403,
      /no OIDC rule of this server admits repository acme\/webapp \(id 123456\)/,
    );
    expect(r.body.error.code).toBe("forbidden");
  });
  it("of a repository outside every rule: 403 naming it", async () => {
    await refused(
      await token({
        claims: {
          repository: "evil/repo",
          repository_id: "1",
          repository_owner: "evil",
          repository_owner_id: "2",
        },
      }),
      403,
      /admits repository evil\/repo \(id 1\)/,
    );
  });
  it("tampered with (a claim changed after signing)", async () => {
    const [h, p, s] = (await token()).split(".") as [string, string, string];
    const claims = JSON.parse(Buffer.from(p, "base64url").toString());
    const changed = Buffer.from(JSON.stringify({ ...claims, repository_id: "700777" })).toString("base64url");
    await refused(`${h}.${changed}.${s}`, 401, /signature does not verify/);
  });
  it("when the issuer fails: one outbound request, not one per JWT-shaped bearer", async () => {
    let asked = 0;
    const failing = createServer((_req, res) => {
      asked++;
      res.statusCode = 500;
      res.end();
    });
    await new Promise<void>((resolve) => failing.listen(0, "127.0.0.1", resolve));
    const url = `http://127.0.0.1:${(failing.address() as AddressInfo).port}`;
    try {
      const app = createApp({
        store: createMemoryStore(),
        rateLimiter: null,
        config: testConfig({ oidc: { issuer: url, audience: ORIGIN, rules: RULES } }),
      });
      const jwt = await token();
      const answers = await Promise.all(
        Array.from({ length: 5 }, () =>
          app.request(pathTo("status", { key: "k" }), { headers: { Authorization: `Bearer ${jwt}` } }),
        ),
      );
      for (let i = 0; i < 5; i++) {
        const again = await app.request(pathTo("status", { key: "k" }), {
          headers: { Authorization: `Bearer ${jwt}` },
        });
        answers.push(again);
      }
      expect(answers.map((a) => a.status)).toEqual(Array(10).fill(503));
      // Before: every one of them asked the issuer.
      expect(asked).toBe(1);
    } finally {
      failing.close();
    }
  });

  it("when the issuer cannot be reached: 503, nothing granted", async () => {
    const app = createApp({
      store: createMemoryStore(),
      rateLimiter: null,
      config: testConfig({ oidc: { issuer: "http://127.0.0.1:9", audience: ORIGIN, rules: RULES } }),
    });
    const res = await app.request(pathTo("acquire", { key: "qa-env" }), {
      method: "POST",
      headers: { Authorization: `Bearer ${await token()}`, "Content-Type": "application/json" },
      body: JSON.stringify({ ttl_ms: 60_000 }),
    });
    expect(res.status).toBe(503);
    const status = await app.request(pathTo("status", { key: "qa-env" }), {
      headers: { Authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    expect(((await status.json()) as { locked: boolean }).locked).toBe(false);
  });
});

describe("the policy, checked at start", () => {
  const load = (policy: unknown) =>
    loadConfig({
      LSS_OIDC_POLICY: typeof policy === "string" ? policy : JSON.stringify(policy),
      LSS_PUBLIC_URL: ORIGIN,
    });
  const rule = (over: Record<string, unknown>) => ({
    name: "r",
    match: { repository_owner_id: "1" },
    namespace: "acme",
    scopes: ["locks:write"],
    ...over,
  });

  it.each([
    ["not JSON", "{rules:", /LSS_OIDC_POLICY is not JSON/],
    ["no rules", { rules: [] }, /LSS_OIDC_POLICY has no rules/],
    [
      "a name without its id",
      [rule({ name: "web", match: { repository: "acme/web", repository_owner_id: "1" } })],
      /rule 1 \("web"\): match names repository "acme\/web" without repository_id/,
    ],
    [
      "an owner name without its id",
      [rule({ match: { repository_owner: "acme", repository_id: "5" } })],
      /without repository_owner_id/,
    ],
    [
      "no repository or owner id",
      [rule({ match: { environment: "prod" } })],
      /must name repository_id or repository_owner_id/,
    ],
    [
      "an id that is not a number",
      [rule({ match: { repository_owner_id: "acme" } })],
      /repository_owner_id must be a number/,
    ],
    [
      "a claim it cannot match",
      [rule({ match: { repository_owner_id: "1", email: "x" } })],
      /match may name only these claims/,
    ],
    [
      "the admin scope",
      [rule({ name: "too much", scopes: ["admin"] })],
      /rule 1 \("too much"\) \(scopes.0\): scopes must be some of locks:read, locks:write, locks:force/,
    ],
    [
      "a bad namespace",
      [rule({}), rule({ name: "second", namespace: "Acme Corp" })],
      /rule 2 \("second"\) \(namespace\)/,
    ],
    ["an unknown field", [rule({ sopes: [] })], /rule 1 \("r"\): unknown field sopes/],
  ])("refuses %s, naming the rule", (_label, policy, message) => {
    expect(() => load(policy)).toThrow(ConfigError);
    expect(() => load(policy)).toThrow(message);
  });

  it("accepts {rules} or a bare array, with the issuer and audience", () => {
    const config = loadConfig({
      LSS_OIDC_POLICY: JSON.stringify([rule({})]),
      LSS_OIDC_ISSUER: "https://ghes.example.com/_services/token",
      LSS_OIDC_AUDIENCE: "https://lss.example.com",
    });
    expect(config.oidc).toMatchObject({
      issuer: "https://ghes.example.com/_services/token",
      audience: "https://lss.example.com",
      rules: [{ name: "r" }],
    });
    expect(loadConfig({}).oidc).toBeNull();
    const defaults = loadConfig({
      LSS_OIDC_POLICY: JSON.stringify({ rules: [rule({})] }),
      LSS_PUBLIC_URL: "https://lss.acme.example/some/path",
    });
    expect(defaults.oidc).toMatchObject({
      issuer: "https://token.actions.githubusercontent.com",
      // LSS_PUBLIC_URL's origin, as the action's default audience is its url input's origin.
      audience: "https://lss.acme.example",
    });
    expect(defaults.publicOrigin).toBe("https://lss.acme.example");
  });

  it("refuses a policy without a configured audience, naming the variables (never the request's origin)", () => {
    const policy = JSON.stringify([rule({})]);
    for (const runtime of ["node", "vercel", "workers"] as const) {
      const upstash = { UPSTASH_REDIS_REST_URL: "https://x.upstash.io", UPSTASH_REDIS_REST_TOKEN: "t" };
      expect(() => loadConfig({ ...upstash, LSS_OIDC_POLICY: policy }, runtime)).toThrow(
        /LSS_OIDC_POLICY is set, so set LSS_PUBLIC_URL .* or LSS_OIDC_AUDIENCE/,
      );
    }
    expect(() => loadConfig({ LSS_OIDC_POLICY_FILE: "/p.json" }, "node", () => policy)).toThrow(
      /LSS_OIDC_POLICY_FILE is set, so set LSS_PUBLIC_URL/,
    );
    expect(() => loadConfig({ LSS_OIDC_POLICY: policy, LSS_PUBLIC_URL: "lss.example.com" })).toThrow(
      /LSS_PUBLIC_URL must be the http\(s\) URL/,
    );
    expect(loadConfig({ LSS_OIDC_POLICY: policy, LSS_OIDC_AUDIENCE: "lss" }).oidc?.audience).toBe("lss");
  });

  it("on a Vercel production deployment, defaults to the production domain Vercel sets", () => {
    const env = {
      UPSTASH_REDIS_REST_URL: "https://x.upstash.io",
      UPSTASH_REDIS_REST_TOKEN: "t",
      LSS_OIDC_POLICY: JSON.stringify([rule({})]),
      VERCEL_PROJECT_PRODUCTION_URL: "lss-acme.vercel.app",
    };
    expect(loadConfig({ ...env, VERCEL_ENV: "production" }, "vercel").oidc?.audience).toBe(
      "https://lss-acme.vercel.app",
    );
    // A preview deployment, or the same variables on Node, must be told.
    expect(() => loadConfig({ ...env, VERCEL_ENV: "preview" }, "vercel")).toThrow(/set LSS_PUBLIC_URL/);
    expect(() => loadConfig({ ...env, VERCEL_ENV: "production" }, "node")).toThrow(/set LSS_PUBLIC_URL/);
  });

  it("reads LSS_OIDC_POLICY_FILE where there are files, and says which file it could not read", () => {
    const files: Record<string, string> = { "/etc/lss/policy.json": JSON.stringify([rule({})]) };
    const read = (path: string) => {
      const text = files[path];
      if (text === undefined) throw new Error("ENOENT: no such file");
      return text;
    };
    const url = { LSS_PUBLIC_URL: ORIGIN };
    expect(
      loadConfig({ ...url, LSS_OIDC_POLICY_FILE: "/etc/lss/policy.json" }, "node", read).oidc?.rules,
    ).toHaveLength(1);
    expect(() => loadConfig({ ...url, LSS_OIDC_POLICY_FILE: "/nope.json" }, "node", read)).toThrow(
      /LSS_OIDC_POLICY_FILE \(\/nope.json\) cannot be read: ENOENT/,
    );
    const upstash = { UPSTASH_REDIS_REST_URL: "https://x.upstash.io", UPSTASH_REDIS_REST_TOKEN: "t" };
    expect(() => loadConfig({ ...upstash, LSS_OIDC_POLICY_FILE: "/etc/lss/policy.json" }, "workers")).toThrow(
      /set LSS_OIDC_POLICY/,
    );
    expect(() =>
      loadConfig({ LSS_OIDC_POLICY_FILE: "/etc/lss/policy.json", LSS_OIDC_POLICY: "[]" }, "node", read),
    ).toThrow(/not both/);
    expect(() => loadConfig({ LSS_OIDC_ISSUER: "ftp://x" })).toThrow(
      /LSS_OIDC_ISSUER must be an http\(s\) URL/,
    );
  });
});

describe("the key ranges a restricted listing reads", () => {
  it.each([
    [["qa-*"], "", ["qa-"]],
    [["team/*/deploy", "shared"], "", ["shared", "team/"]],
    [["team/*/deploy"], "team/a", ["team/a"]],
    [["team/*/deploy"], "other", []],
    [["qa-*", "qa-1"], "", ["qa-"]],
    [["*-env"], "x", ["x"]],
    [["a", "ab", "b*"], "", ["a", "b"]],
  ])("%j with prefix %j: %j", (patterns, prefix, ranges) => {
    expect(literalRanges(patterns, prefix)).toEqual(ranges);
  });
});

describe("key patterns", () => {
  it.each([
    ["qa-*", "qa-1", true],
    ["qa-*", "qa-", true],
    ["qa-*", "prod", false],
    ["webapp/*", "webapp/deploy", true],
    ["webapp/*", "webapp", false],
    ["deploy", "deploy", true],
    ["deploy", "deploy-2", false],
    ["*-env", "qa-env", true],
    ["a*b*c", "a-b-c", true],
    ["a*b*c", "a-c", false],
    ["ab*ba", "aba", false],
  ])("%s matches %s: %s", (pattern, key, expected) => {
    expect(keyMatches(pattern, key)).toBe(expected);
  });
});

describe("a server with no OIDC policy", () => {
  const app = createApp({ store: createMemoryStore(), rateLimiter: null, config: testConfig() });
  const asBearer = (token: string) =>
    app.request(pathTo("status", { key: "qa-env" }), { headers: { Authorization: `Bearer ${token}` } });

  it("answers a workflow's ID token by naming the setting, not as an unknown token", async () => {
    const jwt = "eyJhbGciOiJSUzI1NiIsImtpZCI6IngifQ.eyJzdWIiOiJyZXBvOmFjbWUvd2ViIn0.c2lnbmF0dXJl";
    const res = await asBearer(jwt);
    expect(res.status).toBe(401);
    expect(res.headers.get("WWW-Authenticate")).toContain('error="invalid_token"');
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe("unauthorized");
    expect(body.error.message).toMatch(/^this server accepts no OIDC tokens: .*LSS_OIDC_POLICY/);
  });

  it("still answers any other unknown token as unknown", async () => {
    const body = (await (await asBearer("lss_0123456789abcdef_notasecret")).json()) as {
      error: { message: string };
    };
    expect(body.error.message).toBe("unknown or revoked token");
  });
});
