/**
 * The dashboard's sessions and scopes, in process (the browser suite, ui.test.ts, drives the pages
 * themselves): the cookie holds a session id, never the API token; over https it is a __Host-
 * cookie; signing out deletes the session in the store, so a copied cookie opens nothing; revoking
 * the token ends its sessions; a token without locks:read sees no listing, holder or history; a
 * locks:force token force-releases.
 */
import { describe, expect, it } from "vitest";
import { createMemoryStore } from "../server/stores/memory.js";
import { ADMIN_TOKEN, appOn, testConfig } from "./support/app.js";

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
    const res = await call("POST", "/admin/tokens", { namespace: "default", scopes, name: scopes.join("+") });
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
    expect(setCookie).toMatch(/^lss_ui=[\w-]{43}; Max-Age=43200; Path=\/ui; HttpOnly; SameSite=Strict$/);
    expect(setCookie).not.toContain(ADMIN_TOKEN);
    expect((await page("/ui", cookie)).status).toBe(200);
    // The API token itself as the cookie opens nothing (before: that was the cookie).
    expect((await page("/ui", `lss_ui=${ADMIN_TOKEN}`)).status).toBe(303);
  });

  it("is a __Host- cookie over https, and only that cookie opens a page there", async () => {
    const { signIn, page } = setUp();
    const { cookie, setCookie } = await signIn(ADMIN_TOKEN, "https://lss.example.com");
    expect(setCookie).toMatch(
      /^__Host-lss_ui=[\w-]{43}; Max-Age=43200; Path=\/; HttpOnly; Secure; SameSite=Strict$/,
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
    expect((await call("DELETE", `/admin/tokens/${minted.id}`)).status).toBe(200);
    expect((await page("/ui", cookie)).status).toBe(303);
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
      (await call("POST", "/infra/locks/secret-env/acquire", { ttl_ms: 60_000, holder_id: "hidden-job" }))
        .status,
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

  it("a refused form does not show the key to a token that may not read it", async () => {
    const { signIn, page, mint, call, csrfOf } = setUp();
    expect(
      (await call("POST", "/infra/locks/secret-env/acquire", { ttl_ms: 60_000, holder_id: "hidden-job" }))
        .status,
    ).toBe(200);
    const { cookie } = await signIn((await mint(["locks:write"])).token);
    // Its form token, from a page it may see (the 403 page carries the sign-out form).
    const csrf = await csrfOf("/ui", cookie);
    expect(csrf).toMatch(/^[0-9a-f]{64}$/);
    const res = await page("/ui/locks/secret-env", cookie, {
      method: "POST",
      body: new URLSearchParams({ csrf, action: "hold", duration: "nonsense" }),
    });
    expect(res.status).toBe(400);
    const text = await res.text();
    expect(text).toContain("Duration must be");
    expect(text).not.toContain("hidden-job");
  });

  it("with locks:force (and locks:read): the force release, which it may do", async () => {
    const { signIn, page, mint, call, csrfOf } = setUp();
    expect(
      (await call("POST", "/infra/locks/stuck/acquire", { ttl_ms: 60_000, holder_id: "dead-job" })).status,
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
    expect((await call("GET", "/infra/locks/stuck")).body.locked).toBe(false);
  });
});
