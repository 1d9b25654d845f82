/** RedisTransport over TCP (Redis, Valkey, any managed Redis) with ioredis. */
import { Redis, ReplyError } from "ioredis";
import { createEventHub, parseLockEvent } from "./events.js";
import type { EventSource, RedisTransport } from "./redis/transport.js";

export function connectTcpRedis(url: string, timeoutMs: number): Redis {
  const client = new Redis(url, {
    // Fail closed and fast: a command never waits in a queue for a connection that may not come back.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: timeoutMs,
    connectTimeout: timeoutMs,
    // Concurrent requests' scripts go out in one write per event-loop tick instead of one each.
    enableAutoPipelining: true,
    // Keep reconnecting in the background so service resumes by itself when Redis is back.
    retryStrategy: (times) => Math.min(times * 100, 1000),
  });
  // Connection errors surface on each command as a 503; they must not crash the process.
  client.on("error", () => {});
  return client;
}

type TcpClient = Pick<
  Redis,
  | "evalsha"
  | "eval"
  | "hset"
  | "hget"
  | "get"
  | "hvals"
  | "hdel"
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
 * Without an offline queue a command sent while (re)connecting fails at once; wait for the
 * connection instead, but never longer than a command may take. Undefined when connected.
 */
export function whenConnected(
  client: Pick<Redis, "status" | "once" | "off">,
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

/** ioredis's errors for a command it did not write: no connection, or none ready in time. */
const NOT_WRITTEN =
  /not connected to Redis within|connection closed|Stream isn't writeable|Connection is closed/i;

export function tcpTransport(client: TcpClient, timeoutMs = 2000): RedisTransport {
  const when = <T>(command: () => Promise<T>): Promise<T> =>
    whenConnected(client, timeoutMs)?.then(command) ?? command();

  return {
    kind: "redis",
    notApplied: (err) => err instanceof Error && NOT_WRITTEN.test(err.message),
    evalsha: (sha1, keys, args) => when(() => client.evalsha(sha1, keys.length, ...keys, ...args)),
    eval: (source, keys, args) => when(() => client.eval(source, keys.length, ...keys, ...args)),
    hset: (key, field, value) => when(() => client.hset(key, field, value)),
    hget: (key, field) => when(() => client.hget(key, field)),
    get: (key) => when(() => client.get(key)),
    hgetall: (key) => when(() => client.hgetall(key)),
    pexpire: (key, ms) => when(() => client.pexpire(key, ms)),
    hvals: (key) => when(() => client.hvals(key)),
    hdel: (key, field) => when(() => client.hdel(key, field)),
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
    close: async () => client.disconnect(),
  };
}

/**
 * Lock events over one extra connection per server instance (PSUBSCRIBE on every key's channel),
 * so a waiting request costs no Redis command while it waits. While that connection is down,
 * watches say so and waiters peek; once it is subscribed again, every watch is told to ask again.
 */
export function tcpEvents(client: Pick<Redis, "duplicate">): EventSource {
  return (channels) => {
    const subscriber = client.duplicate({
      enableOfflineQueue: true,
      maxRetriesPerRequest: null,
      // Resubscribed by hand on each connection, to know when events flow again.
      autoResubscribe: false,
    });
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

/** One pipeline's replies, or its first error. */
async function pipelined(client: Pick<Redis, "pipeline">, commands: string[][]): Promise<unknown[]> {
  const replies = (await client.pipeline(commands).exec()) ?? [];
  const failed = replies.find(([err]) => err)?.[0];
  if (failed) throw failed;
  return replies.map(([, reply]) => reply);
}
