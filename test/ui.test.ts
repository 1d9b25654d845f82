/**
 * The dashboard at /ui in a real browser (chromium through playwright-core) against the app on the
 * memory store: signing in, the live list, holding and releasing from a key's page, history, what
 * a read-only token sees, the admin's force release and its confirmation, CSRF, the cookie, a
 * phone's viewport and the keyboard. Plus, in process: /docs and the dashboard load nothing from
 * another site. The list and key pages are photographed into docs/screenshots/.
 */
import { mkdirSync, mkdtempSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createMemoryStore } from "../server/stores/memory.js";
import { pathTo } from "../src/protocol/paths.js";
import { ADMIN_TOKEN, appOn } from "./support/app.js";
import { hasChromium, launchBrowser, type Served, serveApp } from "./support/browser.js";
import { sleep } from "./support/processes.js";

// The browser's globals, as the functions given to page.evaluate see them there (the project is
// type-checked without the DOM library).
// biome-ignore lint/suspicious/noExplicitAny: objects of the page, inspected field by field
type InPage = any;
declare const window: InPage;
declare const document: InPage;
declare const location: InPage;
declare const getComputedStyle: (el: InPage) => InPage;
type Element = InPage;
type HTMLInputElement = InPage;

// The README's screenshots are rewritten with UPDATE_SCREENSHOTS=1; otherwise they go to a
// temporary folder, so that a test run leaves the checkout as it was.
const SCREENSHOTS =
  process.env.UPDATE_SCREENSHOTS === "1"
    ? fileURLToPath(new URL("../docs/screenshots/", import.meta.url))
    : `${mkdtempSync(join(tmpdir(), "lss-screenshots-"))}/`;
const RUN = "https://github.com/acme/web/actions/runs/9912345678";

const { app, call } = appOn(createMemoryStore());
const statusOf = async (key: string, token = ADMIN_TOKEN) =>
  (await call("GET", pathTo("status", { key }), undefined, token)).body;
const acquire = async (key: string, body: Record<string, unknown>) => {
  const res = await call("POST", pathTo("acquire", { key }), body);
  expect(res.status).toBe(200);
  return res.body;
};
const keyPath = (key: string) => `/ui/locks/${encodeURIComponent(key)}`;

/** No CDN: every script and stylesheet of a page comes from this app. */
const externalAssets = (html: string) =>
  [
    ...html.matchAll(
      /<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)\s*=\s*["']?((?:https?:)?\/\/[^"'\s>]+)/gi,
    ),
  ].map((m) => m[1]);

it("the service's root names the dashboard beside the docs", async () => {
  const root = (await (await app.request("/")).json()) as Record<string, string>;
  expect(root).toMatchObject({ service: "lss", docs: "/docs", dashboard: "/ui" });
});

describe("a body that is no form", () => {
  it.each([
    ["/ui/login", false],
    ["/ui/logout", true],
    ["/ui/locks/qa-env", true],
  ])("POST %s with a broken multipart body: 400 saying so, never a 500", async (path, withCookie) => {
    const signedIn = await app.request("/ui/login", {
      method: "POST",
      body: new URLSearchParams({ token: ADMIN_TOKEN }),
    });
    const cookie = signedIn.headers.get("set-cookie")?.split(";")[0] ?? "";
    const res = await app.request(path, {
      method: "POST",
      headers: {
        "Content-Type": "multipart/form-data; boundary=x",
        ...(withCookie ? { Cookie: cookie } : {}),
      },
      body: "{",
    });
    expect(res.status).toBe(400);
    expect(await res.text()).toContain("body is not a form this page sent");
  });
});

describe("no asset from another site", () => {
  it("serves /docs as a page of its own, built from the OpenAPI document, with no external script or stylesheet", async () => {
    const res = await app.request("/docs");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/html");
    const html = await res.text();
    expect(externalAssets(html)).toEqual([]);
    expect(html).not.toMatch(/<script\b/i);
    // Every operation of the document, with its summary, parameters and schemas.
    const doc = (await (await app.request("/openapi.json")).json()) as {
      paths: Record<string, Record<string, { summary?: string }>>;
    };
    for (const [path, item] of Object.entries(
      doc.paths as Record<string, Record<string, { summary?: string }>>,
    )) {
      for (const [method, op] of Object.entries(item)) {
        expect(html).toContain(`${method.toUpperCase()}</span> <code>${path}</code>`);
        if (op.summary) expect(html).toContain(op.summary.replaceAll("'", "&#39;").slice(0, 40));
      }
    }
    expect(html).toContain("ttl_ms: integer (1–86400000)");
    expect(html).toContain("wait_ms");
    expect(html).toContain('href="/openapi.json"');
  });

  it("serves /ui/login and the signed-in pages with scripts and styles from the app only", async () => {
    const login = await app.request("/ui/login");
    expect(login.status).toBe(200);
    const html = await login.text();
    expect(externalAssets(html)).toEqual([]);
    const assets = [...html.matchAll(/(?:src|href)="(\/ui\/assets\/[^"]+)"/g)].map((m) => m[1] as string);
    expect(assets).toHaveLength(2);
    for (const asset of assets) expect((await app.request(asset)).status).toBe(200);
    expect(login.headers.get("content-security-policy")).toContain("script-src 'self'");

    const signedIn = await app.request("/ui/login", {
      method: "POST",
      body: new URLSearchParams({ token: ADMIN_TOKEN }),
    });
    const cookie = signedIn.headers.get("set-cookie")?.split(";")[0] ?? "";
    const list = await app.request("/ui", { headers: { cookie } });
    expect(list.status).toBe(200);
    expect(externalAssets(await list.text())).toEqual([]);
  });
});

// Without a browser these tests are not skipped unless asked: a green run must have run them.
const skipBrowser = process.env.LSS_SKIP_BROWSER === "1";
it.runIf(!skipBrowser && !hasChromium())("needs Debian's chromium at /usr/bin/chromium", () => {
  expect.fail(
    "install it (apt-get install chromium; .ci/run does), or set LSS_SKIP_BROWSER=1 to skip these tests",
  );
});

describe.skipIf(skipBrowser || !hasChromium())("the dashboard in a browser", () => {
  let browser: Browser;
  let server: Served;
  let base: string;
  let admin: BrowserContext;
  let page: Page;
  /** Every URL any page of the test asked for. */
  const visited: string[] = [];
  /** Every API token used to sign in. */
  const secrets: string[] = [ADMIN_TOKEN];

  const newContext = async (opts: Parameters<Browser["newContext"]>[0] = {}) => {
    const context = await browser.newContext({ timezoneId: "Asia/Tokyo", locale: "en-US", ...opts });
    context.on("request", (r) => visited.push(r.url()));
    return context;
  };

  const signIn = async (p: Page, token: string) => {
    await p.goto(`${base}/ui`);
    expect(new URL(p.url()).pathname).toBe("/ui/login");
    await p.getByLabel("API token").fill(token);
    await p.getByRole("button", { name: "Sign in" }).click();
  };

  /** Mint a token of the default namespace through the admin API. */
  const mint = async (scopes: string[], name: string) => {
    const res = await call("POST", pathTo("tokens"), { namespace: "default", scopes, name });
    expect(res.status).toBe(201);
    secrets.push(res.body.token);
    return res.body.token as string;
  };

  beforeAll(async () => {
    [browser, server] = await Promise.all([launchBrowser(), serveApp(app.fetch)]);
    base = server.url;
    admin = await newContext({ viewport: { width: 1280, height: 800 } });
    page = await admin.newPage();
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  it("signs in with an API token", async () => {
    await signIn(page, ADMIN_TOKEN);
    await page.waitForURL(`${base}/ui`);
    await expect(page.getByRole("heading", { level: 1 }).textContent()).resolves.toBe("Locks in default");
    await expect(page.locator("header .who").textContent()).resolves.toContain("signed in as admin");
  });

  it("shows a lock taken through the API in the list without a reload, with its run link and local times", async () => {
    await page.goto(`${base}/ui`);
    await page.evaluate(() => {
      (window as unknown as { notReloaded: boolean }).notReloaded = true;
    });
    await acquire("deploy/prod", {
      ttl_ms: 3_600_000,
      holder_id: `acme/web · deploy · ${RUN}`,
      reason: "release 4.2",
    });
    const row = page.locator('tr[data-key="deploy/prod"]');
    await row.waitFor({ timeout: 10_000 });
    expect(await page.evaluate(() => (window as unknown as { notReloaded?: boolean }).notReloaded)).toBe(
      true,
    );
    await expect(row.locator('[data-label="State"]').textContent()).resolves.toBe("held");
    await expect(row.locator('[data-label="Reason"]').textContent()).resolves.toBe("release 4.2");
    await expect(row.getByRole("link", { name: "run" }).getAttribute("href")).resolves.toBe(RUN);
    const left = await row.locator('[data-label="Time left"]').textContent();
    expect(left).toMatch(/^(59m \d\ds|1h 00m)$/);
    // The time is shown in the viewer's zone (Tokyo here), the UTC text kept as its title.
    const since = row.locator("time");
    await expect(since.getAttribute("title")).resolves.toMatch(/ UTC$/);
    const iso = (await since.getAttribute("datetime")) ?? "";
    const tokyo = new Date(iso).toLocaleString("en-US", { timeZone: "Asia/Tokyo" });
    await expect(since.textContent()).resolves.toBe(tokyo);
    await expect(page.locator("#live-status").textContent()).resolves.toContain("updated");

    // The prefix filter and its live rows.
    await acquire("qa-1", { ttl_ms: 600_000, holder_id: "e2e" });
    await page.getByLabel("Key prefix").fill("qa-");
    await page.getByRole("button", { name: "Filter" }).click();
    await page.waitForURL(`${base}/ui?prefix=qa-`);
    await expect(page.locator("tbody#locks tr").count()).resolves.toBe(1);
    await expect(page.locator("tbody#locks tr").getAttribute("data-key")).resolves.toBe("qa-1");
  });

  it("pages through the list with the listing's cursor", async () => {
    await Promise.all(
      Array.from({ length: 55 }, (_, i) =>
        acquire(`page/${String(i).padStart(2, "0")}`, { ttl_ms: 600_000, holder_id: "bulk" }),
      ),
    );
    await page.goto(`${base}/ui?prefix=page%2F`);
    await expect(page.locator("tbody#locks tr").count()).resolves.toBe(50);
    await page.getByRole("link", { name: "Next page" }).click();
    await page.waitForURL(/cursor=/);
    const keys = await page.locator("tbody#locks tr").evaluateAll((rows) => rows.map((r) => r.dataset.key));
    expect(keys).toEqual(["page/50", "page/51", "page/52", "page/53", "page/54"]);
    await expect(page.getByRole("link", { name: "Next page" }).count()).resolves.toBe(0);
  });

  it("holds a key from its page, and the API reports it held with the reason", async () => {
    await page.goto(`${base}/ui`);
    await page.goto(`${base}${keyPath("qa-env/eu")}`);
    await expect(page.getByRole("heading", { level: 1 }).textContent()).resolves.toBe("qa-env/eu");
    await page.getByLabel("Duration").fill("2h");
    await page.getByLabel("Reason").fill("QA manual testing");
    await page.getByRole("button", { name: "Hold", exact: true }).click();
    await page.waitForURL(/done=held/);
    await expect(page.getByRole("status").first().textContent()).resolves.toBe("You hold this key now.");
    const status = await statusOf("qa-env/eu");
    expect(status).toMatchObject({ locked: true, holder_id: "dashboard:admin", reason: "QA manual testing" });
    expect(status.expires_in_ms).toBeGreaterThan(7_100_000);
    expect(status.expires_in_ms).toBeLessThanOrEqual(7_200_000);
    await expect(page.locator("#now").textContent()).resolves.toContain("dashboard:admin");
    // Someone else's lease is refused with the holder named, and nothing changes.
    const other = await call("POST", pathTo("acquire", { key: "qa-env/eu" }), {
      ttl_ms: 1000,
    });
    expect(other.status).toBe(409);
  });

  it("releases the dashboard's hold from the page, also from another browser with the same token, and the API reports it free", async () => {
    // Another browser, signed in with the same token: the hold's lease token is derived, not stored.
    const elsewhere = await newContext();
    const other = await elsewhere.newPage();
    await signIn(other, ADMIN_TOKEN);
    await other.waitForURL(`${base}/ui`);
    await other.goto(`${base}${keyPath("qa-env/eu")}`);
    await other.getByRole("button", { name: "Release my hold" }).click();
    await other.waitForURL(/done=released/);
    await expect(other.getByRole("status").first().textContent()).resolves.toBe("Your hold is released.");
    expect(await statusOf("qa-env/eu")).toMatchObject({ locked: false, holder_id: null });
    await elsewhere.close();

    // The first browser's page follows live; its button is refused with a clear message now.
    await page.goto(`${base}${keyPath("qa-env/eu")}`);
    await expect(page.getByRole("button", { name: "Release my hold" }).count()).resolves.toBe(0);
  });

  it("lists the key's history, newest first, with who did what", async () => {
    await page.goto(`${base}${keyPath("qa-env/eu")}`);
    const rows = page.locator("tbody#history tr");
    const events = await rows.locator('[data-label="Event"]').allTextContents();
    expect(events.slice(0, 2)).toEqual(["released", "granted"]);
    await expect(rows.first().locator('[data-label="By"]').textContent()).resolves.toBe("admin");
    await expect(rows.nth(1).locator('[data-label="Reason"]').textContent()).resolves.toBe(
      "QA manual testing",
    );
    await expect(rows.first().locator('[data-label="Held for"]').textContent()).resolves.toMatch(
      /^(\d+s|\d+ ms)$/,
    );
  });

  it("shows a read-only token no hold or release buttons, and refuses a forged hold", async () => {
    const reader = await mint(["locks:read"], "viewer");
    const context = await newContext();
    const p = await context.newPage();
    await signIn(p, reader);
    await p.waitForURL(`${base}/ui`);
    await acquire("shared-db", { ttl_ms: 600_000, holder_id: "migrations" });
    await p.goto(`${base}${keyPath("shared-db")}`);
    await expect(p.locator("#now").textContent()).resolves.toContain("migrations");
    for (const name of ["Hold", "Hold again", "Release my hold", "Yes, force release"]) {
      await expect(p.getByRole("button", { name, exact: true }).count()).resolves.toBe(0);
    }
    await expect(p.getByRole("link", { name: "Force release…" }).count()).resolves.toBe(0);
    await expect(p.getByRole("heading", { name: "Actions" }).count()).resolves.toBe(0);

    // A hand-made POST with the session's own form token: refused for its scope.
    const forged = await p.evaluate(async () => {
      const csrf = (document.querySelector("input[name=csrf]") as HTMLInputElement).value;
      const res = await fetch(location.pathname, {
        method: "POST",
        body: new URLSearchParams({ csrf, action: "force", confirm: "yes" }),
      });
      const hold = await fetch(location.pathname, {
        method: "POST",
        body: new URLSearchParams({ csrf, action: "hold", duration: "1h" }),
      });
      return { force: res.status, hold: hold.status, text: await hold.text() };
    });
    expect(forged.force).toBe(403);
    expect(forged.hold).toBe(403);
    expect(forged.text).toContain("lacks the locks:write scope");
    expect(await statusOf("shared-db")).toMatchObject({ locked: true, holder_id: "migrations" });
    await context.close();
  });

  it("force releases as an admin through its confirmation, and the API reports the key free", async () => {
    await acquire("nightly-db", { ttl_ms: 600_000, holder_id: "stuck-job", reason: "backup" });
    await page.goto(`${base}${keyPath("nightly-db")}`);
    await page.getByRole("link", { name: "Force release…" }).click();
    await page.waitForURL(/confirm=force/);
    await expect(page.getByRole("heading", { name: "Force release nightly-db?" }).count()).resolves.toBe(1);
    // Nothing happened yet; the confirmation is a real button, taken from the keyboard.
    expect((await statusOf("nightly-db")).locked).toBe(true);
    const confirm = page.getByRole("button", { name: "Yes, force release" });
    await confirm.focus();
    await page.keyboard.press("Enter");
    await page.waitForURL(/done=forced/);
    await expect(page.getByRole("status").first().textContent()).resolves.toBe("The key was force released.");
    expect(await statusOf("nightly-db")).toMatchObject({ locked: false });
    await expect(
      page.locator("tbody#history tr").first().locator('[data-label="Event"]').textContent(),
    ).resolves.toBe("forced release");
  });

  it("switches an admin to another namespace, where it sees and force releases that team's lock", async () => {
    const minted = await call("POST", pathTo("tokens"), {
      namespace: "acme",
      scopes: ["locks:read", "locks:write"],
      name: "acme CI",
    });
    const acme = minted.body.token as string;
    secrets.push(acme);
    const held = await call(
      "POST",
      pathTo("acquire", { key: "qa-env" }),
      { ttl_ms: 600_000, holder_id: "acme e2e" },
      acme,
    );
    expect(held.status).toBe(200);
    const context = await newContext();
    const p = await context.newPage();
    try {
      await signIn(p, ADMIN_TOKEN);
      await p.waitForURL(`${base}/ui`);
      await p.getByLabel("Namespace", { exact: true }).fill("acme");
      await p.getByRole("button", { name: "Switch" }).click();
      await expect(p.getByRole("heading", { level: 1 }).textContent()).resolves.toBe("Locks in acme");
      await p.getByRole("link", { name: "qa-env" }).click();
      await p.getByRole("link", { name: "Force release…" }).click();
      await p.getByRole("button", { name: "Yes, force release" }).click();
      await p.waitForURL(/done=forced/);
      expect((await statusOf("qa-env", acme)).locked).toBe(false);
      // Another tab of this browser, still showing acme, stops its live update once this one
      // switches back, rather than show default's rows under acme's heading.
      const other = await context.newPage();
      await other.goto(`${base}/ui`);
      await expect(other.getByRole("heading", { level: 1 }).textContent()).resolves.toBe("Locks in acme");
      await p.getByLabel("Namespace", { exact: true }).fill("default");
      await p.getByRole("button", { name: "Switch" }).click();
      await other.waitForFunction(
        () =>
          /the dashboard now acts in default/.test(document.getElementById("live-status")?.textContent ?? ""),
        undefined,
        { timeout: 10_000 },
      );
      // The switch stays with this browser's session: the admin's other pages are in default.
      await page.goto(`${base}/ui`);
      await expect(page.getByRole("heading", { level: 1 }).textContent()).resolves.toBe("Locks in default");
    } finally {
      await context.close();
    }
  });

  it("lets an admin subscribe a webhook, shows its secret once, lists and deletes it; says why a URL is refused", async () => {
    await page.goto(`${base}/ui`);
    await page.getByRole("link", { name: "Webhooks" }).click();
    await page.waitForURL(`${base}/ui/webhooks`);
    await page.getByLabel("URL").fill("https://127.0.0.1/hook");
    // Released is checked to begin with.
    await page.getByLabel("released", { exact: true }).uncheck();
    await page.getByLabel("held longer than…").check();
    await page.getByLabel("Held longer than", { exact: true }).fill("4h");
    await page.getByRole("button", { name: "Subscribe" }).click();
    await expect(page.getByRole("alert").textContent()).resolves.toContain(
      "127.0.0.1 is loopback, private or link-local",
    );
    // What was typed stays.
    await expect(page.getByLabel("Held longer than", { exact: true }).inputValue()).resolves.toBe("4h");
    await page.getByLabel("URL").fill("https://hooks.example.com/lss");
    await page.getByLabel("Format").selectOption("slack");
    await page.getByRole("button", { name: "Subscribe" }).click();
    const secret = (await page.locator("#webhook-secret").textContent()) ?? "";
    expect(secret).toMatch(/^whsec_/);
    const row = page.locator("table.webhooks tbody tr[data-webhook]");
    await expect(row.locator('[data-label="Events"]').textContent()).resolves.toBe("held longer than 4h");
    await expect(row.locator('[data-label="Format"]').textContent()).resolves.toBe("Slack");
    // The API lists the same subscription, and never its secret again, nor does the page.
    const listed = await call("GET", pathTo("webhooks"));
    expect(listed.body.webhooks).toMatchObject([
      { url: "https://hooks.example.com/lss", format: "slack", held_longer_than_ms: 14_400_000 },
    ]);
    await page.goto(`${base}/ui/webhooks`);
    await expect(page.content()).resolves.not.toContain(secret);
    await page.getByRole("button", { name: "Delete the webhook to https://hooks.example.com/lss" }).click();
    await page.waitForURL(`${base}/ui/webhooks`);
    await expect(page.locator("table.webhooks tbody").textContent()).resolves.toContain("No webhooks yet.");
    expect((await call("GET", pathTo("webhooks"))).body.webhooks).toEqual([]);
    // A token without the admin scope has no webhooks page.
    const reader = await mint(["locks:read"], "webhook-reader");
    const other = await newContext();
    const p = await other.newPage();
    await signIn(p, reader);
    await p.waitForURL(`${base}/ui`);
    await expect(p.getByRole("link", { name: "Webhooks" }).count()).resolves.toBe(0);
    const res = await p.goto(`${base}/ui/webhooks`);
    expect(res?.status()).toBe(403);
    await other.close();
  });

  it("rejects a bad token at sign-in with a clear message, and sets no cookie", async () => {
    const context = await newContext();
    const p = await context.newPage();
    await signIn(p, `lss_0123456789abcdef_${"x".repeat(43)}`);
    await p.waitForLoadState();
    const alert = p.getByRole("alert");
    await expect(alert.textContent()).resolves.toContain("That token is unknown or revoked");
    expect(new URL(p.url()).pathname).toBe("/ui/login");
    expect(await context.cookies()).toEqual([]);
    // Signed out, the pages send the browser to sign in and the live rows answer 401.
    await p.goto(`${base}/ui/locks/qa-1`);
    expect(new URL(p.url()).pathname).toBe("/ui/login");
    const fragment = await p.evaluate(async () => (await fetch("/ui/fragment/locks")).status);
    expect(fragment).toBe(401);
    await context.close();
  });

  it("refuses a POST without the CSRF token, or from another origin", async () => {
    await page.goto(`${base}${keyPath("csrf-key")}`);
    const noToken = await page.evaluate(async () => {
      const res = await fetch(location.pathname, {
        method: "POST",
        body: new URLSearchParams({ action: "hold", duration: "1h" }),
      });
      return { status: res.status, text: await res.text() };
    });
    expect(noToken.status).toBe(403);
    expect(noToken.text).toContain("form token (CSRF)");
    expect((await statusOf("csrf-key")).locked).toBe(false);

    // The right form token and the cookie, but sent from another site's page.
    const cookie = (await admin.cookies()).find((c) => c.name === "lss_ui");
    const csrf = await page.locator("input[name=csrf]").first().inputValue();
    const crossSite = await fetch(`${base}${keyPath("csrf-key")}`, {
      method: "POST",
      headers: {
        Cookie: `lss_ui=${cookie?.value}`,
        Origin: "http://evil.example",
        "Content-Type": "application/x-www-form-urlencoded",
      },
      body: new URLSearchParams({ csrf, action: "hold", duration: "1h" }).toString(),
      redirect: "manual",
    });
    expect(crossSite.status).toBe(403);
    expect(await crossSite.text()).toContain("another site");
    expect((await statusOf("csrf-key")).locked).toBe(false);
  });

  it("keeps a session id, never the token, in an HttpOnly, SameSite=Strict cookie for /ui only, never in a URL", async () => {
    const cookies = await admin.cookies();
    expect(cookies).toHaveLength(1);
    expect(cookies[0]).toMatchObject({ name: "lss_ui", path: "/ui", httpOnly: true, sameSite: "Strict" });
    for (const secret of secrets) expect(cookies[0]?.value).not.toContain(secret);
    expect(await page.evaluate(() => document.cookie)).toBe("");
    // Every URL visited by every page of this file so far.
    expect(visited.length).toBeGreaterThan(20);
    for (const url of visited) {
      for (const secret of secrets) {
        expect(url).not.toContain(secret);
        expect(url).not.toContain(encodeURIComponent(secret));
      }
    }
  });

  it("fits a phone's screen: no horizontal overflow, the tables stack", async () => {
    await acquire("mobile/a-rather-long-key-name-that-must-wrap-on-a-phone", {
      ttl_ms: 600_000,
      holder_id: `acme/web · e2e · ${RUN}`,
      reason: "a reason long enough to need more than one line on a phone's narrow screen",
    });
    const phone = await newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
    const p = await phone.newPage();
    await signIn(p, ADMIN_TOKEN);
    await p.waitForURL(`${base}/ui`);
    for (const path of ["/ui", keyPath("mobile/a-rather-long-key-name-that-must-wrap-on-a-phone"), "/docs"]) {
      await p.goto(`${base}${path}`);
      const { scroll, width } = await p.evaluate(() => ({
        scroll: document.documentElement.scrollWidth,
        width: window.innerWidth,
      }));
      expect(scroll, path).toBeLessThanOrEqual(width);
    }
    await p.goto(`${base}/ui?prefix=mobile%2F`);
    if (process.env.UI_PHONE_SHOT) await p.screenshot({ path: process.env.UI_PHONE_SHOT });
    const display = await p
      .locator("tbody#locks tr")
      .first()
      .evaluate((tr) => getComputedStyle(tr).display);
    expect(display).toBe("block");
    await phone.close();
  });

  it("reaches every link, button and field with Tab, with a visible focus", async () => {
    await acquire("kbd", { ttl_ms: 600_000, holder_id: `acme/web · e2e · ${RUN}` });
    // An element by what it is, not by identity: the live update replaces rows with equal ones.
    const signature = (el: Element) =>
      [
        el.tagName,
        el.id,
        el.getAttribute("name"),
        el.getAttribute("href"),
        el.getAttribute("value"),
        el.textContent?.trim(),
      ]
        .map((part) => part ?? "")
        .join("|");
    for (const path of [keyPath("kbd"), "/ui?prefix=k"]) {
      await page.goto(`${base}${path}`);
      const expected = await page.evaluate((sig) => {
        const of = new Function("el", `return (${sig})(el)`) as (el: Element) => string;
        const all = document.querySelectorAll(
          "a[href], button, input:not([type=hidden]), select, textarea, summary, [tabindex]",
        );
        return [...all].map(of);
      }, signature.toString());
      expect(expected.length).toBeGreaterThan(5);
      const reached = new Set<string>();
      const outlines = new Set<string>();
      for (let i = 0; i < expected.length + 3; i++) {
        await page.keyboard.press("Tab");
        const seen = await page.evaluate((sig) => {
          const of = new Function("el", `return (${sig})(el)`) as (el: Element) => string;
          const el = document.activeElement;
          return el && el !== document.body
            ? { sig: of(el), outline: getComputedStyle(el).outlineStyle }
            : null;
        }, signature.toString());
        if (seen) {
          reached.add(seen.sig);
          outlines.add(seen.outline);
        }
      }
      expect(
        [...new Set(expected)].filter((sig) => !reached.has(sig)),
        path,
      ).toEqual([]);
      expect(outlines.has("none"), path).toBe(false);
    }
  });

  it("photographs the list and a key's page for the README", async () => {
    // A namespace of its own with some life in it: shared E2E suites, a deploy waiting for them,
    // a production deploy, a hold by the QA team.
    const team = await call("POST", pathTo("tokens"), {
      namespace: "acme",
      scopes: ["locks:read", "locks:write"],
      name: "qa-team",
    });
    const token = team.body.token as string;
    secrets.push(token);
    const take = async (key: string, body: Record<string, unknown>) =>
      expect((await call("POST", pathTo("acquire", { key }), body, token)).status).toBe(200);
    const run = (repo: string, id: number) => `https://github.com/acme/${repo}/actions/runs/${id}`;
    await take("qa-env", {
      ttl_ms: 1_800_000,
      holder_id: `acme/web · e2e · ${run("web", 9912345678)}`,
      mode: "shared",
      reason: "E2E suite",
    });
    await take("qa-env", {
      ttl_ms: 2_400_000,
      holder_id: `acme/mobile · e2e · ${run("mobile", 9912340001)}`,
      mode: "shared",
      reason: "E2E suite (mobile)",
    });
    await take("deploy/prod", {
      ttl_ms: 900_000,
      holder_id: `acme/web · deploy · ${run("web", 9912345001)}`,
      reason: "release 4.2.0",
    });
    await take("staging", {
      ttl_ms: 4 * 3_600_000,
      holder_id: "dashboard:qa-team",
      reason: "QA manual testing",
    });
    await take("nightly-db", { ttl_ms: 1000, token: "nightly", holder_id: "nightly backup" });
    await call("POST", pathTo("release", { key: "nightly-db" }), { token: "nightly" }, token);
    const waiting = new AbortController();
    const deploy = Promise.resolve(
      app.request(pathTo("acquire", { key: "qa-env" }), {
        method: "POST",
        headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
        body: JSON.stringify({
          ttl_ms: 600_000,
          wait_ms: 20_000,
          token: "deploy-qa",
          holder_id: `acme/web · deploy QA · ${run("web", 9912345999)}`,
        }),
        signal: waiting.signal,
      }),
    ).catch(() => null);
    await sleep(200);
    mkdirSync(SCREENSHOTS, { recursive: true });
    const shot = await newContext({ viewport: { width: 1200, height: 640 }, timezoneId: "Europe/Berlin" });
    const p = await shot.newPage();
    await signIn(p, token);
    await p.waitForURL(`${base}/ui`);
    await expect(p.locator('tr[data-key="qa-env"] [data-label="State"]').textContent()).resolves.toBe(
      "held shared (2)",
    );
    await expect(p.locator('tr[data-key="qa-env"] [data-label="Queue"]').textContent()).resolves.toBe("1");
    await p.screenshot({ path: `${SCREENSHOTS}list.png`, fullPage: true });
    await p.goto(`${base}${keyPath("qa-env")}`);
    const waiter = p.locator("table.queue tbody tr").first();
    await expect(waiter.locator('[data-label="Waits for"]').textContent()).resolves.toBe("an exclusive hold");
    await expect(waiter.locator('[data-label="Holder"]').textContent()).resolves.toContain("deploy QA");
    await p.screenshot({ path: `${SCREENSHOTS}key.png`, fullPage: true });
    // Pictures of pages, not blank ones.
    for (const name of ["list.png", "key.png"])
      expect(statSync(`${SCREENSHOTS}${name}`).size).toBeGreaterThan(20_000);
    waiting.abort();
    await deploy;
    await shot.close();
  });
});
