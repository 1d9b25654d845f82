/**
 * The GitHub App end to end: `npm start`'s server on a real redis-server (and through the Upstash
 * bridge), GitHub played by the emulator (installation tokens for a checked App JWT, the review
 * endpoint, signed webhooks). A deploy to `qa` waits at GitHub's gate, with no runner, in the one
 * queue of `qa-env` beside the leases the action takes.
 */

import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { HistoryEvent } from "../src/protocol/lease.js";
import { pathTo } from "../src/protocol/paths.js";
import { MAIN, newJob, POST } from "./support/action-e2e.js";
import { ADMIN_TOKEN } from "./support/app.js";
import { hasChromium, launchBrowser } from "./support/browser.js";
import {
  type GitHubEmulator,
  payloads,
  startGitHubEmulator,
  UNKNOWN_INSTALLATION,
} from "./support/github-emulator.js";
import { sleep } from "./support/processes.js";
import { type RedisServerHandle, startRedisServer } from "./support/redis-server.js";
import { type ServerProcess, startServerProcess } from "./support/server-process.js";
import { startUpstashBridge, type UpstashBridge } from "./support/upstash-bridge.js";

const REPO = { repoId: 101, repo: "acme/webapp" };
let github: GitHubEmulator;
let redis: RedisServerHandle;
let bridge: UpstashBridge;
const servers: ServerProcess[] = [];

beforeAll(async () => {
  github = await startGitHubEmulator();
  redis = await startRedisServer();
  bridge = await startUpstashBridge({ redisUrl: redis.url });
}, 60_000);
afterAll(async () => {
  await Promise.all(servers.map((s) => s.kill()));
  await bridge?.close();
  await redis?.stop();
  await github?.close();
});

const appEnv = (prefix: string) => ({
  LSS_ADMIN_TOKEN: ADMIN_TOKEN,
  LSS_RATE_LIMIT: "off",
  LSS_KEY_PREFIX: prefix,
  LSS_GITHUB_APP_ID: github.appId,
  LSS_GITHUB_APP_PRIVATE_KEY: github.privateKeyPem,
  LSS_GITHUB_WEBHOOK_SECRET: github.webhookSecret,
  LSS_GITHUB_API_URL: github.url,
  LSS_GITHUB_TICK_MS: "500",
  LSS_GATE_RULES: JSON.stringify([
    {
      repository_id: REPO.repoId,
      repository: REPO.repo,
      environment: "qa",
      namespace: "default",
      key: "qa-env",
    },
  ]),
  LSS_FREEZE_RULES: JSON.stringify([
    {
      repository_id: REPO.repoId,
      repository: REPO.repo,
      branch: "main",
      namespace: "default",
      key: "freeze-main",
    },
  ]),
});

const shaOf = (n: number) => n.toString(16).padStart(40, "0");
async function until(what: string, ok: () => boolean, ms = 2_000): Promise<number> {
  const started = Date.now();
  while (!ok()) {
    if (Date.now() - started > ms) throw new Error(`not within ${ms} ms: ${what}`);
    await sleep(10);
  }
  return Date.now() - started;
}

async function keyStatus(server: ServerProcess) {
  const res = await fetch(`${server.url}${pathTo("status", { key: "qa-env" })}`, {
    headers: { Authorization: `Bearer ${ADMIN_TOKEN}` },
  });
  return (await res.json()) as Record<string, unknown>;
}

async function lease(server: ServerProcess, path: string, body: unknown) {
  const res = await fetch(`${server.url}${path}`, {
    method: "POST",
    headers: { Authorization: `Bearer ${ADMIN_TOKEN}`, "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

const decisionsFor = (runId: number) => github.reviews.filter((r) => r.runId === runId && r.body.state);
async function approvedWithin(runId: number, ms: number): Promise<number> {
  const started = Date.now();
  while (Date.now() - started < ms) {
    if (decisionsFor(runId).some((r) => r.body.state === "approved")) return Date.now() - started;
    await sleep(10);
  }
  throw new Error(
    `run ${runId} not approved within ${ms} ms; reviews: ${JSON.stringify(github.reviews.filter((r) => r.runId === runId))}`,
  );
}

const STORES = [
  ["redis", () => ({ REDIS_URL: redis.url })],
  ["upstash", () => ({ UPSTASH_REDIS_REST_URL: bridge.url, UPSTASH_REDIS_REST_TOKEN: bridge.token })],
] as const;

describe.each(STORES)("gated deployments on %s", (kind, storeEnv) => {
  let server: ServerProcess;
  let run = kind === "redis" ? 1000 : 2000;
  beforeAll(async () => {
    server = await startServerProcess({ ...appEnv(`gh-${kind}`), ...storeEnv() });
    servers.push(server);
  }, 60_000);

  it("a deploy waits behind two E2E jobs holding shared through the action, is approved as they end, and frees the key when its job ends", async () => {
    const deploy = ++run;
    const next = ++run;
    // Two E2E jobs take qa-env shared with the action's built dist/, as the runner runs it.
    const e2e = [newJob("acme/e2e", "E2E chrome"), newJob("acme/e2e", "E2E firefox")];
    const inputs = { url: server.url, token: ADMIN_TOKEN, key: "qa-env", mode: "acquire", shared: "true" };
    for (const job of e2e) {
      const step = await job.step(MAIN, { inputs });
      expect(step.exitCode).toBe(0);
      expect(step.outputs.acquired).toBe("true");
    }

    const asked = await github.send(
      server.url,
      "deployment_protection_rule",
      payloads.protectionRule({ ...REPO, runId: deploy, environment: "qa" }),
    );
    expect(asked).toMatchObject({ status: 200, body: { decision: "queued" } });
    // Told why it waits (a review without state), and not approved.
    const status = github.reviews.find((r) => r.runId === deploy && !r.body.state);
    expect(status?.body.comment).toMatch(/waiting for default\/qa-env/);
    expect(decisionsFor(deploy)).toEqual([]);
    // The deploy holds the key's queue: the action's waiter behind it is not let in first.
    const second = await github.send(
      server.url,
      "deployment_protection_rule",
      payloads.protectionRule({ ...REPO, runId: next, environment: "qa" }),
    );
    expect(second.body).toMatchObject({ decision: "queued" });
    // The status API shows who waits at GitHub's gate, oldest first.
    const gates = await fetch(`${server.url}/infra/gates`, {
      headers: { Authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    expect(gates.status).toBe(200);
    const shown = ((await gates.json()) as { gates: Array<Record<string, unknown>> }).gates;
    expect(shown.filter((g) => g.environment === "qa").map((g) => [g.run_url, g.state, g.keys])).toEqual([
      [`https://github.com/${REPO.repo}/actions/runs/${deploy}`, "waiting", ["qa-env"]],
      [`https://github.com/${REPO.repo}/actions/runs/${next}`, "waiting", ["qa-env"]],
    ]);

    // The first E2E job ends (the action's post step releases its hold).
    expect((await e2e[0]?.step(POST, { inputs }))?.exitCode).toBe(0);
    await sleep(300);
    expect(decisionsFor(deploy)).toEqual([]); // one shared holder is still there
    const last = e2e[1]?.step(POST, { inputs });
    const latency = await approvedWithin(deploy, 5_000);
    expect((await last)?.exitCode).toBe(0);
    for (const job of e2e) await job.cleanup();
    const [approval] = decisionsFor(deploy);
    expect(approval).toMatchObject({
      installationId: 7,
      repository: REPO.repo,
      body: { environment_name: "qa", state: "approved" },
    });
    expect(approval?.body.comment).toMatch(/default\/qa-env is held for this deployment/);
    // While it deploys, the key is held by the run.
    const held = await fetch(`${server.url}${pathTo("status", { key: "qa-env" })}`, {
      headers: { Authorization: `Bearer ${ADMIN_TOKEN}` },
    }).then((r) => r.json() as Promise<Record<string, unknown>>);
    expect(held).toMatchObject({
      locked: true,
      holder_id: `https://github.com/${REPO.repo}/actions/runs/${deploy}`,
    });
    expect(decisionsFor(next)).toEqual([]);

    // The job ends: GitHub says so, the key frees, and the next gated deploy is approved.
    const done = await github.send(
      server.url,
      "workflow_job",
      payloads.jobCompleted({ ...REPO, runId: deploy, environment: "qa" }),
    );
    expect(done).toMatchObject({ status: 200, body: { released: 1 } });
    // The key's history: the E2E holds released, the gate's grant and its job-bound release, by the App.
    const history = (await fetch(`${server.url}${pathTo("history", { key: "qa-env" })}`, {
      headers: { Authorization: `Bearer ${ADMIN_TOKEN}` },
    }).then((r) => r.json())) as { events: HistoryEvent[] };
    const runUrl = `https://github.com/${REPO.repo}/actions/runs/${deploy}`;
    const ofRun = history.events.filter((e) => e.holder_id === runUrl).reverse();
    expect(ofRun.map((e) => [e.event, e.actor?.token_id])).toEqual([
      ["granted", "github-app"],
      ["released", "github-app"],
    ]);
    const lastE2e = history.events.find(
      (e) => e.event === "released" && /E2E firefox/.test(e.holder_id ?? ""),
    );
    // Approved within a second of the last E2E hold's release, as the server recorded it.
    const approvedAt = decisionsFor(deploy)[0]?.at ?? 0;
    expect(approvedAt - Date.parse(lastE2e?.at ?? "")).toBeLessThan(1_000);
    await approvedWithin(next, 2_000);
    expect(decisionsFor(deploy)).toHaveLength(1);
    await github.send(
      server.url,
      "workflow_job",
      payloads.jobCompleted({ ...REPO, runId: next, environment: "qa" }),
    );
    console.log(
      `github app (${kind}): approved ${approvedAt - Date.parse(lastE2e?.at ?? "")} ms after the last E2E hold was released (${latency} ms after its post step began)`,
    );
  }, 30_000);

  it("a merge freeze: lss/freeze fails while the key is held, naming holder and reason, and passes once it frees", async () => {
    const number = ++run;
    const pr = shaOf(number);
    const queued = shaOf(++run);
    const opened = await github.send(
      server.url,
      "pull_request",
      payloads.pullRequest({ ...REPO, number, sha: pr, base: "main" }),
    );
    expect(opened).toMatchObject({ status: 200, body: { check: "posted" } });
    await until(
      "a passing check while nothing is frozen",
      () => github.checkOf(pr)?.body.conclusion === "success",
    );

    // The freeze begins (through the API, on this instance): the open pull request turns red at once.
    const freeze = {
      ttl_ms: 60_000,
      token: `captain-${kind}`,
      holder_id: "release-captain",
      reason: "release 4.2",
    };
    expect((await lease(server, pathTo("acquire", { key: "freeze-main" }), freeze)).status).toBe(200);
    await until("a failing check once frozen", () => github.checkOf(pr)?.body.conclusion === "failure");
    const failing = github.checkOf(pr)?.body;
    expect(failing).toMatchObject({ status: "completed", name: "lss/freeze" });
    expect(failing?.output?.title).toMatch(/^Frozen: default\/freeze-main is held by release-captain/);
    expect(failing?.output?.summary).toMatch(/\(release 4\.2\)/);
    // A merge group of the queue, and a pull request to another branch, while frozen.
    expect(
      (
        await github.send(
          server.url,
          "merge_group",
          payloads.mergeGroup({ ...REPO, sha: queued, base: "main" }),
        )
      ).body,
    ).toMatchObject({ check: "posted" });
    await until("the merge group fails too", () => github.checkOf(queued)?.body.conclusion === "failure");
    const other = shaOf(++run);
    const elsewhere = payloads.pullRequest({ ...REPO, number: run, sha: other, base: "develop" });
    expect((await github.send(server.url, "pull_request", elsewhere)).body).toMatchObject({
      check: "no_freeze",
    });
    expect(github.checkOf(other)).toBeUndefined();

    // The freeze ends: both turn green within a second.
    const releasedAt = Date.now();
    await lease(server, pathTo("release", { key: "freeze-main" }), { token: freeze.token });
    await until("green again", () =>
      [pr, queued].every((sha) => github.checkOf(sha)?.body.conclusion === "success"),
    );
    expect(Date.now() - releasedAt).toBeLessThan(1_000);

    // A closed pull request is no longer followed: the next freeze posts nothing for it.
    const closed = payloads.pullRequest({
      ...REPO,
      number,
      sha: pr,
      base: "main",
      action: "closed",
    });
    expect((await github.send(server.url, "pull_request", closed)).body).toMatchObject({
      check: "forgotten",
    });
    await github.send(
      server.url,
      "merge_group",
      payloads.mergeGroup({ ...REPO, sha: queued, base: "main", action: "destroyed" }),
    );
    const checksOf = () => github.checks.filter((c) => [pr, queued].includes(c.body.head_sha ?? "")).length;
    // Posts already decided (the ticks' second posts, see freeze.ts) may still land: wait until none
    // has for a second, on a busy machine too.
    let after = checksOf();
    for (let quiet = 0; quiet < 1_000; quiet += 100) {
      await sleep(100);
      if (checksOf() !== after) {
        after = checksOf();
        quiet = -100;
      }
    }
    expect((await lease(server, pathTo("acquire", { key: "freeze-main" }), freeze)).status).toBe(200);
    await sleep(700); // past a tick
    expect(checksOf()).toBe(after);
    await lease(server, pathTo("release", { key: "freeze-main" }), { token: freeze.token });
  }, 20_000);

  it("a freeze held shared, then handed to a waiting holder, keeps the check failing; it passes once the last lets go", async () => {
    const number = ++run;
    const sha = shaOf(number);
    const hold = (token: string, extra: object = {}) =>
      lease(server, pathTo("acquire", { key: "freeze-main" }), {
        ttl_ms: 60_000,
        token,
        holder_id: token,
        reason: "release train",
        ...extra,
      });
    // Whatever an earlier test left held (its failure says why), this one starts from a free key.
    await lease(server, pathTo("release", { key: "freeze-main" }), { force: true });
    expect((await hold(`a-${kind}`, { mode: "shared" })).status).toBe(200);
    expect((await hold(`b-${kind}`, { mode: "shared" })).status).toBe(200);
    await github.send(
      server.url,
      "pull_request",
      payloads.pullRequest({ ...REPO, number, sha, base: "main" }),
    );
    await until("failing while held shared", () => github.checkOf(sha)?.body.conclusion === "failure");
    expect(github.checkOf(sha)?.body.output?.title).toMatch(/held by [ab]-\w+ and 1 more/);
    // An exclusive holder waits for both; as they go, the key passes straight to it.
    const waiting = hold(`c-${kind}`, { wait_ms: 10_000 });
    await sleep(200);
    await lease(server, pathTo("release", { key: "freeze-main" }), { token: `a-${kind}` });
    await lease(server, pathTo("release", { key: "freeze-main" }), { token: `b-${kind}` });
    expect((await waiting).status).toBe(200);
    await sleep(1_200); // every post of the handover, and the ticks' second posts
    expect(github.checkOf(sha)?.body).toMatchObject({ conclusion: "failure" });
    expect(github.checkOf(sha)?.body.output?.title).toMatch(/held by c-/);
    await lease(server, pathTo("release", { key: "freeze-main" }), { token: `c-${kind}` });
    await until("passing once free", () => github.checkOf(sha)?.body.conclusion === "success");
    const closed = payloads.pullRequest({ ...REPO, number, sha, base: "main", action: "closed" });
    await github.send(server.url, "pull_request", closed);
  }, 20_000);

  it("a signed request replayed after its job ended holds nothing; another deployment's job end frees nothing", async () => {
    const deploy = ++run;
    const request = payloads.protectionRule({ ...REPO, runId: deploy, environment: "qa" });
    expect((await github.send(server.url, "deployment_protection_rule", request)).body).toMatchObject({
      decision: "approved",
    });
    // Another job of the same run (its own deployment) ends: the gate stays held.
    const other = {
      ...payloads.jobCompleted({ ...REPO, runId: deploy, environment: "qa" }),
      deployment: { id: 1, environment: "qa" },
    };
    expect((await github.send(server.url, "workflow_job", other)).body).toMatchObject({ released: 0 });
    await github.send(
      server.url,
      "workflow_job",
      payloads.jobCompleted({ ...REPO, runId: deploy, environment: "qa" }),
    );
    // The same signed body again, under a new delivery id (the signature covers the body only).
    expect((await github.send(server.url, "deployment_protection_rule", request)).body).toMatchObject({
      decision: "ended",
    });
    const status = await fetch(`${server.url}${pathTo("status", { key: "qa-env" })}`, {
      headers: { Authorization: `Bearer ${ADMIN_TOKEN}` },
    }).then((r) => r.json() as Promise<Record<string, unknown>>);
    expect(status.locked).toBe(false);
    expect(decisionsFor(deploy)).toHaveLength(1);
  }, 20_000);

  it("an approval GitHub refuses for good (422) is dropped, and the key stays held until the job's end", async () => {
    const deploy = ++run;
    github.answerRun(deploy, 422);
    const asked = payloads.protectionRule({ ...REPO, runId: deploy, environment: "qa" });
    expect((await github.send(server.url, "deployment_protection_rule", asked)).body).toMatchObject({
      decision: "approved",
    });
    // A job that runs anyway (approved before, an admin's bypass) must not share the key.
    await sleep(300);
    const runUrl = `https://github.com/${REPO.repo}/actions/runs/${deploy}`;
    expect(await keyStatus(server)).toMatchObject({ locked: true, holder_id: runUrl });
    const metrics = await fetch(`${server.url}/metrics`, {
      headers: { Authorization: `Bearer ${ADMIN_TOKEN}` },
    }).then((r) => r.text());
    expect(metrics).toMatch(/lss_github_calls_total\{kind="approve",outcome="dropped"\} [1-9]/);
    // GitHub says the job ended (a cancelled run's job ends too): the key frees.
    const ended = payloads.jobCompleted({ ...REPO, runId: deploy, environment: "qa" });
    expect((await github.send(server.url, "workflow_job", ended)).body).toMatchObject({ released: 1 });
    expect(await keyStatus(server)).toMatchObject({ locked: false });
  }, 20_000);

  it("a lock that expires while nobody asks is handed to the waiting deploy by the tick", async () => {
    const deploy = ++run;
    expect(
      (await lease(server, pathTo("acquire", { key: "qa-env" }), { ttl_ms: 1500, token: "crashed" })).status,
    ).toBe(200);
    await github.send(
      server.url,
      "deployment_protection_rule",
      payloads.protectionRule({ ...REPO, runId: deploy, environment: "qa" }),
    );
    expect(decisionsFor(deploy)).toEqual([]);
    await approvedWithin(deploy, 4_000);
    await github.send(
      server.url,
      "workflow_job",
      payloads.jobCompleted({ ...REPO, runId: deploy, environment: "qa" }),
    );
  }, 20_000);

  it("GitHub down when the key frees: the approval waits in the outbox and goes through once it is back, once", async () => {
    const deploy = ++run;
    expect(
      (await lease(server, pathTo("acquire", { key: "qa-env" }), { ttl_ms: 60_000, token: "e2e" })).status,
    ).toBe(200);
    await github.send(
      server.url,
      "deployment_protection_rule",
      payloads.protectionRule({ ...REPO, runId: deploy, environment: "qa" }),
    );
    github.down(3_000);
    const refusedBefore = github.refused();
    await lease(server, pathTo("release", { key: "qa-env" }), { token: "e2e" });
    await sleep(1_500);
    expect(decisionsFor(deploy)).toEqual([]);
    expect(github.refused()).toBeGreaterThan(refusedBefore);
    await approvedWithin(deploy, 8_000);
    await sleep(1_500);
    expect(decisionsFor(deploy)).toHaveLength(1);
    // /metrics tells it: the deliveries, the calls that had to wait, the approvals that went through.
    const metrics = await fetch(`${server.url}/metrics`, {
      headers: { Authorization: `Bearer ${ADMIN_TOKEN}` },
    }).then((r) => r.text());
    expect(metrics).toMatch(
      /lss_github_webhooks_total\{event="deployment_protection_rule",outcome="queued"\} [1-9]/,
    );
    expect(metrics).toMatch(/lss_github_calls_total\{kind="approve",outcome="retry"\} [1-9]/);
    expect(metrics).toMatch(/lss_github_calls_total\{kind="approve",outcome="done"\} [1-9]/);
    await github.send(
      server.url,
      "workflow_job",
      payloads.jobCompleted({ ...REPO, runId: deploy, environment: "qa" }),
    );
  }, 30_000);
});

describe("GitHub's API down for 30 seconds", () => {
  it("the approval goes through within seconds of its return, once, with the default tick (30 s)", async () => {
    const env: Record<string, string> = { ...appEnv("gh-outage"), REDIS_URL: redis.url };
    delete env.LSS_GITHUB_TICK_MS;
    const server = await startServerProcess(env);
    servers.push(server);
    const deploy = 9901;
    expect(
      (await lease(server, pathTo("acquire", { key: "qa-env" }), { ttl_ms: 60_000, token: "outage" })).status,
    ).toBe(200);
    await github.send(
      server.url,
      "deployment_protection_rule",
      payloads.protectionRule({ ...REPO, runId: deploy, environment: "qa" }),
    );
    github.down(30_000);
    const backAt = Date.now() + 30_000;
    await lease(server, pathTo("release", { key: "qa-env" }), { token: "outage" });
    const refused = github.refused();
    await approvedWithin(deploy, 45_000);
    const afterReturn = Date.now() - backAt;
    console.log(
      `github app: approved ${afterReturn} ms after GitHub came back (${github.refused() - refused} calls refused meanwhile)`,
    );
    expect(afterReturn).toBeGreaterThanOrEqual(0);
    expect(afterReturn).toBeLessThan(12_000);
    await sleep(2_000);
    expect(decisionsFor(deploy).map((d) => d.body.state)).toEqual(["approved"]);
    await github.send(
      server.url,
      "workflow_job",
      payloads.jobCompleted({ ...REPO, runId: deploy, environment: "qa" }),
    );
  }, 70_000);
});

describe("the webhook refuses what GitHub did not send, and ignores what it already did", () => {
  let server: ServerProcess;
  beforeAll(async () => {
    server = await startServerProcess({ ...appEnv("gh-input"), REDIS_URL: redis.url });
    servers.push(server);
  }, 60_000);
  const rule = (runId: number, environment = "qa") =>
    payloads.protectionRule({ ...REPO, runId, environment });

  it("401 for an unsigned or wrongly signed body, before reading it", async () => {
    const bad = await github.send(server.url, "deployment_protection_rule", rule(5001), {
      secret: "another-secret-0123456789",
    });
    expect(bad.status).toBe(401);
    expect(JSON.stringify(bad.body)).toMatch(/X-Hub-Signature-256 does not sign this body/);
    const unsigned = await fetch(`${server.url}/github/webhook`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-github-event": "ping", "x-github-delivery": "d-1" },
      body: "{}",
    });
    expect(unsigned.status).toBe(401);
    expect(decisionsFor(5001)).toEqual([]);
  });

  it("takes a payload past the API's 16 KB bound (GitHub's are larger), and refuses one past 1 MB with 413", async () => {
    const padded = { ...rule(5008, "docs-preview"), organization: { description: "x".repeat(100_000) } };
    expect((await github.send(server.url, "deployment_protection_rule", padded)).status).toBe(200);
    const huge = { ...rule(5009, "docs-preview"), organization: { description: "x".repeat(1_100_000) } };
    expect((await github.send(server.url, "deployment_protection_rule", huge)).status).toBe(413);
  });

  it("answers a ping", async () => {
    expect(await github.send(server.url, "ping", { zen: "Keep it logically awesome." })).toMatchObject({
      status: 200,
      body: { event: "ping" },
    });
  });

  it("a replayed delivery is answered and ignored", async () => {
    const first = await github.send(server.url, "deployment_protection_rule", rule(5002, "staging"), {
      delivery: "replayed-1",
    });
    expect(first.body).toMatchObject({ decision: "no_rule" });
    const again = await github.send(server.url, "deployment_protection_rule", rule(5002, "staging"), {
      delivery: "replayed-1",
    });
    expect(again).toMatchObject({ status: 200, body: { duplicate: true } });
    await sleep(200);
    expect(decisionsFor(5002)).toHaveLength(1);
  });

  it("an unknown installation (the App uninstalled): its approval is dropped, not sent again, and the key stays held", async () => {
    const asked = payloads.protectionRule({
      ...REPO,
      runId: 5010,
      environment: "qa",
      installationId: UNKNOWN_INSTALLATION,
    });
    expect((await github.send(server.url, "deployment_protection_rule", asked)).body).toMatchObject({
      decision: "approved",
    });
    const requests = github.requests();
    await sleep(1_500); // past several ticks
    expect(github.requests()).toBe(requests);
    expect(decisionsFor(5010)).toEqual([]);
    // Safe: held until the job's end is heard of, or the rule's longest hold.
    expect(await keyStatus(server)).toMatchObject({ locked: true });
    const ended = payloads.jobCompleted({ ...REPO, runId: 5010, environment: "qa" });
    expect((await github.send(server.url, "workflow_job", ended)).body).toMatchObject({ released: 1 });
  });

  it("an environment without a rule is approved, saying so", async () => {
    await github.send(server.url, "deployment_protection_rule", rule(5003, "docs-preview"));
    await approvedWithin(5003, 2_000);
    expect(decisionsFor(5003)[0]?.body.comment).toMatch(
      /no gate rule for acme\/webapp's environment docs-preview/,
    );
  });

  it.each([
    ["no environment", { ...rule(5004), environment: undefined }, /environment/],
    [
      "a callback URL that names no run",
      { ...rule(5005), deployment_callback_url: "https://api.github.com/elsewhere" },
      /deployment_callback_url must end in/,
    ],
    ["no installation", { ...rule(5006), installation: undefined }, /installation/],
    [
      "a repository id that is not a number",
      { ...rule(5007), repository: { id: "101", full_name: REPO.repo } },
      /repository\.id/,
    ],
  ])("400 for a malformed payload: %s", async (_label, payload, message) => {
    const answer = await github.send(server.url, "deployment_protection_rule", payload);
    expect(answer.status).toBe(400);
    expect(JSON.stringify(answer.body)).toMatch(message);
  });

  it("400 for a body that is not JSON, and for a missing delivery id", async () => {
    const text = "not json";
    const { hmacHex } = await import("../server/github/signature.js");
    const headers = {
      "x-github-event": "ping",
      "x-hub-signature-256": `sha256=${hmacHex(github.webhookSecret, text)}`,
    };
    const notJson = await fetch(`${server.url}/github/webhook`, {
      method: "POST",
      headers: { ...headers, "x-github-delivery": "d-2" },
      body: text,
    });
    expect(notJson.status).toBe(400);
    const noDelivery = await fetch(`${server.url}/github/webhook`, { method: "POST", headers, body: text });
    expect(noDelivery.status).toBe(400);
  });

  it.each([
    [
      "pull_request",
      { ...payloads.pullRequest({ ...REPO, number: 1, sha: "abc", base: "main" }) },
      /pull_request payload: pull_request\.head\.sha must be a commit SHA/,
    ],
    [
      "pull_request",
      {
        ...payloads.pullRequest({ ...REPO, number: 1, sha: "a".repeat(40), base: "main" }),
        installation: undefined,
      },
      /pull_request payload: installation/,
    ],
    [
      "merge_group",
      {
        ...payloads.mergeGroup({ ...REPO, sha: "a".repeat(40), base: "main" }),
        merge_group: { head_sha: "a".repeat(40) },
      },
      /merge_group payload: merge_group\.base_ref/,
    ],
  ])("400 for a malformed %s payload, naming the field", async (event, payload, message) => {
    const answer = await github.send(server.url, event, payload);
    expect(answer.status).toBe(400);
    expect((answer.body as { error: { message: string } }).error.message).toMatch(message);
  });

  it("a pull request's other actions, and one to an unfrozen branch, post no check", async () => {
    const sha = shaOf(424242);
    const labeled = payloads.pullRequest({ ...REPO, number: 9, sha, base: "main", action: "labeled" });
    expect((await github.send(server.url, "pull_request", labeled)).body).toMatchObject({
      ignored: "action labeled",
    });
    const queued = payloads.mergeGroup({ ...REPO, sha, base: "develop" });
    expect((await github.send(server.url, "merge_group", queued)).body).toMatchObject({ check: "no_freeze" });
    await sleep(200);
    expect(github.checkOf(sha)).toBeUndefined();
  });

  it("a job of a run LSS does not know, or of no environment, releases nothing", async () => {
    const unknown = await github.send(
      server.url,
      "workflow_job",
      payloads.jobCompleted({ ...REPO, runId: 9999, environment: "qa" }),
    );
    expect(unknown).toMatchObject({ status: 200, body: { released: 0 } });
    const noEnv = await github.send(
      server.url,
      "workflow_job",
      payloads.jobCompleted({ ...REPO, runId: 9999, environment: null }),
    );
    expect(noEnv).toMatchObject({ status: 200, body: { ignored: "no environment" } });
  });

  it("an event it does not handle is acknowledged and ignored", async () => {
    expect(await github.send(server.url, "star", { action: "created" })).toMatchObject({
      status: 200,
      body: { ignored: "event star" },
    });
  });
});

describe.skipIf(process.env.LSS_SKIP_BROWSER === "1" || !hasChromium())("the dashboard in a browser", () => {
  let server: ServerProcess;
  let browser: Browser;
  beforeAll(async () => {
    [server, browser] = await Promise.all([
      startServerProcess({ ...appEnv("gh-ui"), REDIS_URL: redis.url }),
      launchBrowser(),
    ]);
    servers.push(server);
  }, 60_000);
  afterAll(() => browser?.close());

  it("shows who waits at GitHub's gate for a key, with the run's link, and the deploy holding it once let in", async () => {
    const deploy = 8801;
    expect(
      (await lease(server, pathTo("acquire", { key: "qa-env" }), { ttl_ms: 60_000, token: "ui-e2e" })).status,
    ).toBe(200);
    await github.send(
      server.url,
      "deployment_protection_rule",
      payloads.protectionRule({ ...REPO, runId: deploy, environment: "qa" }),
    );
    const page = await (await browser.newContext()).newPage();
    await page.goto(`${server.url}/ui`);
    await page.getByLabel("API token").fill(ADMIN_TOKEN);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.waitForURL(`${server.url}/ui`);
    await page.goto(`${server.url}/ui/locks/qa-env`);
    await expect(page.getByRole("heading", { name: "At GitHub's gate" }).count()).resolves.toBe(1);
    const row = page
      .locator("table", { has: page.locator("caption", { hasText: "Deployments gated" }) })
      .locator("tbody tr");
    await expect(row.count()).resolves.toBe(1);
    const runUrl = `https://github.com/${REPO.repo}/actions/runs/${deploy}`;
    await expect(row.locator("a").getAttribute("href")).resolves.toBe(runUrl);
    await expect(row.textContent()).resolves.toMatch(/acme\/webapp.*qa.*run 8801.*waits to deploy/);
    // Let in: the page's live update shows it deploying, holding the key, without a reload.
    await lease(server, pathTo("release", { key: "qa-env" }), { token: "ui-e2e" });
    await approvedWithin(deploy, 2_000);
    await page.locator("td[data-label=State]", { hasText: "deploying" }).waitFor({ timeout: 10_000 });
    await expect(page.locator("td[data-label=Holder]").first().textContent()).resolves.toBe(runUrl);
    await github.send(
      server.url,
      "workflow_job",
      payloads.jobCompleted({ ...REPO, runId: deploy, environment: "qa" }),
    );
  }, 40_000);
});

describe("three instances, concurrent webhooks", () => {
  const instances: ServerProcess[] = [];
  beforeAll(async () => {
    const env = { ...appEnv("gh-many"), REDIS_URL: redis.url };
    instances.push(...(await Promise.all([1, 2, 3].map(() => startServerProcess(env)))));
    servers.push(...instances);
  }, 60_000);

  it("approves each deploy once, one at a time, in the order GitHub asked", async () => {
    const runs = Array.from({ length: 8 }, (_, i) => 7000 + i);
    const at = (i: number) => instances[i % instances.length] as ServerProcess;
    // Every deployment asks through another instance, each delivery twice at once (a redelivery).
    for (const [i, runId] of runs.entries()) {
      const payload = payloads.protectionRule({ ...REPO, runId, environment: "qa" });
      const delivery = `many-${runId}`;
      await Promise.all([
        github.send(at(i).url, "deployment_protection_rule", payload, { delivery }),
        github.send(at(i + 1).url, "deployment_protection_rule", payload, { delivery }),
      ]);
    }
    const approvedOrder: number[] = [];
    for (let turn = 0; turn < runs.length; turn++) {
      // Exactly one deployment inside the key at a time: the next is approved only once this one's job ends.
      let current: number | undefined;
      for (let waited = 0; waited < 5_000 && current === undefined; waited += 20) {
        current = runs.find((r) => !approvedOrder.includes(r) && decisionsFor(r).length > 0);
        if (current === undefined) await sleep(20);
      }
      if (current === undefined) throw new Error(`no approval for turn ${turn}`);
      await sleep(300);
      const inside = runs.filter((r) => !approvedOrder.includes(r) && decisionsFor(r).length > 0);
      expect(inside).toEqual([current]);
      approvedOrder.push(current);
      const job = payloads.jobCompleted({ ...REPO, runId: current, environment: "qa" });
      await github.send(at(turn + 2).url, "workflow_job", job);
    }
    expect(approvedOrder).toEqual(runs);
    for (const r of runs) expect(decisionsFor(r).map((d) => d.body.state)).toEqual(["approved"]);
  }, 60_000);

  it("a run cancelled while another instance grants its gate leaves the key free", async () => {
    const at = (i: number) => instances[i % instances.length] as ServerProcess;
    const status = () =>
      fetch(`${at(0).url}${pathTo("status", { key: "qa-env" })}`, {
        headers: { Authorization: `Bearer ${ADMIN_TOKEN}` },
      }).then((r) => r.json() as Promise<Record<string, unknown>>);
    for (let i = 0; i < 10; i++) {
      const runId = 7100 + i;
      const token = `race-${i}`;
      expect(
        (await lease(at(i), pathTo("acquire", { key: "qa-env" }), { ttl_ms: 30_000, token })).status,
      ).toBe(200);
      const asked = payloads.protectionRule({ ...REPO, runId, environment: "qa" });
      expect((await github.send(at(i + 1).url, "deployment_protection_rule", asked)).body).toMatchObject({
        decision: "queued",
      });
      // The holder releases (its instance grants the gate) as GitHub says the job ended, elsewhere.
      const ended = payloads.jobCompleted({ ...REPO, runId, environment: "qa" });
      await Promise.all([
        lease(at(i + 2), pathTo("release", { key: "qa-env" }), { token }),
        sleep(i % 3).then(() => github.send(at(i + 1).url, "workflow_job", ended)),
      ]);
      await sleep(150);
      expect(await status()).toMatchObject({ locked: false });
    }
    const gates = await fetch(`${at(0).url}/infra/gates`, {
      headers: { Authorization: `Bearer ${ADMIN_TOKEN}` },
    }).then((r) => r.json() as Promise<{ gates: Array<{ run_url: string }> }>);
    expect(gates.gates.filter((g) => /\/runs\/71\d\d$/.test(g.run_url))).toEqual([]);
  }, 60_000);
});
