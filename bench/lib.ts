/**
 * Process plumbing for the benchmarks: free ports, child processes that are always cleaned up,
 * readiness polling, a fresh redis-server and LSS servers on it, Ctrl-C handling, per-process CPU
 * time, and Redis INFO counters.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { availableParallelism, cpus } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Redis } from "ioredis";
import { freePort } from "../test/support/ports.js";
import { type RedisServerHandle, startRedisServer } from "../test/support/redis-server.js";

export { freePort };

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export const benchDir = dirname(fileURLToPath(import.meta.url));
export const rootDir = join(benchDir, "..");
/** BENCH_SERVER_ENTRY: the server the benchmarks start (point it at a modified copy to compare). */
export const SERVER_ENTRY = process.env.BENCH_SERVER_ENTRY || "server/node.ts";

/** n rounded to `digits` decimals. */
export const round = (n: number, digits = 2) => Math.round(n * 10 ** digits) / 10 ** digits;

// Safety net for crashes: 'exit' handlers must be synchronous, child.kill() is.
const liveChildren = new Set<ChildProcess>();
process.on("exit", () => {
  for (const child of liveChildren) child.kill("SIGKILL");
});

/** Cleanup steps run last-in first-out, once, whether the run succeeds, fails or is interrupted. */
export class Cleanup {
  private steps: Array<() => Promise<void>> = [];
  private running: Promise<void> | null = null;

  defer(step: () => Promise<void>): void {
    this.steps.push(step);
  }

  run(): Promise<void> {
    this.running ??= (async () => {
      for (const step of this.steps.reverse()) {
        await step().catch((err: unknown) => console.error("cleanup step failed:", err));
      }
      this.steps = [];
    })();
    return this.running;
  }
}

export interface Service {
  name: string;
  port: number;
  /** http://127.0.0.1:PORT */
  url: string;
  pid(): number | undefined;
  /** Recent stdout/stderr of the process. */
  output(): string;
  /** SIGTERM, then SIGKILL after 5 s. Idempotent. */
  stop(): Promise<void>;
}

export interface ServiceSpec {
  name: string;
  /** Arguments to `node` (this Node binary). */
  nodeArgs: string[];
  /** Extra environment, on top of a cleaned copy of ours. */
  env: Record<string, string>;
  cwd: string;
  /** Ready when GET this path answers 200. */
  readyPath: string;
  readyTimeoutMs?: number;
}

/** Our environment minus anything that would change how the server under test picks its store. */
function baseEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (value === undefined) continue;
    if (
      name.startsWith("LSS_") ||
      name.startsWith("UPSTASH_") ||
      name.startsWith("REDIS_") ||
      name === "PORT"
    ) {
      continue;
    }
    env[name] = value;
  }
  return env;
}

/** Start `node <nodeArgs>` with PORT=<free port> and wait until it answers GET readyPath with 200. */
export async function startService(spec: ServiceSpec, cleanup: Cleanup): Promise<Service> {
  let lastError: unknown;
  // The port may be taken between probing and binding: try a few.
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const child = spawn(process.execPath, spec.nodeArgs, {
      cwd: spec.cwd,
      env: { ...baseEnv(), ...spec.env, PORT: String(port) },
      stdio: ["ignore", "pipe", "pipe"],
    });
    liveChildren.add(child);
    let output = "";
    const collect = (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-8_000);
    };
    child.stdout?.on("data", collect);
    child.stderr?.on("data", collect);
    const exited = new Promise<void>((resolve) => {
      child.once("exit", () => {
        liveChildren.delete(child);
        resolve();
      });
      child.once("error", (err) => {
        collect(Buffer.from(`spawn error: ${err.message}\n`));
        liveChildren.delete(child);
        resolve();
      });
    });
    const running = () => child.exitCode === null && child.signalCode === null;
    let stopping: Promise<void> | null = null;
    const service: Service = {
      name: spec.name,
      port,
      url: `http://127.0.0.1:${port}`,
      pid: () => (running() ? child.pid : undefined),
      output: () => output,
      stop: () => {
        stopping ??= (async () => {
          if (running()) {
            child.kill("SIGTERM");
            const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
            await exited;
            clearTimeout(timer);
          }
        })();
        return stopping;
      },
    };
    cleanup.defer(service.stop);

    const deadline = Date.now() + (spec.readyTimeoutMs ?? 20_000);
    while (running() && Date.now() < deadline) {
      const ok = await fetch(`${service.url}${spec.readyPath}`, { signal: AbortSignal.timeout(1_000) }).then(
        (res) => res.status === 200,
        () => false,
      );
      if (ok) return service;
      await sleep(100);
    }
    await service.stop();
    lastError = new Error(
      `${spec.name} on port ${port} ${running() ? "never became ready" : `exited (${child.exitCode ?? child.signalCode})`}. Output:\n${output}`,
    );
  }
  throw lastError;
}

/** A server (SERVER_ENTRY, with tsx) on redis at redisUrl, ready once GET /health answers 200. */
export function startLss(
  spec: {
    name: string;
    /** REDIS_URL; null: the store is in env (REDIS_SENTINELS, REDIS_CLUSTER_NODES). */
    redisUrl: string | null;
    adminToken: string;
    /** LSS_* settings and the like. */
    env?: Record<string, string>;
    /** Arguments to node before the entry (--cpu-prof…). */
    nodeArgs?: string[];
  },
  cleanup: Cleanup,
): Promise<Service> {
  return startService(
    {
      name: spec.name,
      nodeArgs: [...(spec.nodeArgs ?? []), "--import", "tsx", SERVER_ENTRY],
      env: {
        ...(spec.redisUrl ? { REDIS_URL: spec.redisUrl } : {}),
        LSS_ADMIN_TOKEN: spec.adminToken,
        ...spec.env,
      },
      cwd: rootDir,
      readyPath: "/health",
    },
    cleanup,
  );
}

export interface BenchRedis {
  server: RedisServerHandle;
  /** A connection of the bench's own: each command fails rather than waits for a reconnect. */
  client: Redis;
  /** redis_version from INFO server. */
  version: string;
}

/** A fresh redis-server on a free port (no persistence) and a connection to it, both cleaned up. */
export async function startBenchRedis(cleanup: Cleanup): Promise<BenchRedis> {
  const server = await startRedisServer();
  cleanup.defer(() => server.stop());
  const client = new Redis(server.url, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  client.on("error", () => {}); // each command reports its own error
  await client.connect();
  cleanup.defer(async () => client.disconnect());
  const version = /^redis_version:(.+)$/m.exec(await client.info("server"))?.[1]?.trim() ?? "?";
  console.log(`redis-server ${version} on ${server.url}`);
  return { server, client, version };
}

/** The machine a report was taken on. */
export const machineInfo = () => ({
  node: process.version,
  platform: `${process.platform}/${process.arch}`,
  cpuModel: cpus()[0]?.model ?? "?",
  cores: availableParallelism(),
});

export type MachineInfo = ReturnType<typeof machineInfo>;

/** User + system CPU seconds a process has used so far (Linux /proc), or null where unavailable. */
export function cpuSeconds(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after "(comm)": state is field 3, utime field 14, stime field 15.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ticks = Number(fields[11]) + Number(fields[12]);
    return Number.isFinite(ticks) ? ticks / 100 : null; // USER_HZ is 100 on Linux
  } catch {
    return null;
  }
}

/** CPU seconds of this process (the load generator). */
export const ownCpuSeconds = () => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1e6;
};

export interface CommandCounters {
  /** `total_commands_processed`. */
  total: number;
  /** `INFO commandstats` calls per command name. */
  calls: Record<string, number>;
}

/**
 * Both counters from ONE `INFO stats commandstats` command. Redis counts a command after it has
 * run, so this INFO is not in the numbers it returns but is in the next reading's: between two
 * readings, `total` grows by (commands in between + 1) and `calls.info` by 1.
 */
export async function commandCounters(redis: Redis): Promise<CommandCounters> {
  const info = String(await redis.call("INFO", "stats", "commandstats"));
  const total = Number(/^total_commands_processed:(\d+)/m.exec(info)?.[1]);
  if (!Number.isFinite(total)) throw new Error("total_commands_processed missing from INFO stats");
  const calls: Record<string, number> = {};
  for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
    calls[match[1] ?? ""] = Number(match[2]);
  }
  return { total, calls };
}

/**
 * What Redis ran between two readings: `executed` (total_commands_processed growth) and the calls
 * per command, less the INFO that took `before` (counted in `after`) and the commands in `own`
 * that the bench itself sent in between.
 */
export function commandsBetween(
  before: CommandCounters,
  after: CommandCounters,
  own: Record<string, number> = {},
): { executed: number; byCommand: Record<string, number> } {
  const mine: Record<string, number> = { ...own, info: (own.info ?? 0) + 1 };
  const byCommand: Record<string, number> = {};
  for (const [name, calls] of Object.entries(after.calls)) {
    const grown = calls - (before.calls[name] ?? 0) - (mine[name] ?? 0);
    if (grown > 0) byCommand[name] = grown;
  }
  const ownTotal = Object.values(mine).reduce((a, b) => a + b, 0);
  return { executed: after.total - before.total - ownTotal, byCommand };
}

/** Percentile (nearest rank) of unsorted values; NaN for none. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] ?? Number.NaN;
}

/** CPU seconds all processes on the machine have been busy so far (Linux /proc/stat), or null. */
export function machineBusySeconds(): number | null {
  try {
    const line = readFileSync("/proc/stat", "utf8").split("\n")[0] ?? "";
    // cpu user nice system idle iowait irq softirq steal …
    const [user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number);
    const ticks = [user, nice, system, irq, softirq, steal].reduce<number>((sum, t) => sum + (t ?? 0), 0);
    return Number.isFinite(ticks) ? ticks / 100 : null;
  } catch {
    return null;
  }
}

/**
 * Wait (at most maxWaitMs) for a second in which the whole machine keeps fewer than `cores` cores
 * busy, so that a run does not start in the middle of someone else's burst. Returns the cores busy
 * in the last second measured (null where /proc is unavailable).
 */
export async function waitForQuiet(cores: number, maxWaitMs: number): Promise<number | null> {
  const deadline = Date.now() + maxWaitMs;
  for (;;) {
    const before = machineBusySeconds();
    await sleep(1_000);
    const after = machineBusySeconds();
    if (before == null || after == null) return null;
    const busy = after - before;
    if (busy < cores || Date.now() >= deadline) return Math.round(busy * 100) / 100;
  }
}

let interruptedFlag = false;
const onInterrupt: Array<() => void> = [];

/** Whether Ctrl-C / SIGTERM stopped the run (benchMain's): a long step checks it and gives up. */
export const interrupted = () => interruptedFlag;

/** What to stop at once on Ctrl-C, before the cleanup runs (a load generator, say). */
export function whenInterrupted(stop: () => void): void {
  onInterrupt.push(stop);
}

/**
 * Runs a benchmark: main gets a Cleanup that runs once it is done, once it fails, or on Ctrl-C /
 * SIGTERM (then `interrupted()` turns true and the process exits 130 after the cleanup). `stopping`
 * names what an interruption stops, for its message.
 */
export function benchMain(stopping: string, main: (cleanup: Cleanup) => Promise<void>) {
  const cleanup = new Cleanup();
  // `on`, not `once`: tsx relays the signal, and a second one must not kill us before cleanup is done.
  const onSignal = () => {
    if (interruptedFlag) return;
    interruptedFlag = true;
    console.error(`\ninterrupted: stopping ${stopping}…`);
    for (const stop of onInterrupt) stop();
    void cleanup.run().finally(() => process.exit(130));
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  runBench(async () => {
    try {
      await main(cleanup);
    } finally {
      await cleanup.run();
    }
  }, interrupted);
}

/** Runs a benchmark's main and exits: 0 when done, 1 on failure; after Ctrl-C the signal handler exits. */
export function runBench(main: () => Promise<void>, interrupted: () => boolean) {
  main().then(
    () => {
      if (!interrupted()) process.exit(0);
    },
    (err: unknown) => {
      if (interrupted()) return; // the signal handler exits once cleanup is done
      console.error("bench failed:", err);
      process.exit(1);
    },
  );
}
