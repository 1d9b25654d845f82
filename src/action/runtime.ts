/** The real dependencies of main, post and the renewer: the runner (via @actions/core), HTTP, processes. */
import { spawn } from "node:child_process";
import { dirname, join } from "node:path";
import * as core from "@actions/core";
import { createClient } from "../client/client.js";
import { LONG_POLL_MS } from "../client/wait.js";
import type { Inputs } from "./inputs.js";
import type { ActionIO } from "./io.js";
import type { MainDeps } from "./main.js";
import { RENEWER_CONFIG_ENV } from "./names.js";
import type { PostDeps } from "./post.js";
import { type RenewerConfig, readStatusFile } from "./renewer.js";

export const actionIO: ActionIO = {
  info: core.info,
  warning: (m) => core.warning(m),
  error: (m) => core.error(m),
  setFailed: core.setFailed,
  setOutput: core.setOutput,
  saveState: core.saveState,
  getState: core.getState,
  setSecret: core.setSecret,
  summary: async (markdown) => {
    // Outside a runner (no GITHUB_STEP_SUMMARY) there is nowhere to write it.
    if (process.env.GITHUB_STEP_SUMMARY) await core.summary.addRaw(markdown).write();
  },
};

export const clientFor = (inputs: Pick<Inputs, "url" | "apiToken">) =>
  createClient({
    url: inputs.url,
    token: inputs.apiToken ?? undefined,
    userAgent: "lss-action",
    onRetry: ({ attempt, delayMs, reason }) =>
      core.info(`LSS: ${reason}; retry ${attempt} in ${(delayMs / 1000).toFixed(1)} s`),
  });

/** Aborted when the runner cancels the step (SIGINT, then SIGTERM 7.5 s later). */
export function cancellation(): AbortSignal {
  const controller = new AbortController();
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => controller.abort(new Error(`received ${signal}`)));
  }
  return controller.signal;
}

/**
 * Detached, so it outlives this step; it inherits RUNNER_TRACKING_ID with the environment, so the
 * runner's end-of-job cleanup stops it even if post never runs. Its bundle sits beside main's.
 */
function startRenewer(config: RenewerConfig): number {
  const entry = join(dirname(process.argv[1] ?? "."), "..", "renew", "index.js");
  const child = spawn(process.execPath, [entry], {
    detached: true,
    stdio: "ignore",
    env: { ...process.env, [RENEWER_CONFIG_ENV]: JSON.stringify(config) },
  });
  child.unref();
  if (!child.pid) throw new Error("could not start the lease renewer");
  return child.pid;
}

async function stopRenewer(pid: number) {
  try {
    process.kill(pid, "SIGTERM");
  } catch {
    return; // already gone
  }
  // Wait for it to go, so that it cannot renew after the release.
  for (let i = 0; i < 50; i++) {
    await new Promise((r) => setTimeout(r, 100));
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
  }
  process.kill(pid, "SIGKILL");
}

export const mainDeps = (): MainDeps => ({
  env: process.env,
  io: actionIO,
  client: clientFor,
  startRenewer,
  signal: cancellation(),
  heartbeatMs: 15_000,
  longPollMs: LONG_POLL_MS,
});

export const postDeps = (): PostDeps => ({
  env: process.env,
  io: actionIO,
  client: clientFor,
  stopRenewer,
  readRenewerStatus: readStatusFile,
});
