/**
 * `npm run bench:action`: the action's bundle sizes (the entry, and the whole folder with the chunks
 * it may load later), and the wall time of an uncontended acquire by
 * dist/main (as the runner starts it: node24, a fresh process) against a bare node24 process doing
 * the same single HTTP request. Same server (on a fresh redis-server), alternating runs.
 */
import { spawn } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { startRedisServer } from "../test/support/redis-server.js";
import { actionInputDefaults, Job, NODE24 } from "../test/support/runner.js";
import { startServerProcess } from "../test/support/server-process.js";

const RUNS = Number(process.env.BENCH_ACTION_RUNS) || 30;
const ADMIN = "bench-admin-token-0123456789abcdef";

const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
};

function timeProcess(args: string[], env: Record<string, string>): Promise<number> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(NODE24, args, { env: { PATH: process.env.PATH ?? "", ...env }, stdio: "ignore" });
    child.on("error", reject);
    child.on("exit", (code) =>
      code === 0 ? resolve(performance.now() - started) : reject(new Error(`exit ${code}`)),
    );
  });
}

async function main() {
  // The entry a step loads first, and with it every chunk it may load later (import()).
  const sizes = ["main", "post", "renew"].map((b) => ({
    bundle: `dist/${b}/index.js`,
    bytes: statSync(`dist/${b}/index.js`).size,
    total: readdirSync(`dist/${b}`)
      .filter((f) => f.endsWith(".js"))
      .reduce((sum, f) => sum + statSync(`dist/${b}/${f}`).size, 0),
  }));
  const redis = await startRedisServer();
  const server = await startServerProcess({
    REDIS_URL: redis.url,
    LSS_ADMIN_TOKEN: ADMIN,
    LSS_RATE_LIMIT: "off",
  });
  const action: number[] = [];
  const bare: number[] = [];
  try {
    // One POST acquire, as the action's main makes: a unique key, so it is always uncontended.
    const bareScript = `
      const r = await fetch(process.env.URL, { method: "POST",
        headers: { Authorization: "Bearer ${ADMIN}", "Content-Type": "application/json" },
        body: JSON.stringify({ ttl_ms: 60000, holder_id: "bare", token: crypto.randomUUID() }) });
      if (r.status !== 200) process.exit(1);`;
    for (let i = 0; i < RUNS + 2; i++) {
      const key = `bench-${i}`;
      const bareMs = await timeProcess(["--input-type=module", "-e", bareScript], {
        URL: `${server.url}/infra/locks/bare-${key}/acquire`,
      });
      const job = new Job({ inputDefaults: actionInputDefaults() });
      const inputs = { mode: "acquire", url: server.url, token: ADMIN, key, "release-at-end": "true" };
      const started = performance.now();
      const result = await job.step("dist/main/index.js", { inputs });
      const actionMs = performance.now() - started;
      if (result.exitCode !== 0 || result.outputs.acquired !== "true")
        throw new Error(`acquire failed: ${result.stdout}`);
      await job.step("dist/post/index.js", { inputs, stateScope: "default" });
      await job.cleanup();
      if (i >= 2) {
        action.push(actionMs);
        bare.push(bareMs);
      }
    }
  } finally {
    await server.kill();
    await redis.stop();
  }
  const median = (v: number[]) => percentile(v, 50);
  const report = [
    `${NODE24}, ${RUNS} runs each, alternating, after 2 warm-up runs; the action's time includes the runner`,
    "emulation's file set-up and starting the detached renewer",
    "bundles:",
    ...sizes.map(
      (s) =>
        `  ${s.bundle.padEnd(20)} ${(s.bytes / 1024).toFixed(1)} KiB (with the chunks it loads on demand ${(s.total / 1024).toFixed(1)} KiB)`,
    ),
    "uncontended acquire, process start to exit:",
    `  dist/main (acquire + start renewer)  p50 ${median(action).toFixed(1)} ms   p90 ${percentile(action, 90).toFixed(1)} ms`,
    `  bare node24 + one fetch             p50 ${median(bare).toFixed(1)} ms   p90 ${percentile(bare, 90).toFixed(1)} ms`,
    `  ratio (p50)                          ${(median(action) / median(bare)).toFixed(2)}`,
  ];
  console.log(report.join("\n"));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
