/**
 * Starts a real, throw-away `redis-server` (v7) for tests: free port, no persistence, temp dir.
 *
 * Never touches 6379 and never relies on a Redis that happens to be running there, so suites can
 * run in parallel workers and on machines that have a system Redis.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, rmSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { createConnection } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { freePort } from "./ports.js";
import { killOnExit, onExit, sleep } from "./processes.js";

export interface RedisServerHandle {
  port: number;
  /** `redis://127.0.0.1:PORT` */
  url: string;
  /** pid of the running redis-server, undefined while it is killed or stopped. */
  pid(): number | undefined;
  /** SIGKILL (simulates a crash) and wait until the process is gone. */
  kill(): Promise<void>;
  /**
   * Start again on the SAME port and wait until it answers (an `INFO server` probe, which also
   * proves it is our process). Data is gone unless its arguments turned persistence on; `opts`
   * replaces how it runs (a failed primary back as a replica, say).
   */
  restart(opts?: RedisNodeOptions): Promise<void>;
  /** Graceful shutdown and temp dir cleanup. Idempotent, safe after kill(). */
  stop(): Promise<void>;
  /** SIGSTOP: connections stay open, commands are read by nobody (a hung Redis); resume() continues. */
  pause(): void;
  resume(): void;
}

const READY_TIMEOUT_MS = 10_000;
const START_ATTEMPTS = 5;

interface RedisProcess {
  child: ChildProcess;
  /** Resolves once the process has exited (or failed to spawn). */
  exited: Promise<void>;
  /** Recent stdout/stderr, for error messages. */
  output(): string;
}

/**
 * Raw-socket readiness probe (no client library with its own reconnect logic). It asks for
 * `INFO server` rather than PING so it can check `process_id`: if another process grabbed the port
 * (another worker's redis, say) we must not mistake its answer for ours.
 */
function answers(port: number, pid: number | undefined, timeoutMs = 250): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: "127.0.0.1", port });
    let reply = "";
    const finish = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => finish(false));
    socket.once("error", () => finish(false));
    socket.once("connect", () => socket.write("INFO server\r\n"));
    socket.on("data", (data) => {
      reply += data.toString();
      if (reply.startsWith("-")) return finish(false); // e.g. -LOADING
      const match = /process_id:(\d+)/.exec(reply);
      if (match) finish(Number(match[1]) === pid);
    });
  });
}

/** How a node runs beyond the defaults: more arguments (a replica, a cluster node), or as a sentinel. */
export interface RedisNodeOptions {
  /** Appended to the defaults (later arguments win: `--appendonly yes` overrides the default no). */
  args?: string[];
  /** Run as a sentinel, from this configuration (written to the node's dir; sentinels rewrite it). */
  sentinelConfig?: string;
}

function spawnRedis(port: number, dir: string, opts: RedisNodeOptions = {}): RedisProcess {
  const common = ["--port", String(port), "--bind", "127.0.0.1", "--daemonize", "no", "--dir", dir];
  let args: string[];
  if (opts.sentinelConfig !== undefined) {
    const file = join(dir, "sentinel.conf");
    if (!existsSync(file)) writeFileSync(file, opts.sentinelConfig);
    args = [file, "--sentinel", ...common, ...(opts.args ?? [])];
  } else {
    args = [...common, "--save", "", "--appendonly", "no", ...(opts.args ?? [])];
  }
  const child = spawn("redis-server", args, { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  const collect = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-8_000);
  };
  child.stdout?.on("data", collect);
  child.stderr?.on("data", collect);
  const exited = new Promise<void>((resolve) => {
    child.once("exit", () => resolve());
    child.once("error", (err) => {
      collect(Buffer.from(`spawn error: ${err.message}\n`));
      resolve();
    });
  });
  killOnExit(child);
  return { child, exited, output: () => output };
}

const isRunning = (child: ChildProcess) => child.exitCode === null && child.signalCode === null;

/** Spawn on `port` and wait until it answers; on failure, kill the child and report its output. */
async function launch(port: number, dir: string, opts?: RedisNodeOptions): Promise<RedisProcess> {
  const proc = spawnRedis(port, dir, opts);
  let died = false;
  void proc.exited.then(() => {
    died = true;
  });
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (await answers(port, proc.child.pid)) return proc;
    if (died) break; // e.g. "Address already in use" when another process grabbed the port
    await sleep(50);
  }
  proc.child.kill("SIGKILL");
  await proc.exited;
  const why = died ? `exited with code ${proc.child.exitCode}` : `no answer after ${READY_TIMEOUT_MS} ms`;
  throw new Error(`redis-server on port ${port} ${why}. Output:\n${proc.output()}`);
}

export async function startRedisServer(opts: RedisNodeOptions = {}): Promise<RedisServerHandle> {
  const dir = await mkdtemp(join(tmpdir(), "lss-redis-"));
  // Removed should the worker exit first (processes.ts); forgetDir() once it is removed here.
  const forgetDir = onExit(() => rmSync(dir, { recursive: true, force: true }));
  let proc: RedisProcess | undefined;
  let port = 0;
  let lastError: unknown;
  // The port is free when we probe it but another process may take it before redis binds: retry.
  for (let attempt = 0; attempt < START_ATTEMPTS && !proc; attempt++) {
    port = await freePort();
    if (port === 6379) continue;
    proc = await launch(port, dir, opts).catch((err: unknown) => {
      lastError = err;
      return undefined;
    });
  }
  if (!proc) {
    forgetDir();
    await rm(dir, { recursive: true, force: true });
    throw lastError ?? new Error("could not find a free port for redis-server");
  }

  let stopped = false;
  const kill = async () => {
    const current = proc;
    proc = undefined;
    if (!current) return;
    if (isRunning(current.child)) current.child.kill("SIGKILL");
    await current.exited;
  };

  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    pid: () => (proc && isRunning(proc.child) ? proc.child.pid : undefined),
    kill,
    pause() {
      if (proc && isRunning(proc.child)) proc.child.kill("SIGSTOP");
    },
    resume() {
      if (proc && isRunning(proc.child)) proc.child.kill("SIGCONT");
    },
    async restart(next?: RedisNodeOptions) {
      if (next) opts = next;
      if (stopped) throw new Error("redis-server handle was stopped; start a new one");
      await kill();
      // Same port is mandatory here (clients hold the URL). redis sets SO_REUSEADDR, so a few
      // attempts only cover the unlikely case of someone else binding it in the meantime.
      let error: unknown;
      for (let attempt = 0; attempt < 3; attempt++) {
        try {
          proc = await launch(port, dir, opts);
          return;
        } catch (err) {
          error = err;
          await sleep(200);
        }
      }
      throw error;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      const current = proc;
      proc = undefined;
      if (current && isRunning(current.child)) {
        current.child.kill("SIGCONT"); // a paused server would not hear SIGTERM
        current.child.kill("SIGTERM");
        const timer = setTimeout(() => current.child.kill("SIGKILL"), 5_000);
        await current.exited;
        clearTimeout(timer);
      }
      forgetDir();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * `total_commands_processed` from `INFO stats`, over a short-lived connection that sends nothing
 * but INFO (no ready check, no CLIENT SETINFO). Redis bumps the counter after a command has run,
 * so the INFO issued here is not part of the number it returns but IS part of the next one:
 * two back-to-back calls differ by exactly 1, and N commands in between give a difference of N + 1.
 * (The readiness probes of start/restart are INFO commands too; only compare counts taken after.)
 */
export async function commandCount(url: string): Promise<number> {
  const client = new Redis(url, {
    lazyConnect: true,
    enableReadyCheck: false,
    disableClientInfo: true,
    connectTimeout: 1_000,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  client.on("error", () => {}); // the rejected promise below carries the error
  try {
    await client.connect();
    const info = await client.info("stats");
    const match = /^total_commands_processed:(\d+)/m.exec(info);
    if (!match?.[1]) throw new Error(`total_commands_processed missing from INFO stats:\n${info}`);
    return Number(match[1]);
  } finally {
    client.disconnect();
  }
}
