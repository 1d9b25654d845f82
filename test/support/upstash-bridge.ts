/**
 * A tiny Upstash Redis REST server in front of a real redis-server, so tests can drive the real
 * `@upstash/redis` client (`new Redis({ url, token })`) without the network or an Upstash account.
 *
 * Protocol, as @upstash/redis@1.39 (pkg/http.ts) uses it:
 * - every request is `POST` with `Authorization: Bearer <token>` and a JSON body;
 *   `/` takes one command, `/pipeline` and `/multi-exec` take an array of commands.
 *   The client auto-pipelines by default, so most single calls actually arrive on `/pipeline`.
 * - `Upstash-Encoding: base64` (the client's default) asks for every string in the result to be
 *   base64, except the "OK" status reply, which the client's decode() passes through as is.
 * - non-2xx responses must still be JSON `{ "error": "..." }`: the client throws
 *   `UpstashError("<error>, command was: ...")`, and only retries on network errors, never on 4xx/5xx.
 * - the client sends `upstash-sync-token` (read-your-writes) and stores whatever the response
 *   header says, "" when absent. A single redis-server is always consistent, so it is ignored.
 * - createScript() tries EVALSHA and falls back to EVAL when the error message contains "noscript"
 *   (case-insensitive), so Redis' own "NOSCRIPT No matching script..." is passed through untouched.
 * - pub/sub is a Server-Sent Events stream: `POST /subscribe/<channel>` (or `/psubscribe/<pattern>`)
 *   answers `text/event-stream` with `data: subscribe,<channel>,<count>` once subscribed, then
 *   `data: message,<channel>,<payload>` (`data: pmessage,<pattern>,<channel>,<payload>`) per message.
 *   Each stream gets a Redis connection of its own, closed when the client goes away.
 */
import { createHash, randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { Redis, ReplyError } from "ioredis";

export interface UpstashBridge {
  /** `http://127.0.0.1:PORT`, pass as `url` to `new Redis({ url, token })` */
  url: string;
  token: string;
  /** Event streams open now. */
  subscriptions(): number;
  /** End every open event stream (as a network drop would); returns how many were open. */
  dropSubscriptions(): number;
  /** Refuse new event streams (503) while true, as an outage of the streaming endpoint would. */
  refuseSubscriptions(refuse: boolean): void;
  /** Refuse every command while true, as Upstash does for a database past its plan's limit. */
  exhaust(exhausted: boolean): void;
  close(): Promise<void>;
}

type Json = null | number | string | Json[];

/** What Upstash answers every command of a database past its plan's monthly requests. */
export const PLAN_LIMIT_ERROR =
  "ERR max requests limit exceeded. Limit: 500000, Usage: 500000. See https://upstash.com/docs/redis/troubleshooting/max_requests_limit for more details";
type Entry = { result: Json } | { error: string };

/** How long a request waits for a reconnect (e.g. right after restart()) before failing with 500. */
const READY_WAIT_MS = 300;

// These would change the state of the connection shared by all requests (or never return).
const UNSUPPORTED = new Set([
  ...["multi", "exec", "discard", "watch", "unwatch", "select", "quit", "reset", "hello", "monitor"],
  ...["subscribe", "psubscribe", "ssubscribe", "unsubscribe", "punsubscribe", "sunsubscribe"],
]);

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const OK = Buffer.from("OK");

/** Convert a raw (Buffer-based) ioredis reply to the JSON Upstash sends. */
function encode(value: unknown, base64: boolean): Json {
  if (value === null || value === undefined) return null;
  if (typeof value === "number") return value;
  if (Array.isArray(value)) return value.map((v) => encode(v, base64));
  // An error nested in an array reply (e.g. a Lua table holding redis.error_reply()).
  const buf = Buffer.isBuffer(value)
    ? value
    : Buffer.from(value instanceof Error ? value.message : String(value));
  if (!base64) return buf.toString("utf8");
  // Raw replies cannot tell the status "OK" from a bulk "OK"; the client decodes both to "OK".
  return buf.equals(OK) ? "OK" : buf.toString("base64");
}

/** Validate one command: non-empty array of strings/numbers (booleans too, the client may send them). */
function toCommand(raw: unknown): [string, ...string[]] {
  if (!Array.isArray(raw) || raw.length === 0)
    throw new HttpError(400, "ERR command must be a non-empty array");
  const parts = raw.map((part) => {
    if (typeof part === "string" || typeof part === "number" || typeof part === "boolean")
      return String(part);
    throw new HttpError(400, `ERR command arguments must be strings or numbers, got ${JSON.stringify(part)}`);
  });
  const name = parts[0] as string;
  if (UNSUPPORTED.has(name.toLowerCase())) throw new HttpError(400, `ERR command '${name}' is not supported`);
  // Upper-case names dodge ioredis' reply transformers (it would turn HGETALL into an object).
  return emulateUpstashScripts([name.toUpperCase(), ...parts.slice(1)] as [string, ...string[]]);
}

/**
 * Upstash accepts the script flag `allow-key-locking` (a per-key lock instead of a database-wide
 * one; @upstash/ratelimit's scripts carry it), stock Redis rejects it. Like Upstash, accept it:
 * run the script without the flag, and answer EVALSHA for the client's own hash of the original.
 */
const scriptAliases = new Map<string, string>();
const KEY_LOCKING_FLAG = /^(#!lua[^\n]*?)\s*flags=([^\s\n]*)/;

function emulateUpstashScripts(command: [string, ...string[]]): [string, ...string[]] {
  const [name, ...args] = command;
  if ((name === "EVAL" || name === "EVAL_RO") && args[0] && KEY_LOCKING_FLAG.test(args[0])) {
    const original = args[0];
    const stripped = original.replace(KEY_LOCKING_FLAG, (_all, head: string, flags: string) => {
      const kept = flags.split(",").filter((f) => f && f !== "allow-key-locking");
      return kept.length ? `${head} flags=${kept.join(",")}` : head;
    });
    const sha = (text: string) => createHash("sha1").update(text).digest("hex");
    scriptAliases.set(sha(original), sha(stripped));
    return [name, stripped, ...args.slice(1)];
  }
  if ((name === "EVALSHA" || name === "EVALSHA_RO") && args[0]) {
    const alias = scriptAliases.get(args[0].toLowerCase());
    if (alias) return [name, alias, ...args.slice(1)];
  }
  return command;
}

function toCommands(raw: unknown): [string, ...string[]][] {
  if (!Array.isArray(raw) || raw.length === 0)
    throw new HttpError(400, "ERR body must be an array of commands");
  return raw.map(toCommand);
}

/** Redis answered with an error reply: report it. Anything else (connection down, timeout): 500. */
function replyError(err: unknown): string {
  if (err instanceof ReplyError) return (err as Error).message;
  throw new HttpError(500, `ERR redis unavailable: ${err instanceof Error ? err.message : String(err)}`);
}

function toEntry(err: Error | null, value: unknown, base64: boolean): Entry {
  return err ? { error: replyError(err) } : { result: encode(value, base64) };
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const data = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(data) });
  res.end(data);
}

export async function startUpstashBridge(opts: { redisUrl: string; token?: string }): Promise<UpstashBridge> {
  const token = opts.token ?? randomUUID();
  // One shared connection. Fail fast rather than queue while redis is down, so tests that kill
  // redis see errors within milliseconds instead of hanging; reconnect every 50 ms to come back
  // quickly after restart(). No ready check / CLIENT SETINFO: keeps commandCount() deterministic.
  const redis = new Redis(opts.redisUrl, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 1_000,
    commandTimeout: 5_000,
    retryStrategy: () => 50,
    enableReadyCheck: false,
    disableClientInfo: true,
  });
  redis.on("error", () => {}); // connection errors surface as failed commands (500)
  await redis.connect().catch(() => {}); // redis may legitimately be down at start; it keeps retrying

  const waitForRedis = (): Promise<void> => {
    if (redis.status === "ready") return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        redis.off("ready", done);
        resolve();
      };
      const timer = setTimeout(done, READY_WAIT_MS);
      redis.once("ready", done);
    });
  };

  const execute = async (path: string, body: unknown, base64: boolean): Promise<Entry | Entry[]> => {
    if (path === "/") {
      const [name, ...args] = toCommand(body);
      await waitForRedis();
      try {
        return { result: encode(await redis.callBuffer(name, ...args), base64) };
      } catch (err) {
        throw new HttpError(400, replyError(err));
      }
    }
    if (path !== "/pipeline" && path !== "/multi-exec")
      throw new HttpError(404, `ERR unknown endpoint ${path}`);
    const commands = toCommands(body);
    const atomic = path === "/multi-exec";
    await waitForRedis();
    // An ioredis pipeline is written to the socket in one go, so no other request's commands can
    // end up between our MULTI and EXEC on the shared connection.
    const pipeline = redis.pipeline();
    if (atomic) pipeline.callBuffer("MULTI");
    for (const [name, ...args] of commands) pipeline.callBuffer(name, ...args);
    if (atomic) pipeline.callBuffer("EXEC");
    const results = (await pipeline.exec()) ?? [];
    if (!atomic) return results.map(([err, value]) => toEntry(err, value, base64));
    // Results are [MULTI, QUEUED..., EXEC]. A queueing error (unknown command, wrong arity) makes
    // EXEC fail with EXECABORT and nothing runs, so the request fails as a whole.
    const [execError, execReply] = results.at(-1) ?? [new Error("no reply to EXEC"), null];
    if (execError) {
      const queueError = results.slice(1, -1).find(([err]) => err)?.[0];
      throw new HttpError(400, [execError, queueError].filter(Boolean).map(replyError).join(": "));
    }
    // Runtime errors (e.g. INCR on a non-number) are error objects inside EXEC's reply; the rest ran.
    return (execReply as unknown[]).map((value) =>
      value instanceof Error ? toEntry(value, null, base64) : toEntry(null, value, base64),
    );
  };

  const streams = new Set<ServerResponse>();
  let refusing = false;
  let exhausted = false;

  /** SSE pub/sub: a dedicated connection per stream, as Upstash keeps one per subscriber. */
  const stream = async (res: ServerResponse, kind: "subscribe" | "psubscribe", target: string) => {
    if (refusing) return send(res, 503, { error: "ERR subscriptions unavailable" });
    const subscriber = redis.duplicate({
      lazyConnect: true,
      enableOfflineQueue: true,
      retryStrategy: () => null,
    });
    subscriber.on("error", () => {});
    const end = () => {
      streams.delete(res);
      subscriber.disconnect();
      if (!res.writableEnded) res.end();
    };
    res.on("close", end);
    try {
      await subscriber.connect();
      const count = (await (kind === "subscribe"
        ? subscriber.subscribe(target)
        : subscriber.psubscribe(target))) as number;
      if (res.destroyed) return end();
      res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
      streams.add(res);
      subscriber.on("message", (channel: string, message: string) =>
        res.write(`data: message,${channel},${message}\n\n`),
      );
      subscriber.on("pmessage", (pattern: string, channel: string, message: string) =>
        res.write(`data: pmessage,${pattern},${channel},${message}\n\n`),
      );
      subscriber.on("end", end);
      res.write(`data: ${kind},${target},${count}\n\n`);
    } catch (err) {
      subscriber.disconnect();
      if (!res.headersSent) send(res, 500, { error: `ERR redis unavailable: ${(err as Error).message}` });
      else end();
    }
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (req.headers.authorization !== `Bearer ${token}`) return send(res, 401, { error: "Unauthorized" });
    if (req.method !== "POST") return send(res, 405, { error: "ERR only POST is supported" });
    const path = new URL(req.url ?? "/", "http://bridge").pathname.replace(/(.)\/+$/, "$1");
    const subscription = /^\/(subscribe|psubscribe)\/(.+)$/.exec(path);
    if (subscription) {
      req.resume(); // the body ("[]") carries nothing
      return stream(
        res,
        subscription[1] as "subscribe" | "psubscribe",
        decodeURIComponent(subscription[2] ?? ""),
      );
    }
    if (exhausted) {
      req.resume();
      return send(res, 400, { error: PLAN_LIMIT_ERROR });
    }
    const base64 = String(req.headers["upstash-encoding"] ?? "").toLowerCase() === "base64";
    let body: unknown;
    try {
      body = JSON.parse(await readBody(req));
    } catch (err) {
      return send(res, 400, { error: `ERR failed to parse JSON body: ${(err as Error).message}` });
    }
    try {
      send(res, 200, await execute(path, body, base64));
    } catch (err) {
      const status = err instanceof HttpError ? err.status : 500;
      send(res, status, { error: err instanceof Error ? err.message : String(err) });
    }
  };

  const server = createServer((req, res) => void handle(req, res));
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    token,
    subscriptions: () => streams.size,
    dropSubscriptions() {
      const open = [...streams];
      for (const res of open) res.destroy();
      return open.length;
    },
    refuseSubscriptions(refuse) {
      refusing = refuse;
    },
    exhaust(on) {
      exhausted = on;
    },
    async close() {
      // The client uses keep-alive, so close() alone would wait for idle sockets to time out.
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
      redis.disconnect();
    },
  };
}
