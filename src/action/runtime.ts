/** The real dependencies of main and post: the runner (its protocol, see commands.ts), HTTP, processes. */
import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { LONG_POLL_MS } from "../client/wait.js";
import * as commands from "./commands.js";
import { cancellation, connect } from "./connect.js";
import type { Inputs } from "./inputs.js";
import type { ActionIO } from "./io.js";
import type { MainDeps } from "./main.js";
import type { PostDeps } from "./post.js";
import { type RenewerConfig, readStatusFile } from "./renewer.js";

export const actionIO: ActionIO = {
  info: commands.info,
  notice: commands.notice,
  warning: commands.warning,
  error: commands.error,
  setFailed: commands.setFailed,
  setOutput: commands.setOutput,
  saveState: commands.saveState,
  getState: commands.getState,
  setSecret: commands.setSecret,
  summary: async (markdown) => commands.appendSummary(markdown),
};

/** Every ID token is masked as soon as it is fetched, as @actions/core's getIDToken does. */
export const clientFor = (inputs: Pick<Inputs, "url" | "auth">) =>
  connect({
    url: inputs.url,
    auth: inputs.auth,
    onIdToken: commands.setSecret,
    onRetry: ({ attempt, delayMs, reason }) =>
      commands.info(`LSS: ${reason}; retry ${attempt} in ${(delayMs / 1000).toFixed(1)} s`),
  });

/**
 * What the renewer may see of this step's environment. Not the inputs (INPUT_TOKEN is the API
 * token) nor the runner's own secrets (ACTIONS_RUNTIME_TOKEN, the OIDC request token, which it gets
 * through its config file instead): it lives for the rest of the job, and a process's environment
 * is readable in /proc for as long.
 * RUNNER_TRACKING_ID is what lets the runner's end-of-job cleanup stop it even if post never runs.
 */
const RENEWER_ENV = new Set([
  ...["PATH", "HOME", "USER", "LANG", "LC_ALL", "TZ", "TMPDIR", "RUNNER_TEMP", "RUNNER_TRACKING_ID"],
  ...["HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy"],
  ...["NODE_EXTRA_CA_CERTS", "NODE_USE_ENV_PROXY", "SSL_CERT_FILE", "SSL_CERT_DIR"],
]);

export const renewerEnvironment = (env: NodeJS.ProcessEnv): NodeJS.ProcessEnv =>
  Object.fromEntries(Object.entries(env).filter(([name]) => RENEWER_ENV.has(name)));

/**
 * Detached, so it outlives this step. Its config (the API token, or the OIDC request token, in it)
 * goes through a file only its user can read, which it deletes once read; its bundle sits beside
 * main's.
 */
function startRenewer(config: RenewerConfig): number {
  const entry = join(dirname(process.argv[1] ?? "."), "..", "renew", "index.js");
  const dir = mkdtempSync(join(process.env.RUNNER_TEMP || tmpdir(), "lss-renewer-"));
  const configFile = join(dir, "config.json");
  writeFileSync(configFile, JSON.stringify(config), { mode: 0o600 });
  const child = spawn(process.execPath, [entry, configFile], {
    detached: true,
    stdio: "ignore",
    env: renewerEnvironment(process.env),
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
