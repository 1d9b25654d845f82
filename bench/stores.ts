/**
 * `npm run bench:stores`: what each store costs and how fast it hands a lock over, Upstash (through
 * the REST bridge, with SSE pub/sub, the real @upstash/redis client) next to TCP Redis. One run, one
 * redis-server, two server processes per store:
 *
 *   1. Redis commands per operation (INFO commandstats), script included, as Upstash bills them:
 *      acquire, acquire with wait_ms on a free key, renew, release, status; and the rate limiter's.
 *   2. Handoff latency (release → next waiter's grant answered) with 1, 10 and 100 long-polling
 *      waiters spread over the two servers, p50 / p99.
 *   3. Shapes: exclusive, shared, limit 3 and a pool of 3, each with 8 clients acquiring and
 *      releasing in a loop: cycles per second, commands per cycle; and the handoff from the last
 *      shared holder's release to a waiting exclusive acquire's grant.
 *   4. Through the built action (dist/main under Node 24, as the runner runs it): 8 jobs wait for a
 *      held key, spread over the two servers, for WINDOW_MS; commands per waiter-minute (the holder's
 *      own renewals measured apart and subtracted); then the chain of handoffs through the action.
 *
 * Prints a report and writes bench/stores-results.json. Talks to 127.0.0.1 only; takes ~6 minutes.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { Redis } from "ioredis";
import { startRedisServer } from "../test/support/redis-server.js";
import { actionInputDefaults, Job } from "../test/support/runner.js";
import { startUpstashBridge } from "../test/support/upstash-bridge.js";
import {
  Cleanup,
  commandCounters,
  commandsBetween,
  percentile,
  rootDir,
  round,
  runBench,
  type Service,
  sleep,
  startService,
} from "./lib.js";

const ADMIN = "bench-admin-token-0123456789";
const OPS_REPEATS = 20;
const CHAIN_SIZES = [1, 10, 100] as const;
const CHAIN_ROUNDS: Record<number, number> = { 1: 20, 10: 3, 100: 1 };
const ACTION_WAITERS = 8;
const WINDOW_MS = Number(process.env.BENCH_WINDOW_MS ?? 115_000);
const HOLDER_TTL_MS = 60_000;
const SHAPE_CLIENTS = 8;
const SHAPE_MS = 5000;
const SHARED_HANDOFF_ROUNDS = 20;
const RENEW_EVERY_MS = 20_000;

type StoreKind = "redis" | "upstash";
const now = () => performance.now();

interface Reply {
  status: number;
  // biome-ignore lint/suspicious/noExplicitAny: bodies are read field by field
  body: any;
}

async function call(base: string, method: string, path: string, payload?: unknown): Promise<Reply> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: {
      Authorization: `Bearer ${ADMIN}`,
      ...(payload === undefined ? {} : { "Content-Type": "application/json" }),
    },
    body: payload === undefined ? undefined : JSON.stringify(payload),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

/** Average commands per call of `op` over OPS_REPEATS calls (each on its own key unless it says). */
async function perOperation(redis: Redis, op: (i: number) => Promise<void>) {
  await op(-1); // loads the scripts (EVALSHA → NOSCRIPT → EVAL) outside the measurement
  const before = await commandCounters(redis);
  for (let i = 0; i < OPS_REPEATS; i++) await op(i);
  const after = await commandCounters(redis);
  const d = commandsBetween(before, after);
  const byCommand = Object.fromEntries(
    Object.entries(d.byCommand).map(([name, n]) => [name, round(n / OPS_REPEATS)]),
  );
  return { commands: round(d.executed / OPS_REPEATS), byCommand };
}

async function commandsPerOperation(kind: StoreKind, redis: Redis, base: string, limited: string) {
  const key = (op: string, i: number) => `ops-${op}-${i}`;
  const acquire = (k: string, extra: Record<string, unknown> = {}) =>
    call(base, "POST", `/infra/locks/${k}/acquire`, { ttl_ms: HOLDER_TTL_MS, token: `t-${k}`, ...extra });
  const ops = {
    "acquire (a new key)": await perOperation(redis, async (i) => void (await acquire(key("a", i)))),
    "acquire (a key used in the last hour)": await (async () => {
      for (let i = -1; i < OPS_REPEATS; i++) {
        const k = key("u", i);
        await acquire(k);
        await call(base, "POST", `/infra/locks/${k}/release`, { token: `t-${k}` });
      }
      return perOperation(redis, async (i) => void (await acquire(key("u", i))));
    })(),
    "acquire with wait_ms (free key)": await perOperation(
      redis,
      async (i) => void (await acquire(key("w", i), { wait_ms: 10_000 })),
    ),
    renew: await (async () => {
      for (let i = -1; i < OPS_REPEATS; i++) await acquire(key("r", i));
      return perOperation(redis, async (i) => {
        await call(base, "POST", `/infra/locks/${key("r", i)}/renew`, {
          token: `t-${key("r", i)}`,
          ttl_ms: HOLDER_TTL_MS,
        });
      });
    })(),
    release: await (async () => {
      for (let i = -1; i < OPS_REPEATS; i++) await acquire(key("l", i));
      return perOperation(redis, async (i) => {
        await call(base, "POST", `/infra/locks/${key("l", i)}/release`, { token: `t-${key("l", i)}` });
      });
    })(),
    status: await perOperation(
      redis,
      async (i) => void (await call(base, "GET", `/infra/locks/${key("a", i)}`)),
    ),
    // Shared: a third holder joins two, then leaves them (the records of the key exist).
    "shared acquire (beside 2 holders)": await (async () => {
      for (let i = -1; i < OPS_REPEATS; i++)
        for (const other of ["o1", "o2"])
          await acquire(key("s", i), { mode: "shared", token: `${other}-${key("s", i)}` });
      return perOperation(redis, async (i) => void (await acquire(key("s", i), { mode: "shared" })));
    })(),
    "shared release (2 holders stay)": await perOperation(redis, async (i) => {
      await call(base, "POST", `/infra/locks/${key("s", i)}/release`, { token: `t-${key("s", i)}` });
    }),
    "status, 2 shared holders": await perOperation(
      redis,
      async (i) => void (await call(base, "GET", `/infra/locks/${key("s", i)}`)),
    ),
    // A pool of 3 whose first key is held: the acquire gets the second.
    "pool of 3 acquire (first key held)": await (async () => {
      const pool = (i: number) => [key("p1", i), key("p2", i), key("p3", i)];
      for (let i = -1; i < OPS_REPEATS; i++) await acquire(pool(i)[0] as string, { token: `held-${i}` });
      return perOperation(redis, async (i) => {
        const got = await call(base, "POST", "/infra/pools/acquire", {
          keys: pool(i),
          ttl_ms: HOLDER_TTL_MS,
          token: `pool-${i}`,
        });
        if (got.body?.key !== pool(i)[1]) throw new Error(`pool acquire: ${JSON.stringify(got.body)}`);
      });
    })(),
    "/locks status (GET /locks/{id})": await (async () => {
      const created = await call(base, "POST", "/locks?l=true");
      return perOperation(redis, async () => void (await call(base, "GET", `/locks/${created.body.id}`)));
    })(),
    "rate limiter, per request": await (async () => {
      const withLimiter = await perOperation(
        redis,
        async () => void (await call(limited, "GET", "/infra/locks/rl")),
      );
      const without = await perOperation(
        redis,
        async () => void (await call(base, "GET", "/infra/locks/rl")),
      );
      return {
        commands: round(withLimiter.commands - without.commands),
        byCommand: Object.fromEntries(
          Object.entries(withLimiter.byCommand).map(([n, c]) => [n, round(c - (without.byCommand[n] ?? 0))]),
        ),
      };
    })(),
  };
  console.log(
    `  ${kind}: ${Object.entries(ops)
      .map(([n, o]) => `${n} ${o.commands}`)
      .join(", ")}`,
  );
  return ops;
}

/** One chain: a holder, then `size` waiters arriving 5 ms apart over both servers; each holds 20 ms. */
async function chain(servers: Service[], size: number, round_: number) {
  const key = `chain-${size}-${round_}-${Math.random().toString(36).slice(2, 8)}`;
  const base = (i: number) => (servers[i % servers.length] as Service).url;
  const holder = await call(base(0), "POST", `/infra/locks/${key}/acquire`, { ttl_ms: 30_000, token: "h" });
  if (holder.status !== 200) throw new Error(`holder: ${holder.status}`);
  const releases: number[] = [];
  const handoffs: number[] = [];
  let lastRelease = 0;
  const waiter = async (i: number) => {
    await sleep(5 * i);
    const token = `w${i}`;
    for (;;) {
      const r = await call(base(i), "POST", `/infra/locks/${key}/acquire`, {
        ttl_ms: 30_000,
        token,
        wait_ms: 55_000,
      });
      if (r.status === 200) break;
      if (r.status !== 409) throw new Error(`waiter ${i}: ${r.status} ${JSON.stringify(r.body)}`);
    }
    handoffs.push(now() - lastRelease);
    await sleep(20);
    lastRelease = now();
    releases.push(lastRelease);
    await call(base(i), "POST", `/infra/locks/${key}/release`, { token });
  };
  const waiters = Array.from({ length: size }, (_, i) => waiter(i));
  await sleep(5 * size + 300);
  lastRelease = now();
  await call(base(0), "POST", `/infra/locks/${key}/release`, { token: "h" });
  await Promise.all(waiters);
  return handoffs;
}

async function handoffLatency(kind: StoreKind, servers: Service[]) {
  const out: Record<string, { p50: number; p99: number; handoffs: number }> = {};
  for (const size of CHAIN_SIZES) {
    const all: number[] = [];
    for (let r = 0; r < (CHAIN_ROUNDS[size] ?? 1); r++) all.push(...(await chain(servers, size, r)));
    out[String(size)] = {
      p50: round(percentile(all, 50), 1),
      p99: round(percentile(all, 99), 1),
      handoffs: all.length,
    };
    console.log(
      `  ${kind}: ${size} waiter(s): p50 ${out[String(size)]?.p50} ms, p99 ${out[String(size)]?.p99} ms`,
    );
  }
  return out;
}

type Shape = "exclusive" | "shared" | "limit 3" | "pool of 3";
const SHAPES: Shape[] = ["exclusive", "shared", "limit 3", "pool of 3"];

/**
 * SHAPE_CLIENTS clients over both servers, each acquiring (waiting in the queue, its own token) and
 * releasing in a loop for SHAPE_MS: cycles per second, Redis commands per cycle, acquire latency.
 */
async function shapeThroughput(kind: StoreKind, redis: Redis, servers: Service[], shape: Shape) {
  const tag = `${shape.replace(/ /g, "")}-${Math.random().toString(36).slice(2, 8)}`;
  const keys = shape === "pool of 3" ? [`${tag}-1`, `${tag}-2`, `${tag}-3`] : [tag];
  const extra = shape === "shared" ? { mode: "shared" } : shape === "limit 3" ? { limit: 3 } : {};
  const base = (i: number) => (servers[i % servers.length] as Service).url;
  const acquire = (i: number, token: string) =>
    keys.length > 1
      ? call(base(i), "POST", "/infra/pools/acquire", { keys, ttl_ms: 30_000, token, wait_ms: 55_000 })
      : call(base(i), "POST", `/infra/locks/${keys[0]}/acquire`, {
          ttl_ms: 30_000,
          token,
          wait_ms: 55_000,
          ...extra,
        });
  let cycles = 0;
  const latencies: number[] = [];
  let deadline = 0;
  const client = async (i: number) => {
    for (let n = 0; now() < deadline; n++) {
      const token = `${tag}-c${i}-${n}`;
      const t0 = now();
      let got = await acquire(i, token);
      while (got.status === 409) got = await acquire(i, token);
      if (got.status !== 200) throw new Error(`${shape}: ${got.status} ${JSON.stringify(got.body)}`);
      latencies.push(now() - t0);
      const key = got.body.key as string;
      const released = await call(base(i), "POST", `/infra/locks/${key}/release`, { token });
      if (released.status !== 200) throw new Error(`${shape} release: ${released.status}`);
      cycles++;
    }
  };
  // Warm up (scripts loaded, subscriptions known), then measure.
  deadline = now() + 300;
  await Promise.all(Array.from({ length: SHAPE_CLIENTS }, (_, i) => client(i)));
  cycles = 0;
  latencies.length = 0;
  const before = await commandCounters(redis);
  const started = now();
  deadline = started + SHAPE_MS;
  await Promise.all(Array.from({ length: SHAPE_CLIENTS }, (_, i) => client(i)));
  const elapsed = now() - started;
  const d = commandsBetween(before, await commandCounters(redis));
  const result = {
    cyclesPerSecond: round((cycles / elapsed) * 1000, 0),
    commandsPerCycle: round(d.executed / cycles, 1),
    acquireMs: { p50: round(percentile(latencies, 50), 1), p99: round(percentile(latencies, 99), 1) },
  };
  console.log(
    `  ${kind}: ${shape}: ${result.cyclesPerSecond} acquire+release/s, ${result.commandsPerCycle} commands each, acquire p50 ${result.acquireMs.p50} ms`,
  );
  return result;
}

/** Three shared holders, an exclusive waiter; the shared ones leave: last release → its grant. */
async function sharedToExclusive(kind: StoreKind, servers: Service[]) {
  const handoffs: number[] = [];
  for (let r = 0; r < SHARED_HANDOFF_ROUNDS; r++) {
    const key = `rw-${r}-${Math.random().toString(36).slice(2, 8)}`;
    const base = (i: number) => (servers[i % servers.length] as Service).url;
    for (const h of ["r1", "r2", "r3"]) {
      const got = await call(base(0), "POST", `/infra/locks/${key}/acquire`, {
        ttl_ms: 30_000,
        token: h,
        mode: "shared",
      });
      if (got.status !== 200) throw new Error(`reader ${h}: ${got.status}`);
    }
    let lastRelease = 0;
    const writer = (async () => {
      for (;;) {
        const got = await call(base(1), "POST", `/infra/locks/${key}/acquire`, {
          ttl_ms: 30_000,
          token: "w",
          wait_ms: 55_000,
        });
        if (got.status === 200) return now();
        if (got.status !== 409) throw new Error(`writer: ${got.status}`);
      }
    })();
    await sleep(100); // the writer waits in the queue
    for (const [i, h] of ["r1", "r2", "r3"].entries()) {
      if (i === 2) lastRelease = now();
      await call(base(i), "POST", `/infra/locks/${key}/release`, { token: h });
      await sleep(10);
    }
    handoffs.push((await writer) - lastRelease);
  }
  const result = {
    p50: round(percentile(handoffs, 50), 1),
    p99: round(percentile(handoffs, 99), 1),
    handoffs: handoffs.length,
  };
  console.log(
    `  ${kind}: last shared release → exclusive waiter's grant: p50 ${result.p50} ms, p99 ${result.p99} ms`,
  );
  return result;
}

/** 8 action jobs wait WINDOW_MS for a key the bench holds; then the lock goes down the chain. */
async function throughTheAction(kind: StoreKind, redis: Redis, servers: Service[]) {
  const key = `action-${kind}`;
  const base = (i: number) => (servers[i % servers.length] as Service).url;
  const held = await call(base(0), "POST", `/infra/locks/${key}/acquire`, {
    ttl_ms: HOLDER_TTL_MS,
    token: "holder",
  });
  if (held.status !== 200) throw new Error(`holder: ${held.status}`);
  let renewals = 0;
  const stop = new AbortController();
  const renewing = (async () => {
    while (!stop.signal.aborted) {
      await Promise.race([
        sleep(RENEW_EVERY_MS),
        new Promise((r) => stop.signal.addEventListener("abort", r)),
      ]);
      if (stop.signal.aborted) return;
      await call(base(0), "POST", `/infra/locks/${key}/renew`, { token: "holder", ttl_ms: HOLDER_TTL_MS });
      renewals++;
    }
  })();

  // The holder alone: what its renewals cost, to subtract below.
  console.log(`  ${kind}: the holder alone (${(RENEW_EVERY_MS * 2 + 1000) / 1000} s)…`);
  const aloneBefore = await commandCounters(redis);
  const aloneRenewals = renewals;
  await sleep(RENEW_EVERY_MS * 2 + 1000);
  const alone = commandsBetween(aloneBefore, await commandCounters(redis));
  const perRenewal = alone.executed / Math.max(1, renewals - aloneRenewals);

  const inputDefaults = actionInputDefaults(join(rootDir, "action.yml"));
  const jobs = Array.from({ length: ACTION_WAITERS }, (_, i) => ({
    job: new Job({ inputDefaults, env: { GITHUB_REPOSITORY: "bench/app", GITHUB_WORKFLOW: `job ${i}` } }),
    inputs: { mode: "acquire", url: base(i), token: ADMIN, key, ttl: "60s", timeout: "10m" },
  }));
  console.log(`  ${kind}: ${ACTION_WAITERS} action jobs wait (${WINDOW_MS / 1000} s)…`);
  const mains = [];
  for (const [i, j] of jobs.entries()) {
    mains.push({ i, running: j.job.start("dist/main/index.js", { inputs: j.inputs }) });
    await sleep(100);
  }
  await sleep(3000); // all have joined the queue
  const windowBefore = await commandCounters(redis);
  const renewalsBefore = renewals;
  const started = now();
  await sleep(WINDOW_MS);
  const window = commandsBetween(windowBefore, await commandCounters(redis));
  const elapsed = now() - started;
  const holderShare = (renewals - renewalsBefore) * perRenewal;
  const perWaiterMinute = ((window.executed - holderShare) / ACTION_WAITERS) * (60_000 / elapsed);

  // The chain: release, and each job, once granted (its main step ends), runs its post step.
  stop.abort();
  await renewing;
  const handoffs: number[] = [];
  let releasedAt = now();
  await call(base(0), "POST", `/infra/locks/${key}/release`, { token: "holder" });
  const pending = new Set(mains);
  while (pending.size > 0) {
    const next = await Promise.race([...pending].map(async (m) => ({ m, result: await m.running.result })));
    handoffs.push(now() - releasedAt);
    pending.delete(next.m);
    if (next.result.outputs.acquired !== "true") throw new Error(`job ${next.m.i}: ${next.result.stdout}`);
    const j = jobs[next.m.i] as (typeof jobs)[number];
    const post = await j.job.step("dist/post/index.js", { inputs: j.inputs });
    releasedAt = now();
    if (post.exitCode !== 0) throw new Error(`post of job ${next.m.i}: ${post.stdout}`);
  }
  for (const j of jobs) await j.job.cleanup();
  const result = {
    waiters: ACTION_WAITERS,
    windowMs: Math.round(elapsed),
    commandsInWindow: window.executed,
    byCommand: window.byCommand,
    holderRenewalsInWindow: renewals - renewalsBefore,
    commandsPerRenewal: round(perRenewal),
    commandsPerWaiterMinute: round(perWaiterMinute),
    handoff: {
      p50: round(percentile(handoffs, 50), 1),
      max: round(Math.max(...handoffs), 1),
      n: handoffs.length,
    },
  };
  console.log(
    `  ${kind}: ${result.commandsPerWaiterMinute} commands per waiter-minute; handoff through the action p50 ${result.handoff.p50} ms`,
  );
  return result;
}

let interrupted = false;

async function main() {
  const cleanup = new Cleanup();
  process.once("SIGINT", () => {
    interrupted = true;
    cleanup.run().finally(() => process.exit(130));
  });
  try {
    const redisServer = await startRedisServer();
    cleanup.defer(() => redisServer.stop());
    const bridge = await startUpstashBridge({ redisUrl: redisServer.url });
    cleanup.defer(() => bridge.close());
    const redis = new Redis(redisServer.url);
    cleanup.defer(async () => redis.disconnect());

    const storeEnv: Record<StoreKind, Record<string, string>> = {
      redis: { REDIS_URL: redisServer.url },
      upstash: { UPSTASH_REDIS_REST_URL: bridge.url, UPSTASH_REDIS_REST_TOKEN: bridge.token },
    };
    const results: Record<string, unknown> = {};
    for (const kind of ["redis", "upstash"] as const) {
      console.log(`${kind === "redis" ? "TCP Redis" : "Upstash (REST + SSE)"}:`);
      const start = (n: number, env: Record<string, string>) =>
        startService(
          {
            name: `lss ${kind} #${n}`,
            nodeArgs: ["--import", "tsx", "server/node.ts"],
            env: {
              ...storeEnv[kind],
              LSS_ADMIN_TOKEN: ADMIN,
              LSS_KEY_PREFIX: `b-${kind}`,
              LSS_RATE_LIMIT: "off",
              ...env,
            },
            cwd: rootDir,
            readyPath: "/health",
          },
          cleanup,
        );
      const servers = await Promise.all([start(1, {}), start(2, {})]);
      const limited = await start(3, { LSS_RATE_LIMIT: "100000" });
      const ops = await commandsPerOperation(kind, redis, (servers[0] as Service).url, limited.url);
      await limited.stop();
      const handoff = await handoffLatency(kind, servers);
      const shapes: Record<string, unknown> = {};
      for (const shape of SHAPES) shapes[shape] = await shapeThroughput(kind, redis, servers, shape);
      const sharedHandoff = await sharedToExclusive(kind, servers);
      const action = await throughTheAction(kind, redis, servers);
      results[kind] = {
        commandsPerOperation: ops,
        handoffMs: handoff,
        shapes,
        sharedToExclusiveHandoffMs: sharedHandoff,
        throughTheAction: action,
      };
      await Promise.all(servers.map((s) => s.stop()));
    }
    writeFileSync(join(rootDir, "bench", "stores-results.json"), `${JSON.stringify(results, null, 2)}\n`);
    console.log("\nwritten: bench/stores-results.json");
  } finally {
    await cleanup.run();
  }
}

runBench(main, () => interrupted);
