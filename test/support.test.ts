/**
 * Proves the test-support modules: a real redis-server per suite, and the Upstash REST bridge
 * driven by the real @upstash/redis client (auto-pipelined, single-request and plain-JSON modes).
 */
import { Redis as UpstashRedis } from "@upstash/redis";
import { Redis as IORedis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sleep } from "./support/processes.js";
import { commandCount, type RedisServerHandle, startRedisServer } from "./support/redis-server";
import { startUpstashBridge, type UpstashBridge } from "./support/upstash-bridge";

let server: RedisServerHandle;
let bridge: UpstashBridge;
/** Client defaults: auto-pipelining (everything goes to /pipeline) and base64 responses. */
let auto: UpstashRedis;
/** One HTTP request per command, on `/`. */
let single: UpstashRedis;
/** No `Upstash-Encoding: base64`: plain JSON strings. */
let plain: UpstashRedis;
let clients: [string, UpstashRedis][];

/** Short-lived direct connection, to look at what really happened inside redis. */
async function direct<T>(fn: (redis: IORedis) => Promise<T>): Promise<T> {
  const redis = new IORedis(server.url, { maxRetriesPerRequest: 0, retryStrategy: () => null });
  try {
    return await fn(redis);
  } finally {
    redis.disconnect();
  }
}

async function post(path: string, body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(`${bridge.url}${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${bridge.token}`, "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as unknown };
}

/** How often redis ran EVALSHA and EVAL so far (INFO commandstats, failed calls included). */
async function scriptCalls(): Promise<{ evalsha: number; eval: number }> {
  const info = await direct((r) => r.info("commandstats"));
  const calls = (cmd: string) => Number(new RegExp(`^cmdstat_${cmd}:calls=(\\d+)`, "m").exec(info)?.[1] ?? 0);
  return { evalsha: calls("evalsha"), eval: calls("eval") };
}

beforeAll(async () => {
  server = await startRedisServer();
  bridge = await startUpstashBridge({ redisUrl: server.url });
  const base = { url: bridge.url, token: bridge.token, retry: false } as const;
  auto = new UpstashRedis(base);
  single = new UpstashRedis({ ...base, enableAutoPipelining: false });
  plain = new UpstashRedis({ ...base, enableAutoPipelining: false, responseEncoding: false });
  clients = [
    ["auto-pipeline", auto],
    ["single", single],
    ["plain", plain],
  ];
});

afterAll(async () => {
  await bridge?.close();
  await server?.stop();
});

describe("startRedisServer", () => {
  it("runs a private redis-server on a free port", async () => {
    expect(server.port).not.toBe(6379);
    expect(server.url).toBe(`redis://127.0.0.1:${server.port}`);
    expect(server.pid()).toBeGreaterThan(0);
    expect(await direct((r) => r.ping())).toBe("PONG");
    expect(await direct((r) => r.config("GET", "save"))).toEqual(["save", ""]);
  });

  it("commandCount counts its own INFO once, then exactly the commands in between", async () => {
    const a = await commandCount(server.url);
    const b = await commandCount(server.url);
    expect(b - a).toBe(1);

    const before = await commandCount(server.url);
    await single.set("count:k", "v");
    await single.get("count:k");
    await single.incr("count:n");
    await auto.pipeline().incr("count:n").del("count:k").exec(); // 2 commands, 1 HTTP request
    const after = await commandCount(server.url);
    expect(after - before).toBe(5 + 1);
  });

  it("stop() is idempotent and safe after kill()", async () => {
    const other = await startRedisServer();
    expect(other.port).not.toBe(server.port);
    await other.kill();
    expect(other.pid()).toBeUndefined();
    await other.stop();
    await other.stop();
    await expect(commandCount(other.url)).rejects.toThrow();
    await expect(other.restart()).rejects.toThrow(/stopped/);
  });
});

describe("upstash bridge with the real @upstash/redis client", () => {
  it("round-trips a unicode string byte-exactly", async () => {
    const value = 'grüße ✓ 🚀 日本語 "quoted" back\\slash';
    for (const [name, redis] of clients) {
      const key = `unicode:${name}`;
      expect(await redis.set(key, value)).toBe("OK");
      expect(await redis.get(key), name).toBe(value);
      const stored = await direct((r) => r.getBuffer(key));
      expect(stored?.equals(Buffer.from(value, "utf8")), name).toBe(true);
    }
  });

  it("stores and returns a JSON object", async () => {
    const value = { id: 7, name: "ünïcode", tags: ["a", "b"], nested: { ok: true, none: null } };
    for (const [name, redis] of clients) {
      await redis.set(`json:${name}`, value, { px: 60_000 });
      expect(await redis.get<typeof value>(`json:${name}`), name).toEqual(value);
      expect(await direct((r) => r.pttl(`json:${name}`))).toBeGreaterThan(50_000);
    }
  });

  it("incr returns numbers", async () => {
    expect(await auto.incr("incr:k")).toBe(1);
    expect(await single.incr("incr:k")).toBe(2);
    expect(await plain.incrby("incr:k", 40)).toBe(42);
  });

  it("pipeline() runs commands in order, not atomically", async () => {
    const results = await auto
      .pipeline()
      .set("pipe:s", "hello")
      .get("pipe:s")
      .incr("pipe:s") // fails: not an integer
      .incr("pipe:n") // still runs
      .exec({ keepErrors: true });
    expect(results.map((r) => r.result)).toEqual(["OK", "hello", undefined, 1]);
    expect(results[2]?.error).toMatch(/not an integer/);
    expect(await direct((r) => r.get("pipe:n"))).toBe("1");
    await expect(single.pipeline().incr("pipe:s").exec()).rejects.toThrow(/Command 1 \[ incr \] failed/);
  });

  it("multi() runs commands atomically via MULTI/EXEC", async () => {
    expect(await auto.multi().set("multi:k", 1).incr("multi:k").get("multi:k").exec()).toEqual(["OK", 2, 2]);
    // A queueing error aborts the whole transaction: nothing is written.
    const aborted = await post("/multi-exec", [["SET", "multi:abort", "1"], ["NOSUCHCOMMAND"]]);
    expect(aborted.status).toBe(400);
    expect((aborted.body as { error: string }).error).toMatch(/EXECABORT.*unknown command/s);
    expect(await direct((r) => r.exists("multi:abort"))).toBe(0);
    // A runtime error inside EXEC is reported per command; the others ran (Redis semantics).
    const partial = await post("/multi-exec", [
      ["SET", "multi:s", "x"],
      ["INCR", "multi:s"],
      ["GET", "multi:s"],
    ]);
    expect(partial).toEqual({
      status: 200,
      body: [{ result: "OK" }, { error: expect.stringMatching(/not an integer/) }, { result: "x" }],
    });
  });

  it("createScript falls back from EVALSHA to EVAL after SCRIPT FLUSH", async () => {
    const lua = "redis.call('SET', KEYS[1], ARGV[1]); return {KEYS[1], redis.call('GET', KEYS[1]), 42}";
    for (const [name, redis] of clients) {
      await direct((r) => r.script("FLUSH"));
      const script = redis.createScript<[string, string, number]>(lua);
      const before = await scriptCalls();
      expect(await script.exec([`script:${name}`], ["välue"]), name).toEqual([`script:${name}`, "välue", 42]);
      const after = await scriptCalls();
      // EVALSHA was tried first and got NOSCRIPT, then the client fell back to EVAL.
      expect(after, name).toEqual({ evalsha: before.evalsha + 1, eval: before.eval + 1 });
      // Now cached: EVALSHA alone succeeds.
      expect(await script.exec([`script:${name}`], ["again"])).toEqual([`script:${name}`, "again", 42]);
      expect(await scriptCalls(), name).toEqual({ evalsha: after.evalsha + 1, eval: after.eval });
    }
  });

  it("evalsha of an unknown script surfaces Redis' NOSCRIPT error", async () => {
    await expect(single.evalsha("0".repeat(40), [], [])).rejects.toThrow(/^NOSCRIPT/);
  });

  it("eval returns arrays with nil and nested strings", async () => {
    const lua = "return {1, false, 'x', {'y', 'ü', {'deep'}}}";
    for (const [name, redis] of clients) {
      expect(await redis.eval(lua, [], []), name).toEqual([1, null, "x", ["y", "ü", ["deep"]]]);
    }
  });

  it("rejects a wrong token", async () => {
    const wrong = new UpstashRedis({ url: bridge.url, token: "wrong", retry: false });
    await expect(wrong.get("anything")).rejects.toThrow(/Unauthorized/);
    const res = await fetch(bridge.url, { method: "POST", body: JSON.stringify(["PING"]) });
    expect(res.status).toBe(401);
    expect(await res.json()).toEqual({ error: "Unauthorized" });
  });
});

describe("upstash bridge pub/sub, as the real @upstash/redis subscribe() reads it", () => {
  /** The first `count` values a subscriber delivers for `event`, or a timeout error. */
  function collect<T>(on: (listener: (value: T) => void) => void, count: number): Promise<T[]> {
    return new Promise((resolve, reject) => {
      const seen: T[] = [];
      const timer = setTimeout(() => reject(new Error(`got ${seen.length} of ${count}`)), 3000);
      on((value) => {
        seen.push(value);
        if (seen.length === count) {
          clearTimeout(timer);
          resolve(seen);
        }
      });
    });
  }

  it("subscribe() confirms the subscription, then delivers each PUBLISH in order", async () => {
    const client = new UpstashRedis({
      url: bridge.url,
      token: bridge.token,
      automaticDeserialization: false,
    });
    const subscriber = client.subscribe<string>(["news"]);
    try {
      const confirmed = collect<number>((l) => subscriber.on("subscribe", l), 1);
      expect(await confirmed).toEqual([1]);
      expect(bridge.subscriptions()).toBe(1);
      const messages = collect<{ channel: string; message: string }>((l) => subscriber.on("message", l), 2);
      expect(await client.publish("news", "first, with a comma")).toBe(1);
      await client.publish("news", "second");
      expect(await messages).toEqual([
        { channel: "news", message: "first, with a comma" },
        { channel: "news", message: "second" },
      ]);
    } finally {
      await subscriber.unsubscribe();
    }
    // Closing the stream ends the bridge's subscription in Redis too.
    for (let i = 0; i < 50 && bridge.subscriptions() > 0; i++) await sleep(20);
    expect(bridge.subscriptions()).toBe(0);
    expect(await direct((r) => r.call("PUBSUB", "NUMSUB", "news"))).toEqual(["news", 0]);
  });

  it("psubscribe() delivers messages of every matching channel", async () => {
    const client = new UpstashRedis({
      url: bridge.url,
      token: bridge.token,
      automaticDeserialization: false,
    });
    const subscriber = client.psubscribe<string>(["ev:*"]);
    try {
      await collect<number>((l) => subscriber.on("psubscribe", l), 1);
      const messages = collect<{ pattern: string; channel: string; message: string }>(
        (l) => subscriber.on("pmessage", l),
        1,
      );
      await client.publish("other", "ignored");
      await client.publish("ev:a", "hello");
      expect(await messages).toEqual([{ pattern: "ev:*", channel: "ev:a", message: "hello" }]);
    } finally {
      await subscriber.unsubscribe();
    }
  });

  it("refuses a stream without the token, and drops open streams on demand", async () => {
    const refused = await fetch(`${bridge.url}/subscribe/x`, { method: "POST", body: "[]" });
    expect(refused.status).toBe(401);
    const client = new UpstashRedis({ url: bridge.url, token: bridge.token });
    const subscriber = client.subscribe(["x"]);
    await collect<number>((l) => subscriber.on("subscribe", l), 1);
    expect(bridge.dropSubscriptions()).toBe(1);
    await subscriber.unsubscribe();
  });
});

describe("upstash bridge wire protocol", () => {
  const b64 = { "Upstash-Encoding": "base64" };

  it("base64-encodes every string result, binary-safe, but not OK, integers or nil", async () => {
    const binary = Buffer.from([0xff, 0x00, 0xfe, 0x80, 0x0a]);
    await direct((r) => r.set("wire:bin", binary));
    expect(await post("/", ["GET", "wire:bin"], b64)).toEqual({
      status: 200,
      body: { result: binary.toString("base64") },
    });
    expect(await post("/", ["SET", "wire:s", "v"], b64)).toEqual({ status: 200, body: { result: "OK" } });
    expect(await post("/", ["PING"], b64)).toEqual({ status: 200, body: { result: "UE9ORw==" } });
    expect(
      await post(
        "/pipeline",
        [
          ["MGET", "wire:bin", "wire:none"],
          ["INCR", "wire:n"],
        ],
        b64,
      ),
    ).toEqual({
      status: 200,
      body: [{ result: [binary.toString("base64"), null] }, { result: 1 }],
    });
    // Without the header, strings are plain JSON strings.
    expect(await post("/", ["GET", "wire:s"])).toEqual({ status: 200, body: { result: "v" } });
  });

  it("accepts numbers as arguments and any command-name case", async () => {
    expect(await post("/", ["set", "wire:num", 12, "PX", 60_000])).toEqual({
      status: 200,
      body: { result: "OK" },
    });
    expect(await post("/", ["GET", "wire:num"])).toEqual({ status: 200, body: { result: "12" } });
    await direct((r) => r.hset("wire:h", { a: "1", b: "2" }));
    expect(await post("/", ["HGETALL", "wire:h"])).toEqual({
      status: 200,
      body: { result: ["a", "1", "b", "2"] },
    });
  });

  it("answers errors as JSON", async () => {
    expect(await post("/", ["GET"])).toEqual({
      status: 400,
      body: { error: expect.stringMatching(/^ERR wrong number of arguments/) },
    });
    const malformed = await post("/", "[not json");
    expect(malformed.status).toBe(400);
    expect(malformed.body).toEqual({ error: expect.any(String) });
    expect((await post("/", [])).status).toBe(400);
    expect((await post("/", ["SET", "k", { nested: true }])).status).toBe(400);
    expect((await post("/", ["MULTI"])).status).toBe(400);
  });
});

// Last: these take redis away and bring it back (with an empty dataset).
describe("redis outage", () => {
  it("kill() makes commands through the bridge fail fast", async () => {
    const pid = server.pid();
    await server.kill();
    expect(server.pid()).toBeUndefined();
    expect(() => process.kill(pid as number, 0)).toThrow(); // really gone

    for (const [name, redis] of clients) {
      const started = Date.now();
      await expect(redis.get("outage:k"), name).rejects.toThrow(/redis unavailable/);
      expect(Date.now() - started, name).toBeLessThan(3_000);
    }
    const raw = await post("/pipeline", [["PING"]]);
    expect(raw.status).toBe(500);
    expect(raw.body).toEqual({ error: expect.stringMatching(/redis unavailable/) });
  });

  it("restart() brings redis back on the same port, and the bridge reconnects", async () => {
    const port = server.port;
    await server.restart();
    expect(server.port).toBe(port);
    expect(server.pid()).toBeGreaterThan(0);
    expect(await direct((r) => r.dbsize())).toBe(0); // no persistence: a fresh dataset
    for (const [name, redis] of clients) {
      expect(await redis.set(`back:${name}`, "yes"), name).toBe("OK");
      expect(await redis.get(`back:${name}`), name).toBe("yes");
    }
  });
});
