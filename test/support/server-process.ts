/**
 * The server as each runtime runs it, as a process of its own, waiting until it serves:
 * - node: `server/node.ts`, as `npm start` does;
 * - vercel: the function `api/index.ts` behind @vercel/node's dev-server, the bridge `vercel dev`
 *   runs (it loads the module and calls it as Vercel's Node.js runtime does);
 * - workers: `server/workers.ts` in workerd, through `wrangler dev` (wrangler.toml).
 */

import { spawn } from "node:child_process";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { findNode24 } from "../../scripts/node24.mjs";
import { freePort } from "./ports.js";
import { killOnExit, sleep } from "./processes.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

export { freePort };

export type RuntimeKind = "node" | "vercel" | "workers";

export interface ServerProcess {
  url: string;
  /** The process's pid (for workers: wrangler's). */
  pid(): number;
  output(): string;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/** wrangler needs Node 22.12+: the Node 24 the action's tests run (scripts/node24.mjs). */
const modernNode = () => findNode24() ?? process.execPath;

function command(kind: RuntimeKind, port: number, env: Record<string, string>): [string, string[]] {
  switch (kind) {
    case "node":
      return [process.execPath, ["--import", "tsx", "server/node.ts"]];
    case "vercel":
      return [process.execPath, ["--import", "tsx", "node_modules/@vercel/node/dist/dev-server.mjs"]];
    case "workers":
      return [
        modernNode(),
        [
          "node_modules/wrangler/bin/wrangler.js",
          "dev",
          "--port",
          String(port),
          "--ip",
          "127.0.0.1",
          // Each wrangler gets its own inspector port (default 9229 would collide).
          "--inspector-port",
          "0",
          "--log-level",
          "warn",
          // GET /__scheduled runs the Worker's Cron Trigger handler, as Cloudflare's scheduler does.
          "--test-scheduled",
          ...Object.entries(env).flatMap(([name, value]) => ["--var", `${name}:${value}`]),
        ],
      ];
  }
}

/** The one function vercel.json declares: what the deploy button's project runs. */
export function vercelFunction(): string {
  const config = JSON.parse(readFileSync(`${ROOT}vercel.json`, "utf8")) as {
    functions: Record<string, unknown>;
  };
  const [entry, ...others] = Object.keys(config.functions);
  if (!entry || others.length) throw new Error("vercel.json must declare exactly one function");
  return entry;
}

/** How each runtime is told its port, and what must not leak into it from the test's environment. */
function environment(kind: RuntimeKind, port: number, env: Record<string, string>) {
  const base = { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp" };
  switch (kind) {
    case "node":
      return { ...base, ...env, PORT: String(port) };
    case "vercel":
      return { ...base, ...env, VERCEL_DEV_ENTRYPOINT: vercelFunction(), VERCEL_DEV_PORT: String(port) };
    case "workers":
      // Vars go on the command line; the environment only quiets wrangler.
      return { ...base, WRANGLER_SEND_METRICS: "false", CI: "true", NO_COLOR: "1" };
  }
}

/** `env` may be made from the URL the server will serve at (e.g. for LSS_PUBLIC_URL). */
export async function startServerProcess(
  envOrMake: Record<string, string> | ((url: string) => Record<string, string>),
  kind: RuntimeKind = "node",
): Promise<ServerProcess> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const env = typeof envOrMake === "function" ? envOrMake(url) : envOrMake;
  const [file, args] = command(kind, port, env);
  const child = spawn(file, args, {
    cwd: ROOT,
    env: environment(kind, port, env),
    stdio: ["ignore", "pipe", "pipe"],
    // wrangler starts workerd as a child of its own: stop the whole group.
    detached: kind === "workers",
  });
  killOnExit(child);
  let output = "";
  child.stdout?.on("data", (d) => (output += d));
  child.stderr?.on("data", (d) => (output += d));
  const exited = once(child, "exit");

  const signalAll = (signal: NodeJS.Signals) => {
    try {
      if (kind === "workers" && child.pid) process.kill(-child.pid, signal);
      else child.kill(signal);
    } catch {
      // already gone
    }
  };

  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${kind} server exited early:\n${output}`);
    // Any answer of the app will do (a misconfigured one answers 500 with a JSON error); the Vercel
    // bridge answers "Bridge is not ready" until the function is loaded.
    const up = await fetch(`${url}/`).then(
      async (r) => !(await r.text()).startsWith("Bridge is not ready"),
      () => false,
    );
    if (up) break;
    if (Date.now() > deadline) {
      signalAll("SIGKILL");
      throw new Error(`${kind} server did not start within 30 s:\n${output}`);
    }
    await sleep(100);
  }

  return {
    url,
    pid: () => child.pid ?? 0,
    output: () => output,
    async kill(signal = "SIGKILL") {
      if (child.exitCode !== null || child.signalCode !== null) return;
      signalAll(signal);
      await exited;
    },
  };
}
