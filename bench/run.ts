/**
 * `npm run bench`: lock server throughput on Redis against a floor and a ceiling, in one run.
 *
 *   1. LSS (server/node.ts, own process, fresh redis-server) under autocannon: acquire+release pairs/s.
 *   2. The floor (bench/floor.ts, own process, SAME Redis): one plain Redis round trip per request.
 *   3. The ceiling (bench/ceiling/node-http.ts): the same lock engine without the app (no auth,
 *      validation, metrics or routing), same Redis, same load: what the app's layers cost; and
 *      bench/ceiling/hono.ts, the engine in bare Hono: what of that is Hono and its Node adapter.
 *   Latency p50/p99 of each, overall and per request (acquire, release), and CPU per 1000 pairs.
 *   4. Redis commands per acquire / release / status as Redis counts them (INFO), with the rate
 *      limiter off and on.
 *
 * Prints a report and writes it to bench/results.json. Talks to 127.0.0.1 only; cleans up every
 * child process and the redis-server on success, failure and Ctrl-C.
 *
 * Knobs (env): BENCH_CONNECTIONS (50), BENCH_DURATION s (10), BENCH_WARMUP s (2), BENCH_OPS (200),
 * BENCH_ROUNDS (3: each target measured in turn this many times, its median reported),
 * BENCH_CPU_PROF=1 (server runs with --cpu-prof, profiles in bench/profiles/),
 * BENCH_SERVER_ENTRY (server/node.ts; point it at a modified copy of the server to compare, or at
 * bench/ceiling/node-http.ts or bench/ceiling/hono.ts: the lock engine without the app around it).
 */
import { randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Redis } from "ioredis";
import {
  benchDir,
  benchMain,
  type Cleanup,
  type CommandCounters,
  commandCounters,
  commandsBetween,
  type MachineInfo,
  machineInfo,
  rootDir,
  SERVER_ENTRY,
  type Service,
  sleep,
  startBenchRedis,
  startLss as startServer,
  startService,
} from "./lib.js";
import { type Latency, type LoadResult, load } from "./load.js";

const envInt = (name: string, fallback: number) => {
  const value = Number(process.env[name]);
  return Number.isInteger(value) && value > 0 ? value : fallback;
};

const CONNECTIONS = envInt("BENCH_CONNECTIONS", 50);
const DURATION_S = envInt("BENCH_DURATION", 10);
const WARMUP_S = envInt("BENCH_WARMUP", 2);
const OPS = envInt("BENCH_OPS", 200);
const ROUNDS = envInt("BENCH_ROUNDS", 3);
const CPU_PROF = process.env.BENCH_CPU_PROF === "1";
const TTL_MS = 30_000;
const RATE_LIMIT_ON = "1000000"; // per minute: on, but never reached

const resultsFile = join(benchDir, "results.json");
const profileDir = join(benchDir, "profiles");

// ---------------------------------------------------------------------------------------------
// Redis commands per operation, as Redis counts them
// ---------------------------------------------------------------------------------------------

interface OpCommands {
  /**
   * Commands Redis executed per operation: `total_commands_processed` growth, our INFO subtracted.
   * Redis 7 counts the commands a Lua script runs as well as the EVALSHA that ran it.
   */
  executed: number;
  /** Of those, commands a client sent, i.e. round trips (MONITOR: source is a client). */
  sent: number;
  /** Of those, commands run inside Lua scripts (MONITOR: source "lua"). */
  inScripts: number;
  /** `INFO commandstats` growth per operation, by command (sent and in scripts). */
  byCommand: Record<string, number>;
  /** Commands sent per operation, by command (MONITOR). */
  sentByCommand: Record<string, number>;
}

interface CommandCounts {
  rateLimit: string;
  ops: number;
  acquire: OpCommands;
  status: OpCommands;
  release: OpCommands;
}

type Op = "acquire" | "status" | "release";
const OPS_IN_ORDER: Op[] = ["acquire", "status", "release"];
const per = (n: number) => Math.round((n / OPS) * 1000) / 1000;

function tally(names: string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const name of names) counts[name] = (counts[name] ?? 0) + 1;
  return Object.fromEntries(Object.entries(counts).map(([name, n]) => [name, per(n)]));
}

/**
 * OPS acquires, then OPS status GETs, then OPS releases, sequentially (plain fetch), each batch
 * between two INFO readings. A MONITOR connection watches at the same time; our INFO commands in its
 * stream mark the batch boundaries, so each batch's commands can be split into sent vs in-script.
 */
async function countCommands(
  baseUrl: string,
  redis: Redis,
  adminToken: string,
  rateLimit: string,
): Promise<CommandCounts> {
  const call = async (method: "GET" | "POST", path: string, body?: unknown) => {
    const res = await fetch(`${baseUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${adminToken}`, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(5_000),
    });
    const json = (await res.json()) as { token?: string };
    if (res.status !== 200) throw new Error(`${method} ${path} → ${res.status} ${JSON.stringify(json)}`);
    return json;
  };
  const prefix = `cmd-${rateLimit}`;
  // Warm-up: loads the Lua scripts (EVALSHA → NOSCRIPT → EVAL) and the rate limiter's script once.
  const warm = await call("POST", `/infra/locks/${prefix}-warm/acquire`, { ttl_ms: TTL_MS });
  await call("GET", `/infra/locks/${prefix}-warm`);
  await call("POST", `/infra/locks/${prefix}-warm/release`, { token: warm.token });

  const monitor = await redis.monitor();
  const stream: Array<{ name: string; lua: boolean }> = [];
  monitor.on("monitor", (_time: string, args: string[], source: string) => {
    stream.push({ name: (args[0] ?? "").toLowerCase(), lua: source === "lua" });
  });
  try {
    const keys = Array.from({ length: OPS }, (_, i) => `${prefix}-${i}`);
    const tokens: string[] = [];
    const batches: Record<Op, () => Promise<void>> = {
      acquire: async () => {
        for (const key of keys) {
          tokens.push(String((await call("POST", `/infra/locks/${key}/acquire`, { ttl_ms: TTL_MS })).token));
        }
      },
      status: async () => {
        for (const key of keys) await call("GET", `/infra/locks/${key}`);
      },
      release: async () => {
        for (const [i, key] of keys.entries()) {
          await call("POST", `/infra/locks/${key}/release`, { token: tokens[i] });
        }
      },
    };
    const readings = [await commandCounters(redis)];
    for (const op of OPS_IN_ORDER) {
      await batches[op]();
      readings.push(await commandCounters(redis));
    }
    // The MONITOR stream may trail the replies a little: wait for our last INFO to show up in it.
    const infos = () => stream.filter((c) => c.name === "info" && !c.lua).length;
    for (const deadline = Date.now() + 5_000; infos() < readings.length; ) {
      if (Date.now() > deadline) throw new Error("MONITOR did not show all INFO readings");
      await sleep(20);
    }
    const segments: Array<Array<{ name: string; lua: boolean }>> = [[]];
    for (const c of stream) {
      if (c.name === "info" && !c.lua) segments.push([]);
      else segments.at(-1)?.push(c);
    }

    // Batch i ran between readings i and i + 1, i.e. in MONITOR segment i + 1.
    const batch = (i: number): OpCommands => {
      const before = readings[i] as CommandCounters;
      const after = readings[i + 1] as CommandCounters;
      const seen = segments[i + 1] ?? [];
      const ran = commandsBetween(before, after);
      const byCommand = Object.fromEntries(Object.entries(ran.byCommand).map(([name, n]) => [name, per(n)]));
      const sent = seen.filter((c) => !c.lua).map((c) => c.name);
      return {
        executed: per(ran.executed),
        sent: per(sent.length),
        inScripts: per(seen.filter((c) => c.lua).length),
        byCommand,
        sentByCommand: tally(sent),
      };
    };
    return { rateLimit, ops: OPS, acquire: batch(0), status: batch(1), release: batch(2) };
  } finally {
    monitor.disconnect();
  }
}

// ---------------------------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------------------------

function startLss(redisUrl: string, adminToken: string, rateLimit: string, cleanup: Cleanup) {
  const profile = CPU_PROF && rateLimit === "off" ? ["--cpu-prof", `--cpu-prof-dir=${profileDir}`] : [];
  if (profile.length) mkdirSync(profileDir, { recursive: true });
  return startServer(
    {
      name: `lss (LSS_RATE_LIMIT=${rateLimit})`,
      redisUrl,
      adminToken,
      env: { LSS_RATE_LIMIT: rateLimit },
      nodeArgs: profile,
    },
    cleanup,
  );
}

const startPlain = (name: string, entry: string, redisUrl: string, cleanup: Cleanup) =>
  startService(
    {
      name,
      nodeArgs: ["--import", "tsx", entry],
      env: { REDIS_URL: redisUrl },
      cwd: rootDir,
      readyPath: "/health",
    },
    cleanup,
  );

// ---------------------------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------------------------

interface Report {
  machine: MachineInfo & {
    redis: string;
    connections: number;
    durationS: number;
    warmupS: number;
    rounds: number;
    note: string;
  };
  server: LoadResult;
  floor: LoadResult;
  ceiling: LoadResult;
  honoCeiling: LoadResult;
  /** server pairs/s ÷ floor pairs/s */
  ratio: number;
  /** server pairs/s ÷ ceiling pairs/s: what auth, validation, metrics and routing leave */
  ceilingRatio: number;
  /** Hono ceiling pairs/s ÷ ceiling pairs/s: what Hono and its Node adapter leave on their own */
  honoRatio: number;
  /** Each target's pairs/s in each round, in order. */
  pairsPerSecByRound: Record<string, number[]>;
  commands: {
    rateLimitOff: CommandCounts;
    rateLimitOn: CommandCounts;
    /** Per request, what LSS_RATE_LIMIT on adds: commands sent and executed. */
    rateLimiterPerRequest: Record<Op, { sent: number; executed: number }>;
  };
  warnings: string[];
}

const fmt = (n: number, digits = 2) => (Number.isFinite(n) ? n.toFixed(digits) : "n/a");
const pad = (s: string, width: number) => s.padEnd(width);
const list = (counts: Record<string, number>) =>
  Object.entries(counts)
    .map(([name, n]) => (n === 1 ? name : `${name}×${n}`))
    .join(" ");

function loadLines(r: LoadResult): string[] {
  const lat = (l: Latency) => `p50 ${fmt(l.p50)} ms   p99 ${fmt(l.p99)} ms   (${l.count} responses)`;
  const cpu = Object.entries(r.coresBusy)
    .map(([name, cores]) => `${name} ${cores == null ? "n/a" : fmt(cores)}`)
    .join(", ");
  const cpuPerPair = Object.entries(r.cpuPer1000Pairs)
    .map(([name, s]) => `${name} ${s == null ? "n/a" : fmt(s, 3)}`)
    .join(", ");
  return [
    `  ${pad("pairs/s", 18)}${fmt(r.pairsPerSec, 1)}   (${r.pairs} acquire+release pairs in ${r.durationS} s; ${fmt(r.requestsPerSec, 1)} req/s)`,
    `  ${pad("non-2xx", 18)}${r.non2xx}   errors ${r.errors}, timeouts ${r.timeouts}, skipped releases ${r.skippedReleases}   status codes ${JSON.stringify(r.statusCodes)}`,
    `  ${pad("latency all", 18)}${lat(r.latencyMs.all)}`,
    `  ${pad("  acquire", 18)}${lat(r.latencyMs.acquire)}`,
    `  ${pad("  release", 18)}${lat(r.latencyMs.release)}`,
    `  ${pad("cores busy", 18)}${cpu}; other processes ${r.otherProcessesCores ?? "n/a"}`,
    `  ${pad("CPU s/1000 pairs", 18)}${cpuPerPair}`,
  ];
}

function commandLines(c: CommandCounts): string[] {
  return [
    `  LSS_RATE_LIMIT=${c.rateLimit}`,
    ...OPS_IN_ORDER.map((op) => {
      const o = c[op];
      return `    ${pad(op, 9)}sent ${fmt(o.sent, 2)} (${list(o.sentByCommand)})   executed ${fmt(o.executed, 2)} = sent + ${fmt(o.inScripts, 2)} inside Lua (${list(o.byCommand)})`;
    }),
  ];
}

function render(r: Report): string {
  const m = r.machine;
  const { rateLimitOff: off, rateLimitOn: on, rateLimiterPerRequest: rl } = r.commands;
  return [
    "",
    "=== LSS benchmark ===",
    `machine   node ${m.node}, ${m.platform}, ${m.cores} cores (${m.cpuModel}), ${m.redis}`,
    `load      autocannon in-process, ${m.connections} connections, ${m.durationS} s per run after a ${m.warmupS} s warm-up (discarded); ${m.rounds} rounds in turn, each target's median`,
    `          ${m.note}`,
    "",
    `1. Lock server on Redis (${SERVER_ENTRY}, LSS_RATE_LIMIT=off): POST acquire → POST release per connection`,
    ...loadLines(r.server),
    "",
    "2. Floor (bench/floor.ts: bare node:http, one plain Redis command per request, same Redis, same load)",
    ...loadLines(r.floor),
    "",
    `   RATIO server/floor = ${fmt(r.ratio, 3)}`,
    "",
    "3. Ceiling (bench/ceiling/node-http.ts: bare node:http around the same lock engine and store, no app)",
    ...loadLines(r.ceiling),
    "",
    `   RATIO server/ceiling = ${fmt(r.ceilingRatio, 3)}`,
    "",
    "   Hono ceiling (bench/ceiling/hono.ts: bare Hono on @hono/node-server around the same engine, no app)",
    ...loadLines(r.honoCeiling),
    "",
    `   RATIO hono ceiling/ceiling = ${fmt(r.honoRatio, 3)}   server/hono ceiling = ${fmt(r.ceilingRatio / r.honoRatio, 3)}`,
    "",
    `4. Redis commands per operation, as Redis counts them (${off.ops} sequential requests per batch;`,
    "   INFO deltas minus our INFO; 'sent' = round trips, 'inside Lua' = run by the script, split with MONITOR)",
    ...commandLines(off),
    ...commandLines(on),
    "  per request:",
    ...OPS_IN_ORDER.map(
      (op) =>
        `    ${pad(op, 9)}lock operation: ${off[op].sent} command sent (${off[op].executed} executed); rate limiter: ${rl[op].sent} command sent (${rl[op].executed} executed)`,
    ),
    "",
    r.warnings.length ? `WARNINGS:\n${r.warnings.map((w) => `  - ${w}`).join("\n")}` : "warnings: none",
    `written to ${resultsFile}`,
    "",
  ].join("\n");
}

// ---------------------------------------------------------------------------------------------

benchMain("the load, the servers and redis-server", async (cleanup) => {
  const adminToken = randomBytes(16).toString("hex"); // 32 chars
  const { server: redis, client: info, version: redisVersion } = await startBenchRedis(cleanup);

  const run = async (target: string, service: Service, prefix: string) => {
    const watch = { [service.name]: service.pid, "redis-server": redis.pid };
    console.log(`${target}: warm-up ${WARMUP_S} s…`);
    await load(target, service.url, {
      durationS: WARMUP_S,
      connections: CONNECTIONS,
      keyPrefix: `${prefix}-warm`,
      adminToken,
      watch,
    });
    console.log(`${target}: measuring ${DURATION_S} s with ${CONNECTIONS} connections…`);
    return load(target, service.url, {
      durationS: DURATION_S,
      connections: CONNECTIONS,
      keyPrefix: prefix,
      adminToken,
      watch,
    });
  };

  // 1–3: the server, the floor and both ceilings, on the same Redis under the same load, in turns:
  // ROUNDS rounds of each, each target's median taken, so that a slow spell of a shared machine
  // weighs on all of them alike instead of on whichever ran then.
  const lss = await startLss(redis.url, adminToken, "off", cleanup);
  const targets: Array<[string, Service, string]> = [
    ["server", lss, "bench"],
    ["floor", await startPlain("floor", "bench/floor.ts", redis.url, cleanup), "floor"],
    ["ceiling", await startPlain("ceiling", "bench/ceiling/node-http.ts", redis.url, cleanup), "ceiling"],
    ["hono ceiling", await startPlain("hono ceiling", "bench/ceiling/hono.ts", redis.url, cleanup), "hono"],
  ];
  const rounds: LoadResult[][] = targets.map(() => []);
  for (let round = 1; round <= ROUNDS; round++) {
    console.log(`round ${round} of ${ROUNDS}`);
    // Each round starts with the next target, so that none always runs first (after the others' idle spell).
    for (let t = 0; t < targets.length; t++) {
      const i = (t + round - 1) % targets.length;
      const [name, service, prefix] = targets[i] as (typeof targets)[number];
      const result = await run(name, service, `${prefix}-${round}`);
      console.log(`  ${name}: ${fmt(result.pairsPerSec, 1)} pairs/s`);
      rounds[i]?.push(result);
    }
  }
  const median = (results: LoadResult[] = []) =>
    [...results].sort((a, b) => a.pairsPerSec - b.pairsPerSec)[Math.floor(results.length / 2)] as LoadResult;
  const [server, floor, ceiling, honoCeiling] = rounds.map(median) as [
    LoadResult,
    LoadResult,
    LoadResult,
    LoadResult,
  ];
  const perRound = Object.fromEntries(
    targets.map(([name], i) => [name, (rounds[i] ?? []).map((r) => r.pairsPerSec)]),
  );
  for (const [, service] of targets.slice(1)) await service.stop();

  // 4 (rate limit off): command counts, on the same server process.
  console.log("server: counting Redis commands (rate limit off)…");
  const rateLimitOff = await countCommands(lss.url, info, adminToken, "off");
  await lss.stop();

  // 4 (rate limit on): a second server process.
  const lssLimited = await startLss(redis.url, adminToken, RATE_LIMIT_ON, cleanup);
  console.log(`server: counting Redis commands (LSS_RATE_LIMIT=${RATE_LIMIT_ON})…`);
  const rateLimitOn = await countCommands(lssLimited.url, info, adminToken, RATE_LIMIT_ON);
  await lssLimited.stop();

  const diff = (a: number, b: number) => Math.round((a - b) * 1000) / 1000;
  const rateLimiterPerRequest = Object.fromEntries(
    OPS_IN_ORDER.map((op) => [
      op,
      {
        sent: diff(rateLimitOn[op].sent, rateLimitOff[op].sent),
        executed: diff(rateLimitOn[op].executed, rateLimitOff[op].executed),
      },
    ]),
  ) as Record<Op, { sent: number; executed: number }>;
  const warnings: string[] = [];
  for (const r of [server, floor, ceiling, honoCeiling]) {
    if ((r.otherProcessesCores ?? 0) > 0.2) {
      warnings.push(
        `${r.target}: other processes kept ${r.otherProcessesCores} cores busy during the run; its figures are skewed`,
      );
    }
    if (r.non2xx || r.errors || r.timeouts || r.skippedReleases) {
      warnings.push(
        `${r.target}: ${r.non2xx} non-2xx, ${r.errors} errors, ${r.timeouts} timeouts, ${r.skippedReleases} skipped releases; status codes ${JSON.stringify(r.statusCodes)}`,
      );
    }
  }
  const machine = machineInfo();
  const report: Report = {
    machine: {
      ...machine,
      redis: `redis-server ${redisVersion}`,
      connections: CONNECTIONS,
      durationS: DURATION_S,
      warmupS: WARMUP_S,
      rounds: ROUNDS,
      note: `load generator, server/floor and redis-server are separate processes sharing these ${machine.cores} cores`,
    },
    server,
    floor,
    ceiling,
    ratio: Math.round((server.pairsPerSec / floor.pairsPerSec) * 1000) / 1000,
    ceilingRatio: Math.round((server.pairsPerSec / ceiling.pairsPerSec) * 1000) / 1000,
    honoCeiling,
    honoRatio: Math.round((honoCeiling.pairsPerSec / ceiling.pairsPerSec) * 1000) / 1000,
    pairsPerSecByRound: perRound,
    commands: { rateLimitOff, rateLimitOn, rateLimiterPerRequest },
    warnings,
  };
  writeFileSync(resultsFile, `${JSON.stringify(report, null, 2)}\n`);
  console.log(render(report));
});
