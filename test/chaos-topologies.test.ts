/**
 * The chaos suite beyond one Redis: contended load through three server processes while
 * - a Redis Cluster node (the one that holds the namespace's slot) is killed and restarted, and
 *   one server process is killed and replaced;
 * - under Sentinel with LSS_REDIS_MIN_REPLICAS=1 (a primary, two replicas, three sentinels), the
 *   primary is killed, the sentinels promote a replica, and the old primary comes back (the
 *   sentinels make it the new primary's replica).
 * The history must show no two holders of a key at once among the grants clients were told of,
 * fencing tokens rising with every grant of a key, and service back within seconds.
 */
import { Redis } from "ioredis";
import { afterAll, describe, expect, it } from "vitest";
import { ADMIN_TOKEN } from "./support/app.js";
import { checkHistory, contendedLoad, longestGap, now } from "./support/contention.js";
import { sleep } from "./support/processes.js";
import type { RedisServerHandle } from "./support/redis-server.js";
import { redisCommand, startRedisCluster, startSentinelGroup, waitFor } from "./support/redis-topology.js";
import { type ServerProcess, startServerProcess } from "./support/server-process.js";

const GRANTS = Number(process.env.CHAOS_GRANTS ?? 3000);
const CLIENTS = 16;
const KEYS = 4;
const TTL_MS = 15_000;

const cleanups: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
});

async function startServers(env: () => Record<string, string>, count = 3): Promise<ServerProcess[]> {
  const servers = await Promise.all(Array.from({ length: count }, () => startServerProcess(env())));
  cleanups.push(async () => {
    await Promise.all(servers.map((s) => s.kill()));
  });
  return servers;
}

const common = {
  LSS_ADMIN_TOKEN: ADMIN_TOKEN,
  LSS_RATE_LIMIT: "off",
  LSS_KEY_PREFIX: "chaos",
  LSS_STORE_TIMEOUT_MS: "1000",
  LSS_MAX_WAIT_MS: "2000",
};

/** The node that holds the chaos keys (one namespace: one slot, one node). */
async function nodeWithKeys(nodes: RedisServerHandle[]): Promise<RedisServerHandle> {
  for (const node of nodes) {
    const client = new Redis(node.port, "127.0.0.1");
    try {
      if ((await client.keys("chaos:*")).length > 0) return node;
    } finally {
      client.disconnect();
    }
  }
  throw new Error("no node holds the chaos keys");
}

function report(
  name: string,
  result: Awaited<ReturnType<typeof contendedLoad>>,
  extra: string,
  atLeast = GRANTS,
) {
  if (result.stalled)
    console.log(`${name}: no grant for a minute; the clients' last answers:\n${result.stalled.join("\n")}`);
  expect(result.stalled).toBeNull();
  const { overlaps, fenceInversions, duplicateFences } = checkHistory(result.grants);
  console.log(
    `${name}: ${result.grants.length} grants in ${(result.elapsedMs / 1000).toFixed(1)} s over ${KEYS} keys by ` +
      `${CLIENTS} clients; overlaps ${overlaps}, fencing inversions ${fenceInversions}, duplicate fencing tokens ` +
      `${duplicateFences}; 503s ${result.answers503.length}, network errors ${result.networkErrors}; ${extra}`,
  );
  expect(result.grants.length).toBeGreaterThanOrEqual(atLeast);
  expect(overlaps).toBe(0);
  expect(fenceInversions).toBe(0);
  expect(duplicateFences).toBe(0);
}

describe("chaos on a Redis Cluster", () => {
  it(`a node restarted and a server killed mid-run: no two holders over ${GRANTS} grants`, async () => {
    const cluster = await startRedisCluster();
    cleanups.push(() => cluster.stop());
    const env = () => ({ ...common, REDIS_CLUSTER_NODES: cluster.nodeList });
    const live = await startServers(env);
    let restartedAt = Number.POSITIVE_INFINITY;
    let backAt = Number.POSITIVE_INFINITY;

    const result = await contendedLoad({
      servers: () => live,
      grants: GRANTS,
      clients: CLIENTS,
      keys: KEYS,
      ttlMs: TTL_MS,
      async disrupt(granted) {
        while (granted() < GRANTS / 3) await sleep(10);
        const victim = live.splice(1, 1)[0] as ServerProcess;
        await victim.kill("SIGKILL");
        live.push(await startServerProcess(env()));
        while (granted() < (2 * GRANTS) / 3) await sleep(10);
        const node = await nodeWithKeys(cluster.nodes);
        restartedAt = now();
        await cluster.restartNode(node);
        backAt = now();
      },
    });
    const gap = longestGap(result.grants, restartedAt);
    report(
      "chaos on a cluster",
      result,
      `the slot's node was back ${Math.round(backAt - restartedAt)} ms after its kill; longest stretch without a grant from then: ${gap} ms`,
    );
    expect(result.answers503.length + result.networkErrors).toBeGreaterThan(0);
    expect(gap).toBeLessThan(15_000);
  }, 240_000);
});

describe("chaos under Sentinel with LSS_REDIS_MIN_REPLICAS=1", () => {
  it(`the primary killed mid-run: no two holders among acknowledged grants, up to ${GRANTS} grants`, async () => {
    // Two replicas: with LSS_REDIS_MIN_REPLICAS=1 the promoted one still has a replica, as the
    // README advises (one replica: writes wait until the failed node is back as a replica, which
    // bench:topologies measures).
    const group = await startSentinelGroup({ replicas: 2 });
    cleanups.push(() => group.stop());
    const env = () => ({
      ...common,
      REDIS_SENTINELS: group.sentinelList,
      REDIS_SENTINEL_MASTER: group.master,
      LSS_REDIS_MIN_REPLICAS: "1",
      LSS_REDIS_REPLICA_TIMEOUT_MS: "300",
    });
    const live = await startServers(env);
    let killedAt = Number.POSITIVE_INFINITY;
    let promotedAfterMs = 0;
    let replicaBackAfterMs = 0;
    let disrupted = Number.POSITIVE_INFINITY;

    const result = await contendedLoad({
      servers: () => live,
      grants: GRANTS,
      clients: CLIENTS,
      keys: KEYS,
      ttlMs: TTL_MS,
      async disrupt(granted) {
        while (granted() < 300) await sleep(10);
        const oldPort = await group.primaryPort();
        const old = group.nodeAt(oldPort);
        killedAt = now();
        await old.kill();
        await waitFor(
          "the sentinels to promote the replica",
          async () => (await group.primaryPort()) !== oldPort,
        );
        promotedAfterMs = Math.round(now() - killedAt);
        // The failed node comes back empty; the sentinels make it the new primary's replica.
        await old.restart();
        // Asked of whichever node the sentinels name primary now: on a loaded machine they may
        // fail over once more while the old node comes back.
        await waitFor(
          "the old primary to follow the new one",
          async () =>
            /connected_slaves:2/.test(
              String(await redisCommand(await group.primaryPort(), "INFO", "replication")),
            ),
          90_000,
        );
        replicaBackAfterMs = Math.round(now() - killedAt);
        disrupted = now();
      },
      // Every write waits for a replica: on a busy machine (CI runs a browser beside this) that is
      // slow. Safety is checked on what was done by 30 s after the old primary is back.
      until: () => disrupted + 30_000,
    });
    const afterKill = result.grants.filter((g) => g.start > killedAt).length;
    const gap = longestGap(result.grants, killedAt);
    report(
      "chaos under Sentinel",
      result,
      `promoted ${promotedAfterMs} ms after the kill, the old primary a replica after ${replicaBackAfterMs} ms; ` +
        `longest stretch without a grant from the kill: ${gap} ms; ${afterKill} grants after the kill`,
      0,
    );
    expect(result.answers503.length).toBeGreaterThan(0);
    expect(afterKill).toBeGreaterThan(100);
    expect(gap).toBeLessThan(15_000);
  }, 240_000);
});
