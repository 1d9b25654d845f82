/**
 * `npm run bench:cpu`: CPU time per lock operation, the figure to hold against Workers' CPU limit
 * (10 ms a request on the free plan) and Vercel's active-CPU billing. One run, one redis-server:
 *
 *   - Node (server/node.ts) on TCP Redis and on Upstash (the REST bridge, the real @upstash/redis);
 *   - workerd (server/workers.ts under `wrangler dev`, Node 24) on Upstash.
 *
 * For each: OPS sequential acquire → renew → release cycles on their own keys (the action's three
 * requests) after a warm-up, and the server's CPU seconds (user + system, /proc) over them, less
 * what it spends idle for as long. For workerd, the CPU of workerd alone (wrangler's own Node
 * process is not the Worker). An operation here is one request; the bench's own load generator,
 * the bridge and Redis are other processes.
 *
 * Prints a table and writes bench/cpu-results.json. Knobs: BENCH_CPU_OPS (500 cycles).
 */
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { startServerProcess } from "../test/support/server-process.js";
import { startUpstashBridge } from "../test/support/upstash-bridge.js";
import { benchDir, benchMain, cpuSeconds, machineInfo, round, sleep, startBenchRedis } from "./lib.js";

const ADMIN = "bench-admin-token-0123456789";
const CYCLES = Number(process.env.BENCH_CPU_OPS) || 500;
const WARMUP = 200;
/** The idle spell before each measurement, whose CPU rate is subtracted. */
const IDLE_MS = 5000;

async function call(base: string, path: string, payload: unknown) {
  const res = await fetch(`${base}${path}`, {
    method: "POST",
    headers: { Authorization: `Bearer ${ADMIN}`, "Content-Type": "application/json" },
    body: JSON.stringify(payload),
  });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`${path}: ${res.status} ${text}`);
  return text;
}

async function cycle(base: string, key: string) {
  await call(base, `/infra/locks/${key}/acquire`, { ttl_ms: 60_000, token: `t-${key}` });
  await call(base, `/infra/locks/${key}/renew`, { ttl_ms: 60_000, token: `t-${key}` });
  await call(base, `/infra/locks/${key}/release`, { token: `t-${key}` });
}

/**
 * CPU seconds of pids over `run`, less what they spend idle for as long, measured just before (after
 * would count the load's own tail: its garbage collection, its background work).
 */
async function cpuOver(pids: number[], run: () => Promise<void>, idleMs: number) {
  const idleBefore = cpuOf(pids);
  await sleep(idleMs);
  const idlePerMs = (cpuOf(pids) - idleBefore) / idleMs;
  const start = performance.now();
  const before = cpuOf(pids);
  await run();
  const elapsedMs = performance.now() - start;
  return { cpu: cpuOf(pids) - before - idlePerMs * elapsedMs, elapsedMs };
}

/** The pids whose CPU is the server's: for wrangler, its workerd children (the Worker's runtime). */
function serverPids(kind: "node" | "workers", pid: number): number[] {
  if (kind === "node") return [pid];
  const out = execFileSync("ps", ["-e", "-o", "pid=,pgid=,comm="], { encoding: "utf8" });
  return out
    .split("\n")
    .map((line) => line.trim().split(/\s+/))
    .filter(([, pgid, comm]) => Number(pgid) === pid && comm === "workerd")
    .map(([p]) => Number(p));
}

const cpuOf = (pids: number[]) => pids.reduce((sum, p) => sum + (cpuSeconds(p) ?? Number.NaN), 0);

async function measure(kind: "node" | "workers", store: string, env: Record<string, string>) {
  const server = await startServerProcess(
    {
      LSS_ADMIN_TOKEN: ADMIN,
      LSS_KEY_PREFIX: `cpu-${kind}-${store.replace(/\W/g, "")}`,
      // On, as by default, but never reached by this sequential load.
      LSS_RATE_LIMIT: "1000000",
      ...env,
    },
    kind,
  );
  try {
    for (let i = 0; i < WARMUP; i++) await cycle(server.url, `warm-${i}`);
    const pids = serverPids(kind, server.pid());
    if (pids.length === 0) throw new Error(`${kind}: no server process found`);
    const requests = CYCLES * 3;
    const ops = await cpuOver(
      pids,
      async () => {
        for (let i = 0; i < CYCLES; i++) await cycle(server.url, `k-${i}`);
      },
      IDLE_MS,
    );
    // A request that reaches no store (GET /: the index, through the same middleware): what the
    // runtime and the HTTP layers cost any request, so that the difference is the lock operation's.
    const plain = await cpuOver(
      pids,
      async () => {
        for (let i = 0; i < requests; i++) await (await fetch(`${server.url}/`)).text();
      },
      IDLE_MS,
    );
    const perRequest = (cpu: number) => round((cpu * 1000) / requests, 3);
    const result = {
      runtime: kind === "node" ? `Node ${process.version}` : "workerd (wrangler dev)",
      store,
      requests,
      cpuMsPerRequest: perRequest(ops.cpu),
      cpuMsPerPlainRequest: perRequest(plain.cpu),
      cpuMsOfTheLockOperation: perRequest(ops.cpu - plain.cpu),
      msPerRequest: round(ops.elapsedMs / requests, 2),
    };
    console.log(
      `  ${result.runtime} on ${store}: ${result.cpuMsPerRequest} ms CPU per lock request, ${result.cpuMsPerPlainRequest} per plain request (${result.msPerRequest} ms each, wall)`,
    );
    return result;
  } finally {
    await server.kill("SIGTERM");
  }
}

benchMain("the servers and redis-server", async (cleanup) => {
  const redis = await startBenchRedis(cleanup);
  const bridge = await startUpstashBridge({ redisUrl: redis.server.url });
  cleanup.defer(() => bridge.close());
  const upstash = { UPSTASH_REDIS_REST_URL: bridge.url, UPSTASH_REDIS_REST_TOKEN: bridge.token };
  console.log(`${CYCLES} acquire → renew → release cycles per server, ${WARMUP} to warm up:`);
  const results = [
    await measure("node", "TCP Redis", { REDIS_URL: redis.server.url }),
    await measure("node", "Upstash", upstash),
    await measure("workers", "Upstash", upstash),
  ];
  console.log(
    "\n| runtime | store | CPU per lock request | a plain request | the lock operation's own | wall per request (sequential) |\n| --- | --- | --- | --- | --- | --- |",
  );
  for (const r of results) {
    const ms = [r.cpuMsPerRequest, r.cpuMsPerPlainRequest, r.cpuMsOfTheLockOperation, r.msPerRequest];
    console.log(`| ${r.runtime} | ${r.store} | ${ms.map((n) => `${n} ms`).join(" | ")} |`);
  }
  writeFileSync(
    join(benchDir, "cpu-results.json"),
    `${JSON.stringify({ machine: machineInfo(), cycles: CYCLES, results }, null, 2)}\n`,
  );
  console.log("\nwritten to bench/cpu-results.json");
});
