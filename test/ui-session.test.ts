/**
 * The dashboard's sessions and scopes, in process (the browser suite, ui.test.ts, drives the pages
 * themselves): the cookie holds a session id, never the API token; over https it is a __Host-
 * cookie; signing out deletes the session in the store, so a copied cookie opens nothing; revoking
 * the token ends its sessions; a token without locks:read sees no listing, holder or history; a
 * locks:force token force-releases.
 */
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApp } from "../server/app.js";
import { memoryRateLimiter } from "../server/auth/rate-limit.js";
import { createMemoryStore } from "../server/stores/memory.js";
import { redisKeys } from "../server/stores/redis/keys.js";
import { pathTo } from "../src/protocol/paths.js";
import { ADMIN_TOKEN, appOn, testConfig } from "./support/app.js";
import { type StoreBackends, startBackends } from "./support/stores.js";

const setUp = (config = testConfig({ tokenCacheMs: 0 })) => {
  const store = createMemoryStore();
  const { app, call } = appOn(store, config);
  const page = (path: string, cookie: string, init: RequestInit = {}) =>
    app.request(path, { ...init, headers: { cookie, ...(init.headers ?? {}) }, redirect: "manual" });
  /** Signs in; the cookie to send back ("name=value") and the Set-Cookie header as sent. */
  const signIn = async (token: string, origin = "http://localhost") => {
    const res = await app.request(`${origin}/ui/login`, {
      method: "POST",
      body: new URLSearchParams({ token }),
    });
    expect(res.status).toBe(303);
    const setCookie = res.headers.get("set-cookie") ?? "";
    return { cookie: setCookie.split(";")[0] ?? "", setCookie };
  };
  const mint = async (scopes: string[]) => {
    const res = await call("POST", pathTo("tokens"), {
      namespace: "default",
      scopes,
      name: scopes.join("+"),
    });
    expect(res.status).toBe(201);
    return res.body as { token: string; id: string };
  };
  /** The form token of a page (every page with a form has one). */
  const csrfOf = async (path: string, cookie: string) =>
    /name="csrf" value="([0-9a-f]{64})"/.exec(await (await page(path, cookie)).text())?.[1] ?? "";
  return { app, call, page, signIn, mint, csrfOf, store };
};

describe("the session cookie", () => {
  it("holds a session id, never the API token", async () => {
    const { signIn, page } = setUp();
    const { cookie, setCookie } = await signIn(ADMIN_TOKEN);
    expect(setCookie).toMatch(
      /^lss_ui=admin\.[\w-]{43}; Max-Age=43200; Path=\/ui; HttpOnly; SameSite=Strict$/,
    );
    expect(setCookie).not.toContain(ADMIN_TOKEN);
    expect((await page("/ui", cookie)).status).toBe(200);
    // The API token itself as the cookie opens nothing (before: that was the cookie).
    expect((await page("/ui", `lss_ui=${ADMIN_TOKEN}`)).status).toBe(303);
  });

  it("is a __Host- cookie over https, and only that cookie opens a page there", async () => {
    const { signIn, page } = setUp();
    const { cookie, setCookie } = await signIn(ADMIN_TOKEN, "https://lss.example.com");
    expect(setCookie).toMatch(
      /^__Host-lss_ui=admin\.[\w-]{43}; Max-Age=43200; Path=\/; HttpOnly; Secure; SameSite=Strict$/,
    );
    expect((await page("https://lss.example.com/ui", cookie)).status).toBe(200);
    // The same id without the prefix (a cookie any subdomain or plain-http page could plant).
    const planted = cookie.replace("__Host-lss_ui", "lss_ui");
    expect((await page("https://lss.example.com/ui", planted)).status).toBe(303);
  });

  it("is worth nothing after sign-out, wherever it was copied", async () => {
    const { signIn, page, csrfOf } = setUp();
    const { cookie } = await signIn(ADMIN_TOKEN);
    const copy = cookie;
    const csrf = await csrfOf("/ui/locks/qa", cookie);
    const out = await page("/ui/logout", cookie, { method: "POST", body: new URLSearchParams({ csrf }) });
    expect(out.status).toBe(303);
    expect(out.headers.get("set-cookie")).toMatch(/^lss_ui=; Max-Age=0/);
    // Before: the cookie was the token, and stayed as good as the token.
    expect((await page("/ui", copy)).status).toBe(303);
    expect((await page("/ui/fragment/locks", copy)).status).toBe(401);
  });

  it("ends when its token is revoked", async () => {
    const { signIn, page, mint, call } = setUp();
    const minted = await mint(["locks:read"]);
    const { cookie } = await signIn(minted.token);
    expect((await page("/ui", cookie)).status).toBe(200);
    expect((await call("DELETE", pathTo("token", { id: minted.id }))).status).toBe(200);
    expect((await page("/ui", cookie)).status).toBe(303);
  });

  it("are at most 20 a token, however often it signs in: the oldest end first", async () => {
    const { signIn, page, mint, store } = setUp();
    const minted = await mint(["locks:read"]);
    const first = await signIn(minted.token);
    const cookies = [first.cookie];
    for (let i = 0; i < 59; i++) cookies.push((await signIn(minted.token)).cookie);
    // Before: every sign-in kept a session for 12 h.
    expect(store.command("HLEN", `mem:sessions:${minted.id}`)).toBe(20);
    expect((await page("/ui", first.cookie)).status).toBe(303);
    expect((await page("/ui", cookies.at(-1) as string)).status).toBe(200);
  });

  it("count sign-ins against the token's rate limit", async () => {
    const store = createMemoryStore();
    const app = createApp({
      store,
      rateLimiter: memoryRateLimiter(3),
      config: testConfig({ rateLimitPerMinute: 3 }),
    });
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await app.request("/ui/login", {
        method: "POST",
        body: new URLSearchParams({ token: ADMIN_TOKEN }),
      });
      statuses.push(res.status);
    }
    expect(statuses).toEqual([303, 303, 303, 429, 429]);
    expect(store.command("HLEN", "mem:sessions:admin")).toBe(3);
  });

  it("is refused to a workflow's OIDC token or any other bearer", async () => {
    const { app } = setUp();
    const res = await app.request("/ui/login", {
      method: "POST",
      body: new URLSearchParams({ token: "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln" }),
    });
    expect(res.status).toBe(401);
    expect(res.headers.get("set-cookie")).toBeNull();
  });
});

describe("what a token's scopes show on the dashboard", () => {
  it("without locks:read: no listing, holder or history, as a page or a live update", async () => {
    const { signIn, page, mint, call } = setUp();
    expect(
      (
        await call("POST", pathTo("acquire", { key: "secret-env" }), {
          ttl_ms: 60_000,
          holder_id: "hidden-job",
        })
      ).status,
    ).toBe(200);
    const { cookie } = await signIn((await mint(["locks:write"])).token);
    for (const path of ["/ui", "/ui/fragment/locks", "/ui/locks/secret-env", "/ui/fragment/key/secret-env"]) {
      const res = await page(path, cookie);
      expect(res.status, path).toBe(403);
      const text = await res.text();
      expect(text, path).toContain("locks:read");
      expect(text, path).not.toContain("hidden-job");
    }
  });

  it("refuses a form of a token that may not read, showing nothing of the key", async () => {
    const { signIn, page, mint, call, csrfOf } = setUp();
    expect(
      (
        await call("POST", pathTo("acquire", { key: "secret-env" }), {
          ttl_ms: 60_000,
          holder_id: "hidden-job",
        })
      ).status,
    ).toBe(200);
    for (const scopes of [["locks:write"], ["locks:force"]]) {
      const { cookie } = await signIn((await mint(scopes)).token);
      // Its form token, from the page it may see (the 403 page carries the sign-out form).
      const csrf = await csrfOf("/ui", cookie);
      expect(csrf).toMatch(/^[0-9a-f]{64}$/);
      const forms: Array<Record<string, string>> = [
        { action: "hold", duration: "nonsense" },
        { action: "force", confirm: "yes" },
      ];
      for (const form of forms) {
        const res = await page("/ui/locks/secret-env", cookie, {
          method: "POST",
          body: new URLSearchParams({ csrf, ...form }),
        });
        expect(res.status, `${scopes} ${form.action}`).toBe(403);
        const text = await res.text();
        expect(text).toContain("locks:read");
        // Before: a refused form came back as the key page, holder and history included; a
        // force-only token's force read "Done." while the key stayed held.
        expect(text).not.toContain("hidden-job");
        expect(text).not.toContain("Done.");
      }
    }
    expect((await call("GET", pathTo("status", { key: "secret-env" }))).body).toMatchObject({
      locked: true,
      holder_id: "hidden-job",
    });
  });

  it("with locks:force (and locks:read): the force release, which it may do", async () => {
    const { signIn, page, mint, call, csrfOf } = setUp();
    expect(
      (await call("POST", pathTo("acquire", { key: "stuck" }), { ttl_ms: 60_000, holder_id: "dead-job" }))
        .status,
    ).toBe(200);
    const { cookie } = await signIn((await mint(["locks:read", "locks:force"])).token);
    const keyPage = await (await page("/ui/locks/stuck?confirm=force", cookie)).text();
    expect(keyPage).toContain("Yes, force release");
    const csrf = await csrfOf("/ui/locks/stuck", cookie);
    const res = await page("/ui/locks/stuck", cookie, {
      method: "POST",
      body: new URLSearchParams({ csrf, action: "force", confirm: "yes" }),
    });
    // Before: "needs a token with the admin scope".
    expect(res.status).toBe(303);
    expect((await call("GET", pathTo("status", { key: "stuck" }))).body.locked).toBe(false);
  });
});

describe.each(["redis", "upstash"] as const)("sessions kept on %s", (kind) => {
  let backends: StoreBackends;
  let redis: Redis;
  beforeAll(async () => {
    backends = await startBackends([kind]);
    redis = new Redis(backends.redis!.url);
  });
  afterAll(async () => {
    redis.disconnect();
    await backends.close();
  });

  it("the newest 20 a token, gone at sign-out, a hash of the id as their name and no token in them", async () => {
    const prefix = `sessions-${kind}`;
    const { app } = appOn(backends.open(kind, { prefix }), testConfig({ tokenCacheMs: 0 }));
    const signIn = async () => {
      const res = await app.request("/ui/login", {
        method: "POST",
        body: new URLSearchParams({ token: ADMIN_TOKEN }),
      });
      return res.headers.get("set-cookie")?.split(";")[0] ?? "";
    };
    const cookies: string[] = [];
    for (let i = 0; i < 25; i++) cookies.push(await signIn());
    const hash = redisKeys(prefix).session("admin");
    expect(await redis.hlen(hash)).toBe(20);
    expect(JSON.stringify(await redis.hgetall(hash))).not.toContain(ADMIN_TOKEN);
    expect(await redis.pttl(hash)).toBeGreaterThan(11 * 3600 * 1000);
    const open = (cookie: string) => app.request("/ui", { headers: { cookie }, redirect: "manual" });
    expect((await open(cookies[0] as string)).status).toBe(303);
    const last = cookies.at(-1) as string;
    expect((await open(last)).status).toBe(200);
    const page = await (await open(last)).text();
    const csrf = /name="csrf" value="([0-9a-f]{64})"/.exec(page)?.[1] ?? "";
    const out = await app.request("/ui/logout", {
      method: "POST",
      headers: { cookie: last },
      body: new URLSearchParams({ csrf }),
      redirect: "manual",
    });
    expect(out.status).toBe(303);
    expect(await redis.hlen(hash)).toBe(19);
    expect((await open(last)).status).toBe(303);
  });
});

describe("the hold form's duration", () => {
  /** Holds `key` for `duration` through the form; the answer and the lease's time left. */
  const hold = async (key: string, duration: string, maxTtlMs = 86_400_000) => {
    const { signIn, page, csrfOf, call } = setUp(testConfig({ tokenCacheMs: 0, maxTtlMs }));
    const { cookie } = await signIn(ADMIN_TOKEN);
    const csrf = await csrfOf(`/ui/locks/${key}`, cookie);
    const res = await page(`/ui/locks/${key}`, cookie, {
      method: "POST",
      body: new URLSearchParams({ csrf, shown_namespace: "default", action: "hold", duration }),
    });
    const status = (await call("GET", pathTo("status", { key }))).body as { expires_at: string | null };
    const leftMs = status.expires_at ? Date.parse(status.expires_at) - Date.now() : null;
    return { status: res.status, text: res.status === 303 ? "" : await res.text(), leftMs };
  };

  it("reads a plain number as seconds, as the protocol and the CLI do (it read minutes)", async () => {
    const held = await hold("plain", "90");
    expect(held.status).toBe(303);
    expect(held.leftMs).toBeGreaterThan(80_000);
    expect(held.leftMs).toBeLessThanOrEqual(90_000);
  });

  it("takes s, m, h and d", async () => {
    for (const [duration, ms] of [
      ["45s", 45_000],
      ["30m", 1_800_000],
      ["4h", 14_400_000],
      ["1d", 86_400_000],
    ] as const) {
      const held = await hold(`unit-${duration}`, duration);
      expect(held.status, duration).toBe(303);
      expect(held.leftMs, duration).toBeGreaterThan(ms - 10_000);
      expect(held.leftMs, duration).toBeLessThanOrEqual(ms);
    }
  });

  it("refuses what is not a duration, under a second, or past LSS_MAX_TTL_MS, and holds nothing", async () => {
    const cases = [
      ["nonsense", "Duration must be a number of seconds, or a number with s, m, h or d"],
      ["1.5h", "Duration must be a number of seconds, or a number with s, m, h or d"],
      ["10 minutes", "Duration must be a number of seconds, or a number with s, m, h or d"],
      ["0", "Duration must be at least 1 second."],
      ["2h", "Duration must be at most 1h (the server&#39;s LSS_MAX_TTL_MS)."],
    ] as const;
    for (const [duration, message] of cases) {
      const refused = await hold("refused", duration, 3_600_000);
      expect(refused.status, duration).toBe(400);
      expect(refused.text, duration).toContain(message);
      expect(refused.leftMs, duration).toBeNull();
    }
  });
});
