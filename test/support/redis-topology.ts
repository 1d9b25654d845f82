/**
 * Redis as operators outgrow one node, from real redis-server processes on loopback: a primary and
 * a replica behind one endpoint that a failover moves (as a managed service presents them), a
 * Sentinel group, and a cluster. Every node is a startRedisServer (free port, temp dir).
 */
import { execFile } from "node:child_process";
import { type AddressInfo, connect, createServer, type Socket } from "node:net";
import { promisify } from "node:util";
import { Redis } from "ioredis";
import { sleep } from "./processes.js";
import { type RedisServerHandle, startRedisServer } from "./redis-server.js";

const run = promisify(execFile);

/** One command on a short-lived connection. */
export async function redisCommand(port: number, ...command: string[]): Promise<unknown> {
  const client = new Redis({ port, host: "127.0.0.1", lazyConnect: true, maxRetriesPerRequest: 0 });
  client.on("error", () => {});
  try {
    await client.connect();
    return await client.call(command[0] as string, ...command.slice(1));
  } finally {
    client.disconnect();
  }
}

/** Polls until `check` holds, or throws naming `what`. */
export async function waitFor(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${what}`);
}

/**
 * A TCP endpoint in front of a node that can be moved to another (a managed service's DNS name or
 * virtual IP after a failover: connections to the old node die), or cut (nothing gets through).
 */
export interface Endpoint {
  port: number;
  url: string;
  switchTo(port: number): void;
  cut(): void;
  close(): Promise<void>;
}

export async function startEndpoint(targetPort: number): Promise<Endpoint> {
  let target: number | null = targetPort;
  const open = new Set<Socket>();
  const dropAll = () => {
    for (const socket of open) socket.destroy();
    open.clear();
  };
  const server = createServer((client) => {
    if (target === null) return void client.destroy();
    const upstream = connect(target, "127.0.0.1");
    open.add(client).add(upstream);
    client.pipe(upstream).pipe(client);
    const close = () => {
      client.destroy();
      upstream.destroy();
      open.delete(client);
      open.delete(upstream);
    };
    client.on("error", close).on("close", close);
    upstream.on("error", close).on("close", close);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    switchTo(next) {
      target = next;
      dropAll();
    },
    cut() {
      target = null;
      dropAll();
    },
    close: async () => {
      dropAll();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const replicationOf = async (port: number) => String(await redisCommand(port, "INFO", "replication"));

/** Whether the replica at `port` is connected to its primary and caught up. */
export async function inSync(primaryPort: number, replicaPort: number): Promise<boolean> {
  const replica = await replicationOf(replicaPort);
  if (!/master_link_status:up/.test(replica)) return false;
  const primaryOffset = /master_repl_offset:(\d+)/.exec(await replicationOf(primaryPort))?.[1];
  return /slave_repl_offset:(\d+)/.exec(replica)?.[1] === primaryOffset;
}

/**
 * A primary and a replica, as a managed service runs them: clients reach the primary through one
 * endpoint; the replica follows through a link that can be cut. failover() is what the service
 * does when the primary dies: it promotes the replica and moves the endpoint to it.
 */
export interface ReplicatedPair {
  endpoint: Endpoint;
  primary: RedisServerHandle;
  replica: RedisServerHandle;
  /** Until the replica has every write. */
  synced(): Promise<void>;
  /** The replication link goes down (the replica hears nothing more); clients still reach the primary. */
  cutLink(): void;
  /** Kill the primary, promote the replica, move the endpoint; resolves at the promotion. */
  failover(): Promise<void>;
  /** The service replaces the failed node: the old primary's port, empty, as the new primary's replica. */
  replaceFailedNode(): Promise<void>;
  stop(): Promise<void>;
}

export async function startReplicatedPair(): Promise<ReplicatedPair> {
  const primary = await startRedisServer();
  const link = await startEndpoint(primary.port);
  const replica = await startRedisServer({ args: ["--replicaof", "127.0.0.1", String(link.port)] });
  const endpoint = await startEndpoint(primary.port);
  const pair: ReplicatedPair = {
    endpoint,
    primary,
    replica,
    synced: () => waitFor("the replica to catch up", () => inSync(primary.port, replica.port)),
    cutLink: () => link.cut(),
    async failover() {
      await primary.kill();
      await redisCommand(replica.port, "REPLICAOF", "NO", "ONE");
      endpoint.switchTo(replica.port);
    },
    async replaceFailedNode() {
      await primary.restart({ args: ["--replicaof", "127.0.0.1", String(replica.port)] });
      await waitFor("the new replica to catch up", () => inSync(replica.port, primary.port));
    },
    async stop() {
      await Promise.all([endpoint.close(), link.close()]);
      await Promise.all([primary.stop(), replica.stop()]);
    },
  };
  await pair.synced();
  return pair;
}

/** A primary, its replicas (one by default) and three sentinels that monitor them as `lss` (quorum 2). */
export interface SentinelGroup {
  master: string;
  nodes: RedisServerHandle[];
  sentinels: RedisServerHandle[];
  /** REDIS_SENTINELS for the server. */
  sentinelList: string;
  /** The port of the node the sentinels call the primary now. */
  primaryPort(): Promise<number>;
  nodeAt(port: number): RedisServerHandle;
  stop(): Promise<void>;
}

export async function startSentinelGroup(
  opts: { downAfterMs?: number; replicas?: number } = {},
): Promise<SentinelGroup> {
  const { downAfterMs = 1000, replicas: replicaCount = 1 } = opts;
  const master = "lss";
  const primary = await startRedisServer();
  const replicas = await Promise.all(
    Array.from({ length: replicaCount }, () =>
      startRedisServer({ args: ["--replicaof", "127.0.0.1", String(primary.port)] }),
    ),
  );
  for (const replica of replicas)
    await waitFor("the replicas to catch up", () => inSync(primary.port, replica.port));
  const config = [
    `sentinel monitor ${master} 127.0.0.1 ${primary.port} 2`,
    `sentinel down-after-milliseconds ${master} ${downAfterMs}`,
    `sentinel failover-timeout ${master} 5000`,
    `sentinel parallel-syncs ${master} 1`,
    "",
  ].join("\n");
  const sentinels = await Promise.all([1, 2, 3].map(() => startRedisServer({ sentinelConfig: config })));
  const nodes = [primary, ...replicas];
  const primaryPort = async () => {
    const answer = (await redisCommand(
      (sentinels[0] as RedisServerHandle).port,
      "SENTINEL",
      "GET-MASTER-ADDR-BY-NAME",
      master,
    )) as [string, string];
    return Number(answer[1]);
  };
  // Every sentinel knows the replicas and the other sentinels before anything fails.
  await waitFor("the sentinels to know each other and the replica", async () => {
    for (const s of sentinels) {
      const info = String(await redisCommand(s.port, "INFO", "sentinel"));
      if (!new RegExp(`slaves=${replicaCount},sentinels=3`).test(info)) return false;
    }
    return true;
  });
  return {
    master,
    nodes,
    sentinels,
    sentinelList: sentinels.map((s) => `127.0.0.1:${s.port}`).join(","),
    primaryPort,
    nodeAt: (port) => {
      const node = nodes.find((n) => n.port === port);
      if (!node) throw new Error(`no node on port ${port}`);
      return node;
    },
    async stop() {
      await Promise.all(sentinels.map((s) => s.stop()));
      await Promise.all(nodes.map((n) => n.stop()));
    },
  };
}

/**
 * A Redis Cluster of three primaries (no replicas unless asked), each persisting every write before it answers
 * (appendfsync always), so that a node restarted mid-run comes back with what it acknowledged.
 */
export interface RedisCluster {
  nodes: RedisServerHandle[];
  /** REDIS_CLUSTER_NODES for the server. */
  nodeList: string;
  /** Kill a node and start it again on its port, with its data; resolves once the cluster is ok. */
  restartNode(node: RedisServerHandle): Promise<void>;
  stop(): Promise<void>;
}

const CLUSTER_ARGS = [
  "--cluster-enabled",
  "yes",
  "--cluster-config-file",
  "nodes.conf",
  "--cluster-node-timeout",
  "2000",
  "--appendonly",
  "yes",
  "--appendfsync",
  "always",
];

const clusterOk = async (nodes: RedisServerHandle[]) => {
  for (const n of nodes) {
    if (!/cluster_state:ok/.test(String(await redisCommand(n.port, "CLUSTER", "INFO")))) return false;
  }
  return true;
};

export async function startRedisCluster(
  opts: { primaries?: number; replicasEach?: number } = {},
): Promise<RedisCluster> {
  const { primaries = 3, replicasEach = 0 } = opts;
  const size = primaries * (1 + replicasEach);
  const nodes = await Promise.all(
    Array.from({ length: size }, () => startRedisServer({ args: CLUSTER_ARGS })),
  );
  const addresses = nodes.map((n) => `127.0.0.1:${n.port}`);
  const replicas = ["--cluster-replicas", String(replicasEach)];
  await run("redis-cli", ["--cluster", "create", ...addresses, ...replicas, "--cluster-yes"]);
  await waitFor("the cluster to be ok", () => clusterOk(nodes));
  return {
    nodes,
    nodeList: addresses.join(","),
    async restartNode(node) {
      await node.restart();
      await waitFor("the cluster to be ok again", () => clusterOk(nodes));
    },
    async stop() {
      await Promise.all(nodes.map((n) => n.stop()));
    },
  };
}
