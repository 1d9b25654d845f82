/**
 * The memory store's transport: the Redis store (redis/store.ts) over an in-process keyspace and
 * its scripts, so that a lock operation is decided by the same Lua on every store. Its events are
 * the scripts' PUBLISHes, delivered in process.
 */
import { sha1Hex } from "../../crypto.js";
import { createEventHub, type EventHub, parseLockEvent } from "../events.js";
import type { EventSource, RedisTransport } from "../redis/transport.js";
import type { Keyspace, Reply } from "./keyspace.js";
import type { LocalScripts } from "./lua.js";

export function localTransport(keyspace: Keyspace, scripts: LocalScripts): RedisTransport {
  const run = (name: string, ...args: Array<string | number>) =>
    Promise.resolve().then(() => keyspace.command(name, args.map(String)));
  const text = (reply: Reply) => (reply === false ? null : String(reply));
  return {
    kind: "memory",
    evalsha: (sha1, keys, args) => scripts.evalsha(sha1, keys, args),
    eval: (source, keys, args) => scripts.eval(source, sha1Hex(source), keys, args),
    hset: (key, field, value) => run("HSET", key, field, value),
    hget: async (key, field) => text(await run("HGET", key, field)),
    get: async (key) => text(await run("GET", key)),
    hgetall: async (key) => {
      const flat = (await run("HGETALL", key)) as string[];
      const out: Record<string, string> = {};
      for (let i = 0; i + 1 < flat.length; i += 2) out[flat[i] as string] = flat[i + 1] as string;
      return out;
    },
    pexpire: (key, ms) => run("PEXPIRE", key, ms),
    del: (key) => run("DEL", key),
    setIfAbsent: async (key, value, ttlMs) => (await run("SET", key, value, "PX", ttlMs, "NX")) === "OK",
    hvals: async (key) => (await run("HVALS", key)) as string[],
    hmget: async (key, fields) =>
      ((await run("HMGET", key, ...fields)) as Array<string | false>).map((v) => (v === false ? null : v)),
    hdel: async (key, field) => Number(await run("HDEL", key, field)),
    ping: () => run("PING"),
    // Nothing here is ever evicted.
    evictionPolicy: async () => "noeviction",
    snapshot: async (lockKey, queueKey) => ({
      time: (await run("TIME")) as [string, string],
      record: text(await run("GET", lockKey)),
      waiting: queueKey ? Number(await run("ZCARD", queueKey)) : null,
    }),
    listing: async (queue, holdersKey) => ({
      queueHead: queue ? ((await run("ZRANGE", queue.key, 0, queue.head - 1)) as string[]) : [],
      holders: holdersKey ? ((await run("HGETALL", holdersKey)) as string[]) : [],
    }),
    close: async () => {},
  };
}

/** The scripts' PUBLISHes, to the watches of this process (the keyspace's onPublish feeds `deliver`). */
export function localEvents(): { source: EventSource; deliver: (channel: string, message: string) => void } {
  let hub: EventHub | null = null;
  return {
    source: (channels) => {
      hub = createEventHub(channels.of);
      return hub;
    },
    deliver: (channel, message) => {
      const event = parseLockEvent(message);
      if (event) hub?.emit(channel, event);
    },
  };
}
