/**
 * `npm run bench:topologies`: what outgrowing one Redis costs, in one run.
 *
 *   1. Acquire+release pairs/s and acquire latency (autocannon, 50 connections) of one LSS server
 *      on: one node; a primary with a replica; the same with LSS_REDIS_MIN_REPLICAS=1 (WAIT 1 after
 *      each write); a three-node Redis Cluster (one namespace: one slot, one node).
 *   2. Redis commands per acquire+release on each (INFO total_commands_processed, summed over the
 *      nodes that serve writes; with a replica this counts its REPLCONF ACKs, one per WAIT).
 *      The first setup is measured again last, to show how far figures move within one run.
 *   3. How long writes are unavailable around a Sentinel failover: one client acquires and
 *      releases in a loop (a new key each time, so that a release lost in the failover holds up
 *      nothing); the primary is killed; the longest stretch without a grant is the outage. Without LSS_REDIS_MIN_REPLICAS, with it and one replica (the old primary must come
 *      back before writes are confirmed again), and with it and two replicas.
 *
 * Prints a report and writes bench/topologies-results.json. Loopback only; every process is
 * cleaned up. Knobs (env): BENCH_DURATION s (10), BENCH_WARMUP s (2), BENCH_CONNECTIONS (50).
 */
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { commandCount, startRedisServer } from "../test/support/redis-server.js";
import { inSync, startRedisCluster, startSentinelGroup, waitFor } from "../test/support/redis-topology.js";
import {
  benchDir,
  benchMain,
  type Cleanup,
  machineInfo,
  round,
  type Service,
  sleep,
  startBenchRedis,
  startLss,
} from "./lib.js";
import { type LoadResult, load } from "./load.js";

const envInt = (name: string, fallback: number) => {
  const value = Number(process.env[name]);
  return Number.isInteger(value) && value > 0 ? value : fallback;
};
const DURATION_S = envInt("BENCH_DURATION", 10);
const WARMUP_S = envInt("BENCH_WARMUP", 2);
const CONNECTIONS = envInt("BENCH_CONNECTIONS", 50);
const COUNTED_PAIRS = 200;
const adminToken = randomBytes(16).toString("hex");
const common = { LSS_RATE_LIMIT: "off", LSS_METRICS: "off" };

interface Throughput {
  setup: string;
  pairsPerSec: number;
  acquireP50Ms: number;
  acquireP99Ms: number;
  non2xx: number;
  commandsPerPair: number;
}

const headers = { Authorization: `Bearer ${adminToken}`, "Content-Type": "application/json" };
const post = (url: string, path: string, body: unknown) =>
  fetch(`${url}${path}`, {
    method: "POST",
    headers,
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(3000),
  });

/** Sequential acquire+release pairs; the commands the write nodes ran for them, per pair. */
async function commandsPerPair(service: Service, writePorts: number[]): Promise<number> {
  const total = async () => {
    let sum = 0;
    for (const port of writePorts) sum += await commandCount(`redis://127.0.0.1:${port}`);
    return sum;
  };
  const before = await total();
  for (let i = 0; i < COUNTED_PAIRS; i++) {
    const key = `counted-${i}`;
    const granted = await post(service.url, `/infra/locks/${key}/acquire`, { ttl_ms: 30_000 });
    const { token } = (await granted.json()) as { token: string };
    await post(service.url, `/infra/locks/${key}/release`, { token });
  }
  // Each INFO counts itself in the next reading (commandCount): one per node, taken off.
  return round((await total()) - before - writePorts.length, 0) / COUNTED_PAIRS;
}

async function measure(setup: string, service: Service, writePorts: number[]): Promise<Throughput> {
  const watch = { [service.name]: service.pid };
  const opts = { connections: CONNECTIONS, adminToken, watch };
  console.log(`${setup}: warm-up ${WARMUP_S} s, then ${DURATION_S} s with ${CONNECTIONS} connections…`);
  await load(setup, service.url, { ...opts, durationS: WARMUP_S, keyPrefix: "warm" });
  const result: LoadResult = await load(setup, service.url, {
    ...opts,
    durationS: DURATION_S,
    keyPrefix: "pair",
  });
  return {
    setup,
    pairsPerSec: result.pairsPerSec,
    acquireP50Ms: result.latencyMs.acquire.p50,
    acquireP99Ms: result.latencyMs.acquire.p99,
    non2xx: result.non2xx,
    commandsPerPair: await commandsPerPair(service, writePorts),
  };
}

async function throughputs(cleanup: Cleanup): Promise<Throughput[]> {
  const results: Throughput[] = [];
  const { server: single } = await startBenchRedis(cleanup);
  const one = await startLss(
    { name: "lss (one node)", redisUrl: single.url, adminToken, env: { ...common, LSS_KEY_PREFIX: "one" } },
    cleanup,
  );
  results.push(await measure("one node", one, [single.port]));
  await one.stop();

  const primary = await startRedisServer();
  cleanup.defer(() => primary.stop());
  const replica = await startRedisServer({ args: ["--replicaof", "127.0.0.1", String(primary.port)] });
  cleanup.defer(() => replica.stop());
  await waitFor("the replica", () => inSync(primary.port, replica.port));
  const async = await startLss(
    { name: "lss (replica)", redisUrl: primary.url, adminToken, env: { ...common, LSS_KEY_PREFIX: "async" } },
    cleanup,
  );
  results.push(await measure("primary + replica", async, [primary.port]));
  await async.stop();
  const acked = await startLss(
    {
      name: "lss (WAIT 1)",
      redisUrl: primary.url,
      adminToken,
      env: { ...common, LSS_KEY_PREFIX: "acked", LSS_REDIS_MIN_REPLICAS: "1" },
    },
    cleanup,
  );
  results.push(await measure("primary + replica, LSS_REDIS_MIN_REPLICAS=1", acked, [primary.port]));
  await acked.stop();

  const cluster = await startRedisCluster();
  cleanup.defer(() => cluster.stop());
  const clustered = await startLss(
    {
      name: "lss (cluster)",
      redisUrl: null,
      adminToken,
      env: { ...common, REDIS_CLUSTER_NODES: cluster.nodeList },
    },
    cleanup,
  );
  results.push(
    await measure(
      "3-node cluster, one namespace",
      clustered,
      cluster.nodes.map((n) => n.port),
    ),
  );
  await clustered.stop();
  // The first setup again: how much the figures move between runs on this machine.
  const again = await startLss(
    {
      name: "lss (one node, again)",
      redisUrl: single.url,
      adminToken,
      env: { ...common, LSS_KEY_PREFIX: "again" },
    },
    cleanup,
  );
  results.push(await measure("one node, again", again, [single.port]));
  await again.stop();
  return results;
}

interface Outage {
  setup: string;
  promotedAfterMs: number;
  /** The longest stretch without a grant around the kill. */
  outageMs: number;
  failedCalls: number;
}

/** One client's acquire/release loop through a Sentinel failover: how long no grant came. */
async function failover(
  setup: string,
  replicas: number,
  minReplicas: number,
  cleanup: Cleanup,
): Promise<Outage> {
  const group = await startSentinelGroup({ replicas });
  cleanup.defer(() => group.stop());
  const env = {
    ...common,
    REDIS_SENTINELS: group.sentinelList,
    REDIS_SENTINEL_MASTER: group.master,
    LSS_STORE_TIMEOUT_MS: "1000",
    ...(minReplicas
      ? { LSS_REDIS_MIN_REPLICAS: String(minReplicas), LSS_REDIS_REPLICA_TIMEOUT_MS: "300" }
      : {}),
  };
  const service = await startLss({ name: `lss (${setup})`, redisUrl: null, adminToken, env }, cleanup);
  let failedCalls = 0;
  const grants: number[] = [];
  let stop = false;
  const loop = (async () => {
    for (let i = 0; !stop; i++) {
      const res = await post(service.url, `/infra/locks/failover-${i}/acquire`, {
        ttl_ms: 10_000,
        token: `t-${i}`,
      }).catch(() => null);
      if (res?.status !== 200) {
        failedCalls++;
        await sleep(20);
        continue;
      }
      grants.push(performance.now());
      await post(service.url, `/infra/locks/failover-${i}/release`, { token: `t-${i}` }).catch(() => null);
    }
  })();
  await sleep(1000);
  const oldPort = await group.primaryPort();
  const old = group.nodeAt(oldPort);
  const killedAt = performance.now();
  await old.kill();
  await waitFor("the promotion", async () => (await group.primaryPort()) !== oldPort, 30_000);
  const promotedAfterMs = Math.round(performance.now() - killedAt);
  // The failed node comes back empty (as a managed service replaces it); the sentinels make it a replica.
  await old.restart();
  // Writes are back once grants come again; then a few more seconds, to see that they keep coming.
  await waitFor("grants after the kill", async () => grants.filter((t) => t > killedAt).length > 20, 60_000);
  await sleep(2000);
  stop = true;
  await loop;
  // The outage: the longest stretch without a grant from a second before the kill (a grant in
  // flight as the primary died may still land just after it).
  const around = grants.filter((t) => t > killedAt - 1000);
  let outageMs = 0;
  for (let i = 1; i < around.length; i++)
    outageMs = Math.max(outageMs, (around[i] as number) - (around[i - 1] as number));
  await service.stop();
  await group.stop();
  return { setup, promotedAfterMs, outageMs: Math.round(outageMs), failedCalls };
}

benchMain("the servers, the Redis nodes and the sentinels", async (cleanup) => {
  const results = await throughputs(cleanup);
  const outages = [
    await failover("Sentinel, 1 replica", 1, 0, cleanup),
    await failover("Sentinel, 1 replica, LSS_REDIS_MIN_REPLICAS=1", 1, 1, cleanup),
    await failover("Sentinel, 2 replicas, LSS_REDIS_MIN_REPLICAS=1", 2, 1, cleanup),
  ];
  const base = results[0] as Throughput;
  console.log("\nacquire+release through one LSS server:");
  for (const r of results) {
    console.log(
      `  ${r.setup.padEnd(46)} ${String(r.pairsPerSec).padStart(8)} pairs/s (${round(r.pairsPerSec / base.pairsPerSec, 2)}×)` +
        `   acquire p50 ${r.acquireP50Ms} ms p99 ${r.acquireP99Ms} ms   ${r.commandsPerPair} commands/pair   non-2xx ${r.non2xx}`,
    );
  }
  console.log(
    "\nwrites unavailable around a Sentinel failover (primary killed; down-after-milliseconds 1000):",
  );
  for (const o of outages) {
    console.log(
      `  ${o.setup.padEnd(46)} promoted after ${o.promotedAfterMs} ms, no grant for ${o.outageMs} ms (${o.failedCalls} failed calls)`,
    );
  }
  const file = join(benchDir, "topologies-results.json");
  writeFileSync(file, `${JSON.stringify({ machine: machineInfo(), results, outages }, null, 2)}\n`);
  console.log(`\nwritten to ${file}`);
});
