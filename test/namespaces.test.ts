/**
 * An admin reaches every namespace: the API's LSS-Namespace header, the client's `namespace`, the
 * CLI's --namespace, and the dashboard's namespace switch. Any other token naming a namespace not
 * its own is refused, never quietly sent to its own; a malformed name is a 400 naming the rule.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createMemoryStore } from "../server/stores/memory.js";
import { createClient } from "../src/client/index.js";
import { NAMESPACE_HEADER } from "../src/protocol/namespace.js";
import { pathTo } from "../src/protocol/paths.js";
import { type LiveServer, startLiveServer } from "./support/action-e2e.js";
import { ADMIN_TOKEN, appOn, expectError, request, testConfig } from "./support/app.js";
import { startCli } from "./support/cli.js";

const setUp = () => {
  const { app, call } = appOn(createMemoryStore(), testConfig({ tokenCacheMs: 0 }));
  const mint = async (namespace: string, scopes: string[]) => {
    const res = await call("POST", pathTo("tokens"), { namespace, scopes, name: `${namespace} ${scopes}` });
    expect(res.status).toBe(201);
    return res.body.token as string;
  };
  /** A request with a bearer token, in `namespace` when given. */
  const as = (token: string, namespace?: string) => (method: string, path: string, json?: unknown) =>
    request(app, method, path, {
      json,
      auth: `Bearer ${token}`,
      headers: namespace === undefined ? {} : { [NAMESPACE_HEADER]: namespace },
    });
  return { app, mint, as };
};

const acquire = { ttl_ms: 60_000, holder_id: "acme CI", token: "acme-ci-lease-token" };

describe("the API's LSS-Namespace header", () => {
  it("lets the admin token see, list and force-release another namespace's lock", async () => {
    const { mint, as } = setUp();
    const acme = as(await mint("acme", ["locks:read", "locks:write"]));
    expect((await acme("POST", pathTo("acquire", { key: "qa-env" }), acquire)).status).toBe(200);

    // Without the header the admin acts in its own namespace, where qa-env is free.
    expect((await as(ADMIN_TOKEN)("GET", pathTo("status", { key: "qa-env" }))).body.locked).toBe(false);
    const admin = as(ADMIN_TOKEN, "acme");
    expect((await admin("GET", pathTo("status", { key: "qa-env" }))).body).toMatchObject({
      locked: true,
      holder_id: "acme CI",
    });
    const listed = await admin("GET", pathTo("list"));
    expect(listed.body.locks.map((l: { key: string }) => l.key)).toEqual(["qa-env"]);
    const forced = await admin("POST", pathTo("release", { key: "qa-env" }), { force: true });
    expect(forced.status, forced.text).toBe(200);
    expect((await acme("GET", pathTo("status", { key: "qa-env" }))).body.locked).toBe(false);
    // The key's history names the admin as the actor of the forced release.
    const history = await acme("GET", pathTo("history", { key: "qa-env" }));
    expect(history.body.events[0]).toMatchObject({ event: "forced_release", actor: { token_id: "admin" } });
  });

  it("works for a minted token with the admin scope too", async () => {
    const { mint, as } = setUp();
    const acme = as(await mint("acme", ["locks:read", "locks:write"]));
    await acme("POST", pathTo("acquire", { key: "deploy" }), acquire);
    const ops = as(await mint("ops", ["admin", "locks:read"]), "acme");
    expect((await ops("GET", pathTo("status", { key: "deploy" }))).body.locked).toBe(true);
  });

  it("refuses any other token naming another namespace, and changes nothing", async () => {
    const { mint, as } = setUp();
    const token = await mint("acme", ["locks:read", "locks:write", "locks:force"]);
    const res = await as(token, "default")("POST", pathTo("acquire", { key: "qa-env" }), acquire);
    expectError(res, 403, "forbidden", [/namespace acme/, /admin scope/, /LSS-Namespace: default/]);
    expect((await as(ADMIN_TOKEN)("GET", pathTo("status", { key: "qa-env" }))).body.locked).toBe(false);
    expect((await as(token)("GET", pathTo("status", { key: "qa-env" }))).body.locked).toBe(false);
    // Its own namespace, named, is where it is anyway.
    expect((await as(token, "acme")("POST", pathTo("acquire", { key: "qa-env" }), acquire)).status).toBe(200);
  });

  it("refuses an anonymous caller of the open /locks API naming a namespace", async () => {
    const { app } = setUp();
    const res = await request(app, "POST", "/locks?l=true", {
      auth: null,
      headers: { [NAMESPACE_HEADER]: "default" },
    });
    expectError(
      res,
      403,
      "forbidden",
      /this server's \/locks API is open: it takes no token and acts in namespace open/,
    );
  });

  it.each(["Acme", "-acme", "a".repeat(64), "acme/web", "ac me"])(
    "refuses the malformed name %j with 400",
    async (name) => {
      const { as } = setUp();
      const res = await as(ADMIN_TOKEN, name)("GET", pathTo("status", { key: "qa-env" }));
      expectError(res, 400, "bad_request", /LSS-Namespace must be 1–63 lowercase letters/);
    },
  );
});

describe("the dashboard's namespace switch", () => {
  /** Signed in to a new app as the admin, or as a token of acme with `scopes`. */
  const signedIn = async (scopes: string[] | "admin", origin = "http://localhost") => {
    const { app, mint, as } = setUp();
    const token = scopes === "admin" ? ADMIN_TOKEN : await mint("acme", scopes);
    const login = await app.request(`${origin}/ui/login`, {
      method: "POST",
      body: new URLSearchParams({ token }),
    });
    expect(login.status).toBe(303);
    let cookies = [(login.headers.get("set-cookie") ?? "").split(";")[0] as string];
    const page = (path: string, init: RequestInit = {}) =>
      app.request(`${origin}${path}`, {
        ...init,
        headers: { cookie: cookies.join("; ") },
        redirect: "manual",
      });
    const csrf = async () =>
      /name="csrf" value="([0-9a-f]{64})"/.exec(await (await page("/ui")).text())?.[1] ?? "";
    const post = async (path: string, fields: Record<string, string>) =>
      page(path, { method: "POST", body: new URLSearchParams({ csrf: await csrf(), ...fields }) });
    const keep = (res: Response) => {
      for (const c of res.headers.getSetCookie()) {
        const pair = c.split(";")[0] as string;
        cookies = [...cookies.filter((k) => k.split("=")[0] !== pair.split("=")[0]), pair];
      }
      return res;
    };
    return { app, mint, as, page, post, keep, cookies: () => cookies };
  };

  it("moves every page of an admin to the namespace it names, and sign-out ends it", async () => {
    const ui = await signedIn("admin");
    const acme = ui.as(await ui.mint("acme", ["locks:read", "locks:write"]));
    await acme("POST", pathTo("acquire", { key: "qa-env" }), acquire);
    expect(await (await ui.page("/ui")).text()).not.toContain("qa-env");

    const switched = ui.keep(await ui.post("/ui/namespace", { namespace: "acme" }));
    expect(switched.status).toBe(303);
    expect(switched.headers.get("set-cookie")).toMatch(
      /^lss_ui_ns=acme; Max-Age=43200; Path=\/ui; HttpOnly; SameSite=Strict/,
    );
    const list = await (await ui.page("/ui")).text();
    expect(list).toContain("Locks in <code>acme</code>");
    expect(list).toContain("qa-env");
    // A force release from the key page frees acme's lock.
    const forced = await ui.post(`/ui/locks/qa-env`, {
      shown_namespace: "acme",
      action: "force",
      confirm: "yes",
    });
    expect(forced.status).toBe(303);
    expect((await acme("GET", pathTo("status", { key: "qa-env" }))).body.locked).toBe(false);

    const out = await ui.post("/ui/logout", {});
    expect(out.headers.getSetCookie().some((c) => /^lss_ui_ns=; Max-Age=0/.test(c))).toBe(true);
  });

  it("refuses a form of a page shown for the namespace switched away from (another tab), changing nothing", async () => {
    const ui = await signedIn("admin");
    const acme = ui.as(await ui.mint("acme", ["locks:read", "locks:write"]));
    await acme("POST", pathTo("acquire", { key: "qa-env" }), acquire);
    ui.keep(await ui.post("/ui/namespace", { namespace: "acme" }));
    // The tab still shows acme's qa-env; another tab switches back to default.
    ui.keep(await ui.post("/ui/namespace", { namespace: "default" }));
    const res = await ui.post("/ui/locks/qa-env", {
      shown_namespace: "acme",
      action: "force",
      confirm: "yes",
    });
    expect(res.status).toBe(409);
    expect(await res.text()).toContain(
      "This page showed namespace acme, but the dashboard now acts in default",
    );
    expect((await acme("GET", pathTo("status", { key: "qa-env" }))).body.locked).toBe(true);
  });

  it("stops the live update of a page shown for the namespace switched away from", async () => {
    const ui = await signedIn("admin");
    ui.keep(await ui.post("/ui/namespace", { namespace: "acme" }));
    const live = (shown: string) =>
      ui.app.request("http://localhost/ui/fragment/locks", {
        headers: { cookie: ui.cookies().join("; "), "LSS-Shown-Namespace": shown },
      });
    expect((await live("acme")).status).toBe(200);
    const stale = await live("default");
    expect(stale.status).toBe(409);
    expect(await stale.text()).toBe(
      "This page showed namespace default; the dashboard now acts in acme: reload the page.",
    );
    // Every page tells its script what it showed.
    expect(await (await ui.page("/ui")).text()).toContain('<main id="main" data-namespace="acme">');
  });

  it("starts every new sign-in in the token's own namespace", async () => {
    const ui = await signedIn("admin");
    ui.keep(await ui.post("/ui/namespace", { namespace: "acme" }));
    const again = await ui.app.request("http://localhost/ui/login", {
      method: "POST",
      headers: { cookie: ui.cookies().join("; ") },
      body: new URLSearchParams({ token: ADMIN_TOKEN }),
    });
    expect(again.status).toBe(303);
    expect(again.headers.getSetCookie().some((c) => /^lss_ui_ns=; Max-Age=0/.test(c))).toBe(true);
  });

  it("is a __Host- cookie over https", async () => {
    const ui = await signedIn("admin", "https://lss.example.com");
    const switched = await ui.post("/ui/namespace", { namespace: "acme" });
    expect(switched.headers.get("set-cookie")).toMatch(
      /^__Host-lss_ui_ns=acme; Max-Age=43200; Path=\/; HttpOnly; Secure/,
    );
  });

  it("is refused to a token without the admin scope, and a planted cookie moves it nowhere", async () => {
    const ui = await signedIn(["locks:read", "locks:write", "locks:force"]);
    const refused = await ui.post("/ui/namespace", { namespace: "default" });
    expect(refused.status).toBe(403);
    expect(await refused.text()).toContain("Only a token with the admin scope");
    const planted = await ui.app.request("http://localhost/ui", {
      headers: { cookie: `${ui.cookies().join("; ")}; lss_ui_ns=default` },
    });
    expect(planted.status).toBe(200);
    expect(await planted.text()).toContain("Locks in <code>acme</code>");
  });

  it("names the rule for a malformed namespace, and keeps the one in use", async () => {
    const ui = await signedIn("admin");
    const res = await ui.post("/ui/namespace", { namespace: "Not A Namespace" });
    expect(res.status).toBe(400);
    expect(await res.text()).toContain("1–63 lowercase letters");
    expect(res.headers.get("set-cookie")).toBeNull();
    expect(await (await ui.page("/ui")).text()).toContain("Locks in <code>default</code>");
  });
});

describe("the client's namespace and the CLI's --namespace", () => {
  let server: LiveServer;
  beforeAll(async () => {
    server = await startLiveServer();
  });
  afterAll(() => server.close());

  it("reach another namespace with the admin token", async () => {
    const acmeAdmin = createClient({ url: server.url, token: ADMIN_TOKEN, namespace: "acme" });
    await acmeAdmin.acquire("nightly", { ttlMs: 60_000, holderId: "cron on db-1" });
    expect((await createClient({ url: server.url, token: ADMIN_TOKEN }).status("nightly")).locked).toBe(
      false,
    );
    expect((await acmeAdmin.status("nightly")).locked).toBe(true);

    const cli = (args: string[], env: Record<string, string> = {}) =>
      startCli(args, { url: server.url, token: ADMIN_TOKEN, env }).done;
    const flag = await cli(["status", "nightly", "--namespace", "acme", "--json"]);
    expect(flag.code, flag.stderr).toBe(0);
    expect(JSON.parse(flag.stdout)).toMatchObject({ locked: true, holder_id: "cron on db-1" });
    const fromEnv = await cli(["status", "nightly", "--json"], { LSS_NAMESPACE: "acme" });
    expect(JSON.parse(fromEnv.stdout)).toMatchObject({ locked: true });
    const own = await cli(["status", "nightly", "--json"]);
    expect(JSON.parse(own.stdout)).toMatchObject({ locked: false });
    const malformed = await cli(["status", "nightly", "--namespace", "Acme"]);
    expect(malformed.code).toBe(64);
    expect(malformed.stderr).toContain("--namespace must be 1–63 lowercase letters");
    expect(() =>
      createClient({ url: server.url, token: ADMIN_TOKEN, namespace: "acme\r\nX-Evil: 1" }),
    ).toThrow(/namespace must be 1–63 lowercase letters/);
  }, 30_000);
});
