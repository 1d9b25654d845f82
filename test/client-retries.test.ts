/**
 * What the client asks again, and what it must not: an acquire, renewal, release or read is
 * idempotent (the same token gets the same lease), so a lost answer is retried; POST /locks makes
 * a new lock each time, so it is retried only when the server certainly did nothing. Against the
 * app served over HTTP, behind a proxy that loses the first answer.
 */
import { afterEach, describe, expect, it } from "vitest";
import { createMemoryStore } from "../server/stores/memory.js";
import { createClient } from "../src/client/client.js";
import { pathTo } from "../src/protocol/paths.js";
import { ADMIN_TOKEN, appOn } from "./support/app.js";
import { type Served, serveApp } from "./support/browser.js";
import { type CuttingProxy, startCuttingProxy } from "./support/cutting-proxy.js";

let served: Served | undefined;
let proxy: CuttingProxy | undefined;
afterEach(async () => {
  await proxy?.close();
  await served?.close();
});

async function behindProxy() {
  const { app, call } = appOn(createMemoryStore());
  served = await serveApp(app.fetch);
  proxy = await startCuttingProxy(served.url, { cut: 1 });
  const client = createClient({ url: proxy.url, token: ADMIN_TOKEN, baseDelayMs: 1, retries: 3 });
  // The open API's locks, as a token of its namespace lists them.
  const reader = (await call("POST", pathTo("tokens"), { namespace: "open", scopes: ["locks:read"] })).body
    .token;
  const stateLocks = async () =>
    (await call("GET", pathTo("list", {}, { prefix: "locks/" }), undefined, reader)).body.locks as unknown[];
  return { client, stateLocks, call };
}

describe("a lost answer", () => {
  it("to POST /locks is not sent again: one lock, and an error that says why", async () => {
    const { client, stateLocks } = await behindProxy();
    await expect(client.createStateLock({ locked: true })).rejects.toMatchObject({
      code: "unreachable",
      message: expect.stringMatching(/may have reached the server, so it is not sent again/),
    });
    // Before: the client asked again and made a second lock.
    expect(await stateLocks()).toHaveLength(1);
  });

  it("to an acquire is asked again with the same token: one lease, granted", async () => {
    const { client, call } = await behindProxy();
    const got = await client.acquire("qa-env", { ttlMs: 60_000, token: "my-token" });
    expect(got.acquired).toBe(true);
    expect(proxy?.connections()).toBe(2);
    const status = (await call("GET", pathTo("status", { key: "qa-env" }))).body;
    expect(status).toMatchObject({ locked: true });
    if (got.acquired) expect(status.fencing_token).toBe(got.lease.fencing_token);
  });
});

describe("POST /locks is asked again only when the server did nothing", () => {
  const answering = (answers: Array<[number, unknown]>) => {
    let calls = 0;
    const client = createClient({
      url: "http://lss",
      baseDelayMs: 1,
      fetch: (async () => {
        const [status, body] = answers[Math.min(calls++, answers.length - 1)] as [number, unknown];
        return Response.json(body, { status });
      }) as typeof fetch,
    });
    return { client, calls: () => calls };
  };
  const created = {
    id: "00000000-0000-4000-8000-000000000001",
    key: "k",
    locked: false,
    expires_at: null,
    lockId: "00000000-0000-4000-8000-000000000001",
    lockKey: "k",
    isLocked: false,
  };
  const error = (code: string) => ({ status: "error", error: { code, message: code } });

  it.each([
    ["429 rate_limited", 429, "rate_limited"],
    ["503 store_unavailable (nothing was changed)", 503, "store_unavailable"],
  ])("after %s: asked again", async (_label, status, code) => {
    const { client, calls } = answering([
      [status, error(code)],
      [200, created],
    ]);
    await expect(client.createStateLock({ locked: false })).resolves.toMatchObject({ id: created.id });
    expect(calls()).toBe(2);
  });

  it.each([
    ["503 outcome_unknown (it may exist)", 503, "outcome_unknown"],
    ["500", 500, "internal"],
    ["a proxy's 502", 502, "internal"],
  ])("after %s: not asked again", async (_label, status, code) => {
    const { client, calls } = answering([
      [status, error(code)],
      [200, created],
    ]);
    await expect(client.createStateLock({ locked: false })).rejects.toMatchObject({ status });
    expect(calls()).toBe(1);
  });
});
