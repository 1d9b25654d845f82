/**
 * `npm run bench:gates`: the GitHub App's figures, in one run, on one LSS server (`npm start`'s
 * entry) over a fresh redis-server, GitHub played by the test emulator on loopback.
 *
 *   1. Approval latency after the release: an E2E lease holds qa-env, a deploy asks at the gate
 *      (queued), the lease is released; from the release's send to the approval's arrival at
 *      GitHub (the emulator's clock), p50/p90/p99 over BENCH_GATE_RUNS deployments (100).
 *   2. Per gated deployment, GitHub API calls and Redis commands, from the webhook that asks to
 *      the job's end: on a free key (approved at once), and behind a holder (a status comment,
 *      then the approval once it frees; the holder's own acquire and release are counted apart).
 *
 * Prints a report and writes bench/gates-results.json. Loopback only; every process is cleaned up.
 */
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { type GitHubEmulator, payloads, startGitHubEmulator } from "../test/support/github-emulator.js";
import {
  benchDir,
  benchMain,
  type Cleanup,
  commandCounters,
  commandsBetween,
  machineInfo,
  percentile,
  round,
  type Service,
  sleep,
  startBenchRedis,
  startLss,
} from "./lib.js";

const RUNS = Number(process.env.BENCH_GATE_RUNS) > 0 ? Number(process.env.BENCH_GATE_RUNS) : 100;
const COUNTED = 20;
const REPO = { repoId: 555, repo: "acme/webapp" };
const adminToken = randomBytes(16).toString("hex");

function appEnv(github: GitHubEmulator): Record<string, string> {
  return {
    LSS_RATE_LIMIT: "off",
    LSS_METRICS: "off",
    LSS_GITHUB_APP_ID: github.appId,
    LSS_GITHUB_APP_PRIVATE_KEY: github.privateKeyPem,
    LSS_GITHUB_WEBHOOK_SECRET: github.webhookSecret,
    LSS_GITHUB_API_URL: github.url,
    LSS_GATE_RULES: JSON.stringify([
      { repository_id: REPO.repoId, environment: "qa", namespace: "default", key: "qa-env" },
    ]),
  };
}

async function lease(lss: Service, action: "acquire" | "release", token: string) {
  const res = await fetch(`${lss.url}/infra/locks/qa-env/${action}`, {
    method: "POST",
    headers: { Authorization: `Bearer ${adminToken}`, "Content-Type": "application/json" },
    body: JSON.stringify(action === "acquire" ? { ttl_ms: 60_000, token } : { token }),
  });
  if (res.status !== 200) throw new Error(`${action} answered ${res.status}: ${await res.text()}`);
}

const approvalOf = (github: GitHubEmulator, runId: number) =>
  github.reviews.find((r) => r.runId === runId && r.body.state === "approved");

async function approved(github: GitHubEmulator, runId: number): Promise<number> {
  const started = Date.now();
  for (;;) {
    const review = approvalOf(github, runId);
    if (review) return review.at;
    if (Date.now() - started > 10_000) throw new Error(`run ${runId} not approved within 10 s`);
    await sleep(1);
  }
}

async function ask(github: GitHubEmulator, lss: Service, runId: number, expected: string) {
  const answer = await github.send(
    lss.url,
    "deployment_protection_rule",
    payloads.protectionRule({ ...REPO, runId, environment: "qa" }),
  );
  const decision = (answer.body as { decision?: string } | null)?.decision;
  if (decision !== expected) throw new Error(`run ${runId}: ${JSON.stringify(answer.body)}`);
}

async function ended(github: GitHubEmulator, lss: Service, runId: number) {
  const job = payloads.jobCompleted({ ...REPO, runId, environment: "qa" });
  const answer = await github.send(lss.url, "workflow_job", job);
  if ((answer.body as { released?: number }).released !== 1)
    throw new Error(`run ${runId}'s end: ${JSON.stringify(answer.body)}`);
}

/** Approval latency after the holder's release, over `runs` deployments. */
async function latencies(github: GitHubEmulator, lss: Service, firstRun: number, runs = RUNS) {
  const ms: number[] = [];
  for (let i = 0; i < runs; i++) {
    const runId = firstRun + i;
    await lease(lss, "acquire", `e2e-${runId}`);
    await ask(github, lss, runId, "queued");
    const releasedAt = Date.now();
    await lease(lss, "release", `e2e-${runId}`);
    ms.push((await approved(github, runId)) - releasedAt);
    await ended(github, lss, runId);
  }
  return ms;
}

interface PerDeployment {
  githubCalls: number;
  redisCommands: number;
  byCommand: Record<string, number>;
}

/** GitHub calls and Redis commands per deployment, over COUNTED of them, averaged. */
async function costs(
  github: GitHubEmulator,
  lss: Service,
  redis: Awaited<ReturnType<typeof startBenchRedis>>,
  firstRun: number,
  contended: boolean,
): Promise<PerDeployment & { holder: PerDeployment | null }> {
  // The holder's own acquire and release, measured alone, to count apart.
  let holder: PerDeployment | null = null;
  if (contended) {
    const before = await commandCounters(redis.client);
    const calls = github.requests();
    for (let i = 0; i < COUNTED; i++) {
      await lease(lss, "acquire", `alone-${i}`);
      await lease(lss, "release", `alone-${i}`);
    }
    const spent = commandsBetween(before, await commandCounters(redis.client));
    holder = perOne(spent, github.requests() - calls);
  }
  await sleep(200);
  const before = await commandCounters(redis.client);
  const calls = github.requests();
  for (let i = 0; i < COUNTED; i++) {
    const runId = firstRun + i;
    if (contended) await lease(lss, "acquire", `holder-${runId}`);
    await ask(github, lss, runId, contended ? "queued" : "approved");
    if (contended) await lease(lss, "release", `holder-${runId}`);
    await approved(github, runId);
    await ended(github, lss, runId);
  }
  await sleep(200); // the follow loop's pass after the last release
  const spent = commandsBetween(before, await commandCounters(redis.client));
  const all = perOne(spent, github.requests() - calls);
  if (!holder) return { ...all, holder };
  const byCommand: Record<string, number> = {};
  for (const [name, n] of Object.entries(all.byCommand))
    byCommand[name] = round(n - (holder.byCommand[name] ?? 0), 1);
  return {
    githubCalls: all.githubCalls,
    redisCommands: round(all.redisCommands - holder.redisCommands, 1),
    byCommand,
    holder,
  };
}

const perOne = (spent: { executed: number; byCommand: Record<string, number> }, calls: number) => ({
  githubCalls: round(calls / COUNTED, 2),
  redisCommands: round(spent.executed / COUNTED, 1),
  byCommand: Object.fromEntries(Object.entries(spent.byCommand).map(([k, v]) => [k, round(v / COUNTED, 1)])),
});

async function main(cleanup: Cleanup) {
  const github = await startGitHubEmulator();
  cleanup.defer(() => github.close());
  const redis = await startBenchRedis(cleanup);
  const lss = await startLss(
    { name: "lss", redisUrl: redis.server.url, adminToken, env: appEnv(github) },
    cleanup,
  );
  // Warm: the installation token, the scripts, the connections.
  await latencies(github, lss, 1, 5).catch((err) => {
    throw new Error(`warm-up: ${(err as Error).message}`);
  });
  const ms = await latencies(github, lss, 10_000);
  const free = await costs(github, lss, redis, 20_000, false);
  const behind = await costs(github, lss, redis, 30_000, true);
  const report = {
    machine: machineInfo(),
    redis: redis.version,
    runs: RUNS,
    approvalAfterReleaseMs: {
      p50: round(percentile(ms, 50), 1),
      p90: round(percentile(ms, 90), 1),
      p99: round(percentile(ms, 99), 1),
      max: round(Math.max(...ms), 1),
    },
    perGatedDeployment: { freeKey: free, behindHolder: behind },
  };
  console.log("\nApproval after the holder's release (release sent → approval at GitHub):");
  console.log(
    `  p50 ${report.approvalAfterReleaseMs.p50} ms, p90 ${report.approvalAfterReleaseMs.p90} ms, p99 ${report.approvalAfterReleaseMs.p99} ms, max ${report.approvalAfterReleaseMs.max} ms over ${RUNS} deployments`,
  );
  console.log("\nPer gated deployment (asked → approved → job ended):");
  for (const [name, c] of [
    ["free key", free],
    ["behind a holder", behind],
  ] as const)
    console.log(
      `  ${name}: ${c.githubCalls} GitHub calls, ${c.redisCommands} Redis commands ${JSON.stringify(c.byCommand)}`,
    );
  if (behind.holder)
    console.log(
      `  (the holder's own acquire + release, counted apart: ${behind.holder.redisCommands} commands)`,
    );
  writeFileSync(join(benchDir, "gates-results.json"), `${JSON.stringify(report, null, 2)}\n`);
}

benchMain("the GitHub App bench", main);
