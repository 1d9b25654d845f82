/** RedisTransport over TCP (Redis, Valkey, any managed Redis) with ioredis. */
import { Redis } from "ioredis";
import type { RedisTransport } from "./redis.js";

export function connectTcpRedis(url: string, timeoutMs: number): Redis {
  const client = new Redis(url, {
    // Fail closed and fast: a command never waits in a queue for a connection that may not come back.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: timeoutMs,
    connectTimeout: timeoutMs,
    // Keep reconnecting in the background so service resumes by itself when Redis is back.
    retryStrategy: (times) => Math.min(times * 100, 1000),
  });
  // Connection errors surface on each command as a 503; they must not crash the process.
  client.on("error", () => {});
  return client;
}

type TcpClient = Pick<Redis, "evalsha" | "eval" | "hset" | "hget" | "hvals" | "hdel" | "ping" | "disconnect">;

export function tcpTransport(client: TcpClient): RedisTransport {
  return {
    kind: "redis",
    evalsha: (sha1, keys, args) => client.evalsha(sha1, keys.length, ...keys, ...args),
    eval: (source, keys, args) => client.eval(source, keys.length, ...keys, ...args),
    hset: (key, field, value) => client.hset(key, field, value),
    hget: (key, field) => client.hget(key, field),
    hvals: (key) => client.hvals(key),
    hdel: (key, field) => client.hdel(key, field),
    ping: () => client.ping(),
    close: async () => client.disconnect(),
  };
}
