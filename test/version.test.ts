/**
 * One version for the action, the package, the client and the server: what /health, / and the
 * OpenAPI document report, what the client sends as User-Agent, and how the server logs its clients.
 */

import { Hono } from "hono";
import { describe, expect, it } from "vitest";
import { accessLog, NAMED_CLIENTS } from "../server/access-log.js";
import { createApp } from "../server/app.js";
import type { AppEnv } from "../server/auth/middleware.js";
import { createMemoryStore } from "../server/stores/memory.js";
import { createClient } from "../src/client/client.js";
import { VERSION } from "../src/version.js";
import { ADMIN_TOKEN, request, testApp, testConfig } from "./support/app.js";

const SEMVER = /^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/;

describe("the version the server reports", () => {
  it("is a semantic version", () => {
    expect(VERSION).toMatch(SEMVER);
  });

  it("GET /health, GET / and the OpenAPI document carry it", async () => {
    const { app } = testApp();
    expect((await request(app, "GET", "/health")).body.version).toBe(VERSION);
    expect((await request(app, "GET", "/")).body.version).toBe(VERSION);
    expect((await request(app, "GET", "/openapi.json")).body.info.version).toBe(VERSION);
  });
});

/** The headers of every request a client makes, answered 200 with a status body. */
function recordingFetch() {
  const agents: (string | null)[] = [];
  const fetch = (async (_url: string, init: RequestInit) => {
    agents.push(new Headers(init.headers).get("User-Agent"));
    return new Response(JSON.stringify({ status: "ok", key: "k", locked: false }), { status: 404 });
  }) as typeof globalThis.fetch;
  return { agents, fetch };
}

describe("the client's User-Agent", () => {
  it("is lss-client/<version>", async () => {
    const { agents, fetch } = recordingFetch();
    await createClient({ url: "http://lss.test", fetch })
      .release("k", { token: "t" })
      .catch(() => {});
    expect(agents).toEqual([`lss-client/${VERSION}`]);
  });

  it("names the product it calls for first", async () => {
    const { agents, fetch } = recordingFetch();
    await createClient({ url: "http://lss.test", fetch, userAgent: "nightly-job/2.1" })
      .release("k", { token: "t" })
      .catch(() => {});
    expect(agents).toEqual([`nightly-job/2.1 lss-client/${VERSION}`]);
  });
});

describe("the server's log of its clients", () => {
  const appLogging = (accessLogOn: boolean) => {
    const lines: string[] = [];
    const app = createApp({
      store: createMemoryStore(),
      rateLimiter: null,
      config: testConfig({ accessLog: accessLogOn }),
      log: (line) => lines.push(line),
    });
    return { app, lines };
  };
  const as = (agent: string) => ({ headers: { "User-Agent": agent } });

  const STATUS = "/infra/locks/qa-env";

  it("names each LSS client version of an authenticated caller once, with access logging off", async () => {
    const { app, lines } = appLogging(false);
    await request(app, "GET", STATUS, as("lss-action/1.0.0 lss-client/1.0.0"));
    await request(app, "GET", STATUS, as("lss-action/1.0.0 lss-client/1.0.0"));
    await request(app, "GET", STATUS, as("lss-cli/1.1.0 lss-client/1.1.0"));
    // Not named: another agent, a caller not authenticated, a token refused.
    await request(app, "GET", STATUS, as("curl/8.5.0"));
    await request(app, "GET", "/health", as("lss-cli/0.9.0 lss-client/0.9.0"));
    await request(app, "GET", STATUS, { auth: "Bearer wrong-token-0123456789", ...as("lss-client/0.8.0") });
    expect(lines).toEqual([
      "lss: first request from client lss-action/1.0.0 lss-client/1.0.0",
      "lss: first request from client lss-cli/1.1.0 lss-client/1.1.0",
    ]);
  });

  it("keeps a log line one line: control characters are replaced, long agents cut", async () => {
    const { app, lines } = appLogging(false);
    await request(app, "GET", STATUS, as(`lss-client/1.0.0\tevil${"x".repeat(300)}`));
    expect(lines).toEqual([`lss: first request from client lss-client/1.0.0?evil${"x".repeat(179)}`]);
  });

  it(`names at most ${NAMED_CLIENTS} clients per instance`, async () => {
    const lines: string[] = [];
    const app = new Hono<AppEnv>().use(accessLog({ everyRequest: false, log: (l) => lines.push(l) }));
    app.use((c, next) => {
      c.set("principal", { id: "token-1", name: null, namespace: "default", scopes: new Set() });
      return next();
    });
    app.get("/", (c) => c.text("ok"));
    for (let i = 0; i < NAMED_CLIENTS + 20; i++) await app.request("/", as(`lss-client/1.0.${i}`));
    expect(lines).toHaveLength(NAMED_CLIENTS);
  });

  it("with LSS_ACCESS_LOG=on, one JSON line per request: method, path, status, caller, agent", async () => {
    const { app, lines } = appLogging(true);
    await request(app, "POST", "/infra/locks/qa-env/acquire", {
      json: { ttl_ms: 60_000 },
      ...as("lss-cli/1.0.0 lss-client/1.0.0"),
    });
    await request(app, "GET", "/infra/locks/qa-env", { auth: "Bearer wrong-token-0123456789", ...as("x/1") });
    const entries = lines.filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
    expect(entries).toMatchObject([
      {
        method: "POST",
        path: "/infra/locks/qa-env/acquire",
        status: 200,
        principal: "admin",
        user_agent: "lss-cli/1.0.0 lss-client/1.0.0",
      },
      { method: "GET", path: "/infra/locks/qa-env", status: 401, principal: null, user_agent: "x/1" },
    ]);
    expect(typeof entries[0].ms).toBe("number");
    expect(Date.parse(entries[0].at)).not.toBeNaN();
    expect(ADMIN_TOKEN).not.toBe(entries[0].principal);
  });
});
