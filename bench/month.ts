/**
 * `npm run bench:month`: what docs/costs.md's typical month costs on Upstash, as Upstash bills it
 * (every command, a script's included), with the server's defaults (the rate limiter on).
 *
 * The month: 50 E2E jobs a day hold `qa-env` for 15 minutes with the action's `ttl: 60s`, and 20
 * deploys a day wait 5 minutes for it and then hold it 5 minutes; 30 days.
 *
 *   1. The jobs' requests replayed through the API on Upstash (the REST bridge, the real
 *      @upstash/redis client), each sequence as the action sends it: an acquire, its renewals at the
 *      action's own cadence (src/client/renew-loop.ts renewEvery), the release. Counted with Redis's
 *      INFO behind the bridge. The first E2E job of a day finds a new key (nobody held it for hours);
 *      the others a key used in the last hour.
 *   2. Waiting, through the built action (dist/main under Node 24, as the runner runs it): one
 *      deploy job waits for WINDOW_MS while the E2E holder renews at the action's cadence; commands
 *      per waiter-minute with everything included (its long-polls' scripts, SUBSCRIBE, the rate
 *      limiter, the holder's PUBLISHes), the holder's own renewals measured apart and subtracted.
 *      On TCP Redis and on Upstash.
 *   3. The month: 1,500 E2E jobs and 600 deploys from those figures.
 *
 * Prints the block of docs/costs.md and writes bench/month-results.json; with BENCH_WRITE_DOCS=1
 * it also replaces the block between docs/costs.md's bench:month markers.
 * Knobs: BENCH_WINDOW_MS (120000). Talks to 127.0.0.1 only; takes about 5 minutes.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Redis } from "ioredis";
import { DEFAULT_CONFIG } from "../server/config.js";
import { IDLE_READ_MS } from "../server/notify/subscriptions.js";
import { renewEvery } from "../src/client/renew-loop.js";
import { actionInputDefaults, Job } from "../test/support/runner.js";
import { startUpstashBridge } from "../test/support/upstash-bridge.js";
import {
  benchDir,
  benchMain,
  type Cleanup,
  commandCounters,
  commandsBetween,
  machineInfo,
  rootDir,
  round,
  type Service,
  sleep,
  startBenchRedis,
  startLss,
} from "./lib.js";

const ADMIN = "bench-admin-token-0123456789";
const WINDOW_MS = Number(process.env.BENCH_WINDOW_MS) || 120_000;
const TTL_MS = 60_000;
const DAYS = 30;
const E2E_PER_DAY = 50;
const DEPLOYS_PER_DAY = 20;
const E2E_HOLD_MS = 15 * 60_000;
const DEPLOY_WAIT_MINUTES = 5;
const DEPLOY_HOLD_MS = 5 * 60_000;
const FREE_TIER = 500_000;
/** Renewals in a hold of holdMs: one each time a third of the ttl is left, before the job ends. */
const renewalsIn = (holdMs: number) => Math.ceil(holdMs / renewEvery(TTL_MS)) - 1;

type StoreKind = "redis" | "upstash";

async function call(base: string, path: string, payload: unknown) {
  const res = await fetch(`${base}${path}`, {
    method: "POST",
    headers: { Authorization: `Bearer ${ADMIN}`, "Content-Type": "application/json" },
    body: JSON.stringify(payload),
  });
  const body = (await res.json()) as Record<string, unknown>;
  if (res.status !== 200) throw new Error(`${path}: ${res.status} ${JSON.stringify(body)}`);
  return body;
}

const lease = (base: string, key: string) => ({
  acquire: (extra: object = {}) =>
    call(base, `/infra/locks/${key}/acquire`, { ttl_ms: TTL_MS, token: `t-${key}`, ...extra }),
  renew: () => call(base, `/infra/locks/${key}/renew`, { token: `t-${key}`, ttl_ms: TTL_MS }),
  release: () => call(base, `/infra/locks/${key}/release`, { token: `t-${key}` }),
});

/** Commands Redis ran for op (the bench's own INFO subtracted), averaged over `times` runs. */
async function measure(redis: Redis, times: number, op: (i: number) => Promise<unknown>) {
  const before = await commandCounters(redis);
  for (let i = 0; i < times; i++) await op(i);
  const d = commandsBetween(before, await commandCounters(redis));
  return round(d.executed / times);
}

/** 1. Each operation of the month's jobs, as the action sends it, on one server. */
async function operations(redis: Redis, base: string, tag: string) {
  const n = 10;
  const key = (what: string, i: number) => `${tag}-${what}-${i}`;
  await lease(base, key("warm", 0)).acquire(); // loads the scripts outside the measurement
  const newKey = await measure(redis, n, (i) => lease(base, key("new", i)).acquire());
  for (let i = 0; i < n; i++) await lease(base, key("new", i)).release();
  const usedKey = await measure(redis, n, (i) => lease(base, key("new", i)).acquire());
  const renew = await measure(redis, n, (i) => lease(base, key("new", i)).renew());
  const release = await measure(redis, n, (i) => lease(base, key("new", i)).release());
  // A deploy's first ask (it joins the queue; the long-poll is cut short by the holder's release)
  // and its grant, less the release itself (the E2E job's).
  const askAndGrant = await measure(redis, n, async (i) => {
    const held = lease(base, key("held", i));
    await held.acquire();
    const deploy = call(base, `/infra/locks/${key("held", i)}/acquire`, {
      ttl_ms: TTL_MS,
      token: `d-${i}`,
      wait_ms: 30_000,
    });
    await sleep(200);
    await held.release();
    await deploy;
  });
  const heldAcquire = await measure(redis, n, (i) => lease(base, key("held2", i)).acquire());
  const heldRelease = await measure(redis, n, (i) => lease(base, key("held2", i)).release());
  return { newKey, usedKey, renew, release, askAndGrant: round(askAndGrant - heldAcquire - heldRelease) };
}

/** 2. One deploy waits through the built action while the holder renews at the action's cadence. */
async function waiting(kind: StoreKind, redis: Redis, base: string) {
  const key = `wait-${kind}`;
  const holder = lease(base, key);
  await holder.acquire();
  let renewals = 0;
  const stop = new AbortController();
  const renewing = (async () => {
    while (!stop.signal.aborted) {
      await Promise.race([
        sleep(renewEvery(TTL_MS)),
        new Promise((r) => stop.signal.addEventListener("abort", r)),
      ]);
      if (stop.signal.aborted) return;
      await holder.renew();
      renewals++;
    }
  })();
  // What a renewal costs with nobody waiting (it publishes nothing then): subtracted below.
  const perRenewal = await measure(redis, 5, () => holder.renew());
  const inputDefaults = actionInputDefaults(join(rootDir, "action.yml"));
  const job = new Job({ inputDefaults, env: { GITHUB_REPOSITORY: "bench/app", GITHUB_WORKFLOW: "deploy" } });
  const inputs = { mode: "acquire", url: base, token: ADMIN, key, ttl: "60s", timeout: "10m" };
  console.log(`  ${kind}: a deploy job waits through the action (${WINDOW_MS / 1000} s)…`);
  const running = job.start("dist/main/index.js", { inputs });
  await sleep(3000); // it has joined the queue
  const before = await commandCounters(redis);
  const renewalsBefore = renewals;
  const started = performance.now();
  await sleep(WINDOW_MS);
  const window = commandsBetween(before, await commandCounters(redis));
  const elapsedMs = performance.now() - started;
  const holderRenewals = renewals - renewalsBefore;
  stop.abort();
  await renewing;
  await holder.release();
  const result = await running.result;
  if (result.outputs.acquired !== "true") throw new Error(`the deploy job: ${result.stdout}`);
  await job.step("dist/post/index.js", { inputs });
  await job.cleanup();
  const waiterShare = window.executed - holderRenewals * perRenewal;
  const perMinute = round(waiterShare * (60_000 / elapsedMs));
  const byCommand = Object.fromEntries(
    Object.entries(window.byCommand).map(([name, calls]) => [name, round(calls * (60_000 / elapsedMs))]),
  );
  console.log(
    `  ${kind}: ${perMinute} commands per waiter-minute (${JSON.stringify(byCommand)} a minute, the holder's renewals included)`,
  );
  return {
    perWaiterMinute: perMinute,
    windowMs: Math.round(elapsedMs),
    holderRenewals,
    perRenewal,
    byCommandPerMinute: byCommand,
  };
}

type Ops = Awaited<ReturnType<typeof operations>>;

/** 3. The month from the figures. */
function month(ops: Ops, waitPerMinute: number) {
  const e2eRenewals = renewalsIn(E2E_HOLD_MS);
  const deployRenewals = renewalsIn(DEPLOY_HOLD_MS);
  const e2eJobs = DAYS * E2E_PER_DAY;
  const deploys = DAYS * DEPLOYS_PER_DAY;
  const e2eAcquire = (ops.newKey + (E2E_PER_DAY - 1) * ops.usedKey) / E2E_PER_DAY;
  const e2e = e2eAcquire + e2eRenewals * ops.renew + ops.release;
  const deploy =
    ops.askAndGrant + DEPLOY_WAIT_MINUTES * waitPerMinute + deployRenewals * ops.renew + ops.release;
  // A Node server's own tick with nobody subscribed: one read every IDLE_READ_MS (test/notifications
  // holds the tick to it; a window short enough for a bench would see none).
  const tick = (DAYS * 86_400_000) / IDLE_READ_MS;
  const total = e2eJobs * e2e + deploys * deploy + tick;
  // Requests: each job's acquire, renewals and release, and a deploy's long-polls while it waits.
  const longPolls = Math.ceil((DEPLOY_WAIT_MINUTES * 60_000) / DEFAULT_CONFIG.maxWaitMs);
  const requests = e2eJobs * (e2eRenewals + 2) + deploys * (longPolls + deployRenewals + 1);
  return {
    e2eRenewals,
    deployRenewals,
    e2ePerJob: round(e2e, 1),
    deployPerJob: round(deploy, 1),
    e2eMonth: Math.round(e2eJobs * e2e),
    deployMonth: Math.round(deploys * deploy),
    tickMonth: Math.round(tick),
    requests,
    total: Math.round(total),
    ofFreeTier: round(total / FREE_TIER, 3),
  };
}

const int = (n: number) => Math.round(n).toLocaleString("en-US");

function readmeBlock(
  ops: { on: Ops; off: Ops },
  wait: Record<StoreKind, { perWaiterMinute: number }>,
  m: ReturnType<typeof month>,
  mOff: ReturnType<typeof month>,
) {
  const { on, off } = ops;
  const every = renewEvery(TTL_MS) / 1000;
  return `| operation, as the action sends it | Upstash commands | with the rate limiter |
| --- | --- | --- |
| acquire, a new key | ${off.newKey} | ${on.newKey} |
| acquire, a key used in the last hour | ${off.usedKey} | ${on.usedKey} |
| renew | ${off.renew} | ${on.renew} |
| release | ${off.release} | ${on.release} |
| a deploy's first ask and its grant (after waiting) | ${off.askAndGrant} | ${on.askAndGrant} |
| waiting, per waiter-minute (the action's long-polls, SUBSCRIBE, the holder's PUBLISHes) | | ${wait.upstash.perWaiterMinute} (TCP Redis: ${wait.redis.perWaiterMinute}) |

**A typical month** on Upstash: 50 E2E jobs a day that hold \`qa-env\` for 15 minutes with the
action's \`ttl: 60s\` (renewed every ${every} s), and 20 deploys a day that wait 5 minutes for it and then
hold it 5 minutes, with the server's defaults (the rate limiter on):

| | per job | jobs a month | commands a month |
| --- | --- | --- | --- |
| E2E job: acquire (a new key the first time a day), ${m.e2eRenewals} renewals, release | ${m.e2ePerJob} | ${int(DAYS * E2E_PER_DAY)} | ${int(m.e2eMonth)} |
| deploy: a first ask and its grant, 5 waiting minutes, ${m.deployRenewals} renewals, release | ${m.deployPerJob} | ${int(DAYS * DEPLOYS_PER_DAY)} | ${int(m.deployMonth)} |
| the server's own tick, with no webhook subscribed: a look every ${IDLE_READ_MS / 60_000} minutes | | | ${int(m.tickMonth)} |
| **total** | | | **${int(m.total)}** (${int(mOff.total)} with \`LSS_RATE_LIMIT=off\`) |

That is ${Math.round(m.ofFreeTier * 100)} % of Upstash's free tier (500,000 commands a month), with jobs that
authenticate with OIDC (or the admin token). An API token, as in the quickstart, costs one \`GET\` more
per request made more than \`LSS_TOKEN_CACHE_MS\` (10 s) after the server last looked it up: at
most ${int(m.requests)} a month here, ${int(m.total + m.requests)} in all (${Math.round(((m.total + m.requests) / FREE_TIER) * 100)} %). The tick's line follows its rule (a
test holds it to it), not a measurement.`;
}

const START = "<!-- bench:month (npm run bench:month writes this block) -->";
const END = "<!-- /bench:month -->";

function writeDocs(block: string) {
  const file = join(rootDir, "docs", "costs.md");
  const text = readFileSync(file, "utf8");
  const from = text.indexOf(START);
  const to = text.indexOf(END);
  if (from < 0 || to < from) throw new Error(`docs/costs.md has no ${START} … ${END} block`);
  writeFileSync(file, `${text.slice(0, from + START.length)}\n${block}\n${text.slice(to)}`);
  console.log("docs/costs.md: the bench:month block rewritten");
}

benchMain("the servers and redis-server", async (cleanup: Cleanup) => {
  const redis = await startBenchRedis(cleanup);
  const bridge = await startUpstashBridge({ redisUrl: redis.server.url });
  cleanup.defer(() => bridge.close());
  const upstashEnv = { UPSTASH_REDIS_REST_URL: bridge.url, UPSTASH_REDIS_REST_TOKEN: bridge.token };
  const start = (
    name: string,
    env: Record<string, string>,
    redisUrl: string | null = null,
  ): Promise<Service> =>
    startLss({ name, redisUrl, adminToken: ADMIN, env: { LSS_KEY_PREFIX: name, ...env } }, cleanup);
  // The server's defaults: the rate limiter on (LSS_RATE_LIMIT 1200 a minute).
  const upstash = await start("upstash", upstashEnv);
  const upstashOff = await start("upstash-off", { ...upstashEnv, LSS_RATE_LIMIT: "off" });
  const tcp = await start("tcp", {}, redis.server.url);
  console.log("operations on Upstash…");
  const ops = {
    on: await operations(redis.client, upstash.url, "on"),
    off: await operations(redis.client, upstashOff.url, "off"),
  };
  console.log(`  with the rate limiter ${JSON.stringify(ops.on)}; without ${JSON.stringify(ops.off)}`);
  const wait = {
    redis: await waiting("redis", redis.client, tcp.url),
    upstash: await waiting("upstash", redis.client, upstash.url),
  };
  const m = month(ops.on, wait.upstash.perWaiterMinute);
  const mOff = month(ops.off, wait.upstash.perWaiterMinute);
  const block = readmeBlock(ops, wait, m, mOff);
  console.log(`\n${block}\n`);
  writeFileSync(
    join(benchDir, "month-results.json"),
    `${JSON.stringify(
      {
        machine: machineInfo(),
        windowMs: WINDOW_MS,
        renewEveryMs: renewEvery(TTL_MS),
        operations: ops,
        waiting: wait,
        month: m,
        monthWithoutRateLimiter: mOff,
      },
      null,
      2,
    )}\n`,
  );
  console.log("written to bench/month-results.json");
  if (process.env.BENCH_WRITE_DOCS === "1") writeDocs(block);
});
