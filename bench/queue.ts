/**
 * `npm run bench:queue`: what the queue's policies and notifications cost, in one run, on one LSS
 * server (`npm start`'s entry) over a fresh redis-server, a webhook receiver on loopback.
 *
 *   1. Redis commands per waiting acquire that joins a held key's queue (INFO commandstats, which
 *      counts the commands a script runs): plain, with a priority, with a supersede group (the
 *      first of its group), and one that supersedes the waiter of its group before it.
 *   2. Redis commands per acquire + release, without a webhook subscription and with one that
 *      wants the release (the notice's claim, the outbox, the attempt's claim).
 *   3. Delivery latency: from a release's send to its webhook's arrival at the receiver,
 *      p50/p90/p99 over BENCH_QUEUE_RUNS releases (200).
 *
 * Prints a report and writes bench/queue-results.json. Loopback only; every process is cleaned up.
 */
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { startWebhookReceiver, type WebhookReceiver } from "../test/support/webhook-receiver.js";
import {
  type BenchRedis,
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

const RUNS = Number(process.env.BENCH_QUEUE_RUNS) > 0 ? Number(process.env.BENCH_QUEUE_RUNS) : 200;
const COUNTED = 20;
const adminToken = randomBytes(16).toString("hex");

async function post(lss: Service, path: string, body: unknown, expected = [200]) {
  const res = await fetch(`${lss.url}${path}`, {
    method: "POST",
    headers: { Authorization: `Bearer ${adminToken}`, "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  if (!expected.includes(res.status)) throw new Error(`${path} answered ${res.status}: ${text}`);
  return JSON.parse(text || "null");
}

const acquire = (lss: Service, key: string, body: Record<string, unknown>, expected = [200]) =>
  post(lss, `/infra/locks/${key}/acquire`, { ttl_ms: 60_000, ...body }, expected);
const release = (lss: Service, key: string, token: string) =>
  post(lss, `/infra/locks/${key}/release`, { token });

type Spent = { commands: number; byCommand: Record<string, number> };
const perOne = (spent: { executed: number; byCommand: Record<string, number> }): Spent => ({
  commands: round(spent.executed / COUNTED, 1),
  byCommand: Object.fromEntries(Object.entries(spent.byCommand).map(([k, v]) => [k, round(v / COUNTED, 1)])),
});

/** Commands per waiting acquire that joins the queue of a held key (one short wait each). */
async function joins(
  lss: Service,
  redis: BenchRedis,
  name: string,
  extra: (i: number) => Record<string, unknown>,
) {
  const key = `join-${name}`;
  await acquire(lss, key, { token: `${key}-holder` });
  // The group's first waiter, before counting: each counted one supersedes the one before it.
  if (name === "superseding")
    await acquire(lss, key, { token: `${key}-w-first`, wait_ms: 1, ...extra(-1) }, [409]);
  await sleep(100);
  const before = await commandCounters(redis.client);
  for (let i = 0; i < COUNTED; i++)
    await acquire(lss, key, { token: `${key}-w${i}`, wait_ms: 1, ...extra(i) }, [409]);
  await sleep(100);
  return perOne(commandsBetween(before, await commandCounters(redis.client)));
}

/** Commands per acquire + release of a free key. */
async function cycles(lss: Service, redis: BenchRedis, name: string, receiver: WebhookReceiver | null) {
  const before = await commandCounters(redis.client);
  const arrived = receiver?.received.length ?? 0;
  for (let i = 0; i < COUNTED; i++) {
    await acquire(lss, `cycle-${name}`, { token: `${name}-${i}` });
    await release(lss, `cycle-${name}`, `${name}-${i}`);
  }
  if (receiver) await receiver.waitFor(arrived + COUNTED, 10_000);
  await sleep(200);
  return perOne(commandsBetween(before, await commandCounters(redis.client)));
}

/** From a release's send to its delivery's arrival at the receiver. */
async function latencies(lss: Service, receiver: WebhookReceiver) {
  const ms: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    await acquire(lss, "latency", { token: `lat-${i}` });
    const arrived = receiver.received.length;
    const sent = Date.now();
    await release(lss, "latency", `lat-${i}`);
    const [delivery] = (await receiver.waitFor(arrived + 1, 10_000)).slice(arrived);
    ms.push((delivery?.at ?? Number.NaN) - sent);
  }
  return ms;
}

async function main(cleanup: Cleanup) {
  const receiver = await startWebhookReceiver();
  cleanup.defer(() => receiver.close());
  const redis = await startBenchRedis(cleanup);
  const lss = await startLss(
    {
      name: "lss",
      redisUrl: redis.server.url,
      adminToken,
      env: { LSS_RATE_LIMIT: "off", LSS_METRICS: "off", LSS_WEBHOOK_ALLOW_PRIVATE: "true" },
    },
    cleanup,
  );
  // Warm: the scripts, the connections.
  await cycles(lss, redis, "warm", null);
  const queue = {
    plain: await joins(lss, redis, "plain", () => ({})),
    priority: await joins(lss, redis, "priority", () => ({ priority: 50 })),
    groupFirst: await joins(lss, redis, "group-first", (i) => ({ supersede: `g${i}` })),
    superseding: await joins(lss, redis, "superseding", () => ({ supersede: "deploy/main" })),
  };
  const quiet = await cycles(lss, redis, "quiet", null);
  await post(
    lss,
    "/infra/webhooks",
    { url: `${receiver.url}/ok/bench`, events: ["released"], key_pattern: "cycle-notified" },
    [201],
  );
  // Once every instance has read the new subscription (they cache them for 10 s).
  await sleep(10_500);
  const notified = await cycles(lss, redis, "notified", receiver);
  await post(
    lss,
    "/infra/webhooks",
    { url: `${receiver.url}/ok/latency`, events: ["released"], key_pattern: "latency" },
    [201],
  );
  await sleep(10_500);
  const ms = await latencies(lss, receiver);
  const report = {
    machine: machineInfo(),
    redis: redis.version,
    runs: RUNS,
    commandsPerQueueJoin: queue,
    commandsPerAcquireAndRelease: { withoutSubscription: quiet, withSubscription: notified },
    deliveryAfterReleaseMs: {
      p50: round(percentile(ms, 50), 1),
      p90: round(percentile(ms, 90), 1),
      p99: round(percentile(ms, 99), 1),
      max: round(Math.max(...ms), 1),
    },
  };
  console.log("\nRedis commands per waiting acquire that joins a held key's queue:");
  for (const [name, c] of Object.entries(queue))
    console.log(`  ${name}: ${c.commands} ${JSON.stringify(c.byCommand)}`);
  console.log("\nRedis commands per acquire + release:");
  console.log(`  without a subscription: ${quiet.commands} ${JSON.stringify(quiet.byCommand)}`);
  console.log(
    `  with one that wants the release: ${notified.commands} ${JSON.stringify(notified.byCommand)}`,
  );
  const d = report.deliveryAfterReleaseMs;
  console.log(
    `\nDelivery (release sent → webhook at the receiver): p50 ${d.p50} ms, p90 ${d.p90} ms, p99 ${d.p99} ms, max ${d.max} ms over ${RUNS}`,
  );
  writeFileSync(join(benchDir, "queue-results.json"), `${JSON.stringify(report, null, 2)}\n`);
}

benchMain("the queue policies bench", main);
