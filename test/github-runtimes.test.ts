/**
 * The GitHub App where no loop runs between requests: Vercel's function bridge and workerd, on
 * the Upstash bridge, GitHub played by the emulator. A release through the API lets the waiting
 * deploy in from the request that released (Vercel: before answering; a Worker: waitUntil), and
 * a lock that expires while nobody asks is handed over by the scheduler's tick: GET
 * /api/github/tick with CRON_SECRET as Vercel Cron calls it, the Worker's Cron Trigger as
 * Cloudflare runs it (wrangler's /__scheduled).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pathTo } from "../src/protocol/paths.js";
import { ADMIN_TOKEN } from "./support/app.js";
import { type GitHubEmulator, payloads, startGitHubEmulator } from "./support/github-emulator.js";
import { sleep } from "./support/processes.js";
import { type RedisServerHandle, startRedisServer } from "./support/redis-server.js";
import { type RuntimeKind, type ServerProcess, startServerProcess } from "./support/server-process.js";
import { startUpstashBridge, type UpstashBridge } from "./support/upstash-bridge.js";

const REPO = { repoId: 202, repo: "acme/site" };
const CRON_SECRET = "cron-secret-0123456789abcdef";
const RUNTIMES: RuntimeKind[] = ["vercel", "workers"];
let github: GitHubEmulator;
let redis: RedisServerHandle;
let bridge: UpstashBridge;
const servers = new Map<RuntimeKind, ServerProcess>();

beforeAll(async () => {
  github = await startGitHubEmulator();
  redis = await startRedisServer();
  bridge = await startUpstashBridge({ redisUrl: redis.url });
  await Promise.all(
    RUNTIMES.map(async (kind) => {
      const env = {
        UPSTASH_REDIS_REST_URL: bridge.url,
        UPSTASH_REDIS_REST_TOKEN: bridge.token,
        LSS_ADMIN_TOKEN: ADMIN_TOKEN,
        LSS_RATE_LIMIT: "off",
        LSS_KEY_PREFIX: `ghrt-${kind}`,
        LSS_GITHUB_APP_ID: github.appId,
        LSS_GITHUB_APP_PRIVATE_KEY: github.privateKeyPem,
        LSS_GITHUB_WEBHOOK_SECRET: github.webhookSecret,
        LSS_GITHUB_API_URL: github.url,
        CRON_SECRET,
        LSS_GATE_RULES: JSON.stringify([
          { repository_id: REPO.repoId, environment: "qa", namespace: "default", key: "qa-env" },
        ]),
      };
      servers.set(kind, await startServerProcess(env, kind));
    }),
  );
}, 120_000);
afterAll(async () => {
  await Promise.all([...servers.values()].map((s) => s.kill()));
  await bridge?.close();
  await redis?.stop();
  await github?.close();
});

async function lease(base: string, path: string, body: unknown) {
  const res = await fetch(`${base}${path}`, {
    method: "POST",
    headers: { Authorization: `Bearer ${ADMIN_TOKEN}`, "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  return res.status;
}
const approved = (runId: number) =>
  github.reviews.some((r) => r.runId === runId && r.body.state === "approved");
async function approvedWithin(runId: number, ms: number) {
  const started = Date.now();
  while (!approved(runId)) {
    if (Date.now() - started > ms) throw new Error(`run ${runId} not approved within ${ms} ms`);
    await sleep(10);
  }
  return Date.now() - started;
}

/** The scheduler's tick, as each platform runs it. */
async function tick(kind: RuntimeKind, base: string) {
  const res =
    kind === "workers"
      ? await fetch(`${base}/__scheduled?cron=*+*+*+*+*`)
      : await fetch(`${base}/api/github/tick`, { headers: { Authorization: `Bearer ${CRON_SECRET}` } });
  expect(res.status).toBe(200);
  await res.text();
}

describe.each(RUNTIMES)("the GitHub App on %s", (kind) => {
  let base: string;
  let run = kind === "vercel" ? 100 : 200;
  beforeAll(() => {
    base = (servers.get(kind) as ServerProcess).url;
  });

  it("a release through the API approves the waiting deploy from that request, within a second", async () => {
    const deploy = ++run;
    expect(
      await lease(base, pathTo("acquire", { key: "qa-env" }), { ttl_ms: 60_000, token: `e2e-${kind}` }),
    ).toBe(200);
    const asked = await github.send(
      base,
      "deployment_protection_rule",
      payloads.protectionRule({ ...REPO, runId: deploy, environment: "qa" }),
    );
    expect(asked).toMatchObject({ status: 200, body: { decision: "queued" } });
    expect(approved(deploy)).toBe(false);
    const releasedAt = Date.now();
    expect(await lease(base, pathTo("release", { key: "qa-env" }), { token: `e2e-${kind}` })).toBe(200);
    await approvedWithin(deploy, 2_000);
    console.log(`github app on ${kind}: approved ${Date.now() - releasedAt} ms after the release was sent`);
    expect(Date.now() - releasedAt).toBeLessThan(1_000);
    const done = await github.send(
      base,
      "workflow_job",
      payloads.jobCompleted({ ...REPO, runId: deploy, environment: "qa" }),
    );
    expect(done.body).toMatchObject({ released: 1 });
  }, 30_000);

  it("a lock that expires while nobody asks is handed to the waiting deploy by the scheduler's tick", async () => {
    const deploy = ++run;
    expect(
      await lease(base, pathTo("acquire", { key: "qa-env" }), { ttl_ms: 1_000, token: `dead-${kind}` }),
    ).toBe(200);
    const asked = await github.send(
      base,
      "deployment_protection_rule",
      payloads.protectionRule({ ...REPO, runId: deploy, environment: "qa" }),
    );
    expect(asked.body).toMatchObject({ decision: "queued" });
    await sleep(1_300);
    expect(approved(deploy)).toBe(false); // nothing runs between requests
    await tick(kind, base);
    await approvedWithin(deploy, 2_000);
    await github.send(
      base,
      "workflow_job",
      payloads.jobCompleted({ ...REPO, runId: deploy, environment: "qa" }),
    );
  }, 30_000);
});

describe("GET /github/tick", () => {
  it("answers 401 without CRON_SECRET or an admin token, and runs with either", async () => {
    const base = `${(servers.get("vercel") as ServerProcess).url}/api`;
    const as = (bearer?: string) =>
      fetch(`${base}/github/tick`, { headers: bearer ? { Authorization: `Bearer ${bearer}` } : {} });
    expect((await as()).status).toBe(401);
    const wrong = await as("cron-secret-0123456789abcdeX");
    expect(wrong.status).toBe(401);
    expect(await wrong.json()).toMatchObject({ error: { code: "unauthorized" } });
    expect((await as(CRON_SECRET)).status).toBe(200);
    // A token of the namespace without the admin scope may not tick.
    const minted = await fetch(`${base}${pathTo("tokens")}`, {
      method: "POST",
      headers: { Authorization: `Bearer ${ADMIN_TOKEN}`, "Content-Type": "application/json" },
      body: JSON.stringify({ namespace: "default", scopes: ["locks:read", "locks:write"], name: "ci" }),
    });
    expect(minted.status).toBe(201);
    const reader = (await minted.json()) as { token: string };
    const refused = await as(reader.token);
    expect(refused.status).toBe(403);
    expect(await refused.json()).toMatchObject({ error: { code: "forbidden" } });
    const admin = await as(ADMIN_TOKEN);
    expect(admin.status).toBe(200);
    expect(await admin.json()).toMatchObject({ status: "ok" });
  }, 20_000);
});
