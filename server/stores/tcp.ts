/** RedisTransport over TCP (Redis, Valkey, any managed Redis) with ioredis: one node, Sentinel, or a cluster. */
import { Cluster, type ClusterOptions, Redis, type RedisOptions, ReplyError } from "ioredis";
import type { RedisAuth, RedisTopology, ReplicaAcks } from "../backend-types.js";
import { createEventHub, parseLockEvent } from "./events.js";
import type { EventSource, RedisTransport } from "./redis/transport.js";

/** A client of one node (directly or through Sentinel), or of a cluster: the same commands. */
export type TcpRedis = Redis | Cluster;

/** How every connection behaves, whatever the topology. */
function connectionOptions(timeoutMs: number) {
  return {
    // Fail closed and fast: a command never waits in a queue for a connection that may not come back.
    maxRetriesPerRequest: 0,
    commandTimeout: timeoutMs,
    connectTimeout: timeoutMs,
    // A primary demoted to a replica (a failover) answers writes with READONLY: reconnect, so that
    // Sentinel names the new one. The command that met it fails (503, nothing was applied).
    reconnectOnError: (err: Error) => /READONLY/.test(err.message),
  } satisfies RedisOptions;
}

const authOptions = (auth: RedisAuth): RedisOptions => ({
  ...(auth.username ? { username: auth.username } : {}),
  ...(auth.password ? { password: auth.password } : {}),
  ...(auth.tls ? { tls: {} } : {}),
});

export function connectTcpRedis(topology: RedisTopology, timeoutMs: number): TcpRedis {
  const base = {
    ...connectionOptions(timeoutMs),
    enableOfflineQueue: false,
    // Concurrent requests' scripts go out in one write per event-loop tick instead of one each.
    enableAutoPipelining: true,
  };
  // Keep reconnecting in the background so service resumes by itself when Redis is back.
  const retry = (times: number) => Math.min(times * 100, 1000);
  let client: TcpRedis;
  if (topology.mode === "single") {
    client = new Redis(topology.url, { ...base, retryStrategy: retry });
  } else if (topology.mode === "sentinel") {
    client = new Redis({
      ...base,
      ...authOptions(topology.auth),
      sentinels: topology.sentinels,
      name: topology.master,
      role: "master",
      ...(topology.sentinelPassword ? { sentinelPassword: topology.sentinelPassword } : {}),
      ...(topology.auth.tls ? { enableTLSForSentinelMode: true } : {}),
      // Told of a new primary by the sentinels (+switch-master), not only when the old one fails.
      failoverDetector: true,
      sentinelRetryStrategy: retry,
      retryStrategy: retry,
    });
  } else {
    const options: ClusterOptions = {
      enableOfflineQueue: false,
      enableAutoPipelining: true,
      // Every read and write goes to the primary of the key's slot (replicas may lag behind).
      scaleReads: "master",
      clusterRetryStrategy: retry,
      redisOptions: { ...connectionOptions(timeoutMs), ...authOptions(topology.auth) },
    };
    client = new Cluster(topology.nodes, options);
  }
  // Connection errors surface on each command as a 503; they must not crash the process.
  client.on("error", () => {});
  return client;
}

type TcpClient = Pick<
  TcpRedis,
  | "call"
  | "wait"
  | "evalsha"
  | "eval"
  | "hset"
  | "hget"
  | "get"
  | "hvals"
  | "hmget"
  | "hdel"
  | "set"
  | "del"
  | "info"
  | "hgetall"
  | "pexpire"
  | "ping"
  | "config"
  | "pipeline"
  | "disconnect"
  | "status"
  | "once"
  | "off"
>;

/**
 * A write the primary applied but fewer replicas than LSS_REDIS_MIN_REPLICAS acknowledged in time:
 * a failover now could lose it, so it is not answered as done (503 outcome_unknown, maybe applied).
 */
export class ReplicaAckError extends Error {
  override name = "ReplicaAckError";
  constructor(
    readonly acknowledged: number,
    readonly acks: ReplicaAcks,
  ) {
    super(
      `only ${acknowledged} of the ${acks.min} replica(s) LSS_REDIS_MIN_REPLICAS asks for acknowledged ` +
        `the write within ${acks.timeoutMs} ms (LSS_REDIS_REPLICA_TIMEOUT_MS)`,
    );
  }
}

/**
 * Without an offline queue a command sent while (re)connecting fails at once; wait for the
 * connection instead, but never longer than a command may take. Undefined when connected.
 */
export function whenConnected(
  client: Pick<TcpRedis, "status" | "once" | "off">,
  timeoutMs: number,
): Promise<void> | undefined {
  if (client.status === "ready") return undefined;
  if (client.status === "end") return Promise.reject(new Error("connection closed"));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      client.off("ready", onReady);
      reject(new Error(`not connected to Redis within ${timeoutMs} ms`));
    }, timeoutMs);
    const onReady = () => {
      clearTimeout(timer);
      resolve();
    };
    client.once("ready", onReady);
  });
}

/** ioredis's errors for a command it did not write: no connection, or none ready in time (a cluster's too). */
const NOT_WRITTEN =
  /not connected to Redis within|connection closed|Stream isn't writeable|Connection is closed|Cluster isn't ready|None of startup nodes is available|Cluster is disconnect/i;

/**
 * `writer`: with LSS_REDIS_MIN_REPLICAS, the connection the confirmed writes go over. WAIT holds
 * up every command behind it on its connection, so reads (a status, a token's record) must not
 * share it: they go over `client`.
 */
export function tcpTransport(
  client: TcpClient,
  timeoutMs = 2000,
  acks: ReplicaAcks | null = null,
  writer: TcpClient = client,
): RedisTransport {
  const whenReady =
    (c: TcpClient) =>
    <T>(command: () => Promise<T>): Promise<T> =>
      whenConnected(c, timeoutMs)?.then(command) ?? command();
  const when = whenReady(client);
  const write = acks
    ? (writer instanceof Cluster ? waitEach : waitTogether)(writer, whenReady(writer), acks)
    : null;

  return {
    kind: "redis",
    notApplied: (err) => err instanceof Error && NOT_WRITTEN.test(err.message),
    explain: (err) => (err instanceof ReplicaAckError ? { kind: "replicas", message: err.message } : null),
    evalsha: (sha1, keys, args, writes) =>
      writes && write
        ? write(["evalsha", sha1, String(keys.length), ...keys, ...args])
        : when(() => client.evalsha(sha1, keys.length, ...keys, ...args)),
    eval: (source, keys, args, writes) =>
      writes && write
        ? write(["eval", source, String(keys.length), ...keys, ...args])
        : when(() => client.eval(source, keys.length, ...keys, ...args)),
    hset: (key, field, value) =>
      write ? write(["hset", key, field, value]) : when(() => client.hset(key, field, value)),
    hget: (key, field) => when(() => client.hget(key, field)),
    get: (key) => when(() => client.get(key)),
    hgetall: (key) => when(() => client.hgetall(key)),
    pexpire: (key, ms) => (write ? write(["pexpire", key, String(ms)]) : when(() => client.pexpire(key, ms))),
    hvals: (key) => when(() => client.hvals(key)),
    hmget: (key, fields) => when(() => client.hmget(key, ...fields)),
    hdel: (key, field) =>
      write ? write(["hdel", key, field]).then(Number) : when(() => client.hdel(key, field)),
    // Claims (a webhook delivery seen) need no replica: one lost in a failover lets a delivery be
    // handled twice, which the gates take as a retry.
    setIfAbsent: async (key, value, ttlMs) =>
      (await when(() => client.set(key, value, "PX", ttlMs, "NX"))) === "OK",
    del: (key) => when(() => client.del(key)),
    ping: () => when(() => client.ping()),
    // CONFIG GET, else INFO memory (managed Redis services often refuse CONFIG, not INFO); a refusal
    // of both makes the policy unknown, not a failure.
    evictionPolicy: () =>
      when(async () => {
        const refused = (err: unknown) => {
          if (err instanceof ReplyError) return null;
          throw err;
        };
        const config = (await client.config("GET", "maxmemory-policy").catch(refused)) as string[] | null;
        if (config?.[1]) return config[1];
        const info = await client.info("memory").catch(refused);
        return (info && /^maxmemory_policy:(\S+)/m.exec(info)?.[1]) || null;
      }),
    snapshot: (lockKey, queueKey) =>
      when(async () => {
        const commands: string[][] = [["time"], ["get", lockKey]];
        if (queueKey) commands.push(["zcard", queueKey]);
        const [time, record, waiting] = await pipelined(client, commands);
        return {
          time: time as [string, string],
          record: (record as string | null) ?? null,
          waiting: queueKey ? Number(waiting) : null,
        };
      }),
    listing: (queue, holdersKey) =>
      when(async () => {
        const commands: string[][] = [];
        if (queue) commands.push(["zrange", queue.key, "0", String(queue.head - 1)]);
        if (holdersKey) commands.push(["hgetall", holdersKey]);
        const replies = await pipelined(client, commands);
        const holders = holdersKey
          ? (replies[queue ? 1 : 0] as Record<string, string> | undefined)
          : undefined;
        return {
          queueHead: queue ? ((replies[0] as string[] | undefined) ?? []) : [],
          // ioredis turns HGETALL into an object: back to the flat field, value list.
          holders: Object.entries(holders ?? {}).flat(),
        };
      }),
    close: async () => {
      client.disconnect();
      if (writer !== client) writer.disconnect();
    },
  };
}

/**
 * Lock events over one extra connection per server instance (PSUBSCRIBE on every key's channel),
 * so a waiting request costs no Redis command while it waits. While that connection is down,
 * watches say so and waiters peek; once it is subscribed again, every watch is told to ask again.
 */
export function tcpEvents(client: TcpRedis): EventSource {
  return (channels) => {
    // Resubscribed by hand on each connection, to know when events flow again. In a cluster a
    // PUBLISH reaches every node, so one subscription (on a node the client picks) hears them all.
    const own = { enableOfflineQueue: true, maxRetriesPerRequest: null, autoResubscribe: false };
    const subscriber: TcpRedis =
      client instanceof Cluster
        ? client.duplicate([], { enableOfflineQueue: true, redisOptions: own })
        : client.duplicate(own);
    const hub = createEventHub(channels.of, async () => subscriber.disconnect(), false);
    subscriber.on("error", () => {});
    subscriber.on("pmessage", (_pattern: string, channel: string, message: string) => {
      const event = parseLockEvent(message);
      if (event) hub.emit(channel, event);
    });
    subscriber.on("ready", () => {
      subscriber.psubscribe(channels.pattern).then(
        () => hub.setLive(true),
        () => {},
      );
    });
    subscriber.on("close", () => hub.setLive(false));
    return hub;
  };
}

type Write = (command: string[]) => Promise<unknown>;
type When = <T>(command: () => Promise<T>) => Promise<T>;

/**
 * With LSS_REDIS_MIN_REPLICAS, on one connection: each write is sent as it comes, and one WAIT
 * follows all the writes sent in the same tick (WAIT counts every earlier write of its
 * connection), so that concurrent writes share one replica round trip instead of queueing behind
 * one WAIT each. Fewer acknowledgements than asked for make every write before it unconfirmed.
 */
function waitTogether(client: TcpClient, when: When, need: ReplicaAcks): Write {
  let pending: Promise<number> | null = null;
  const barrier = () => {
    pending ??= new Promise<number>((resolve, reject) => {
      process.nextTick(() => {
        pending = null;
        when(() => client.wait(need.min, need.timeoutMs)).then(resolve, reject);
      });
    });
    return pending;
  };
  return (command) => {
    const [name, ...args] = command as [string, ...string[]];
    const reply = when(() => client.call(name, ...args));
    const acknowledged = barrier();
    return Promise.all([reply, acknowledged]).then(([value, count]) => {
      if (count < need.min) throw new ReplicaAckError(count, need);
      return value;
    });
  };
}

/** In a cluster: WAIT must reach the node that ran the write, so each write is a pipeline of both. */
function waitEach(client: TcpClient, when: When, need: ReplicaAcks): Write {
  return (command) =>
    when(async () => {
      const wait = ["wait", String(need.min), String(need.timeoutMs)];
      const replies = (await client.pipeline([command, wait]).exec()) ?? [];
      const reply = firstReply(replies);
      const acknowledged = Number(replies[1]?.[1] ?? 0);
      if (acknowledged < need.min) throw new ReplicaAckError(acknowledged, need);
      return reply;
    });
}

/** A pipeline's first reply, or its error. */
function firstReply(replies: [Error | null, unknown][]): unknown {
  const [err, reply] = replies[0] ?? [new Error("no reply"), null];
  if (err) throw err;
  return reply;
}

/** One pipeline's replies, or its first error. */
async function pipelined(client: Pick<Redis, "pipeline">, commands: string[][]): Promise<unknown[]> {
  const replies = (await client.pipeline(commands).exec()) ?? [];
  const failed = replies.find(([err]) => err)?.[0];
  if (failed) throw failed;
  return replies.map(([, reply]) => reply);
}
