/** A real LSS server (in-process, on a real redis-server) and helpers to run the action's dist/ against it. */
import { serve } from "@hono/node-server";
import { createApp } from "../../server/app.js";
import type { HistoryResponse, StatusResponse } from "../../src/protocol/lease.js";
import { pathTo } from "../../src/protocol/paths.js";
import { actionInputDefaults, Job } from "./runner.js";
import { freePort } from "./server-process.js";
import { ADMIN_TOKEN, type StoreBackends, startBackends, testConfig } from "./stores.js";

export const MAIN = "dist/main/index.js";
export const POST = "dist/post/index.js";

export interface LiveServer {
  url: string;
  backends: StoreBackends;
  /** Lease API status of a key, as the admin sees it. */
  status(key: string): Promise<StatusResponse>;
  /** Its history, as the admin sees it. */
  history(key: string): Promise<HistoryResponse>;
  close(): Promise<void>;
}

export async function startLiveServer(): Promise<LiveServer> {
  const backends = await startBackends(["redis"]);
  const app = createApp({ store: backends.open("redis"), rateLimiter: null, config: testConfig() });
  const port = await freePort();
  const server = serve({ fetch: app.fetch, port, hostname: "127.0.0.1" });
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    backends,
    async status(key) {
      const res = await fetch(`${url}${pathTo("status", { key })}`, {
        headers: { Authorization: `Bearer ${ADMIN_TOKEN}` },
      });
      return (await res.json()) as StatusResponse;
    },
    async history(key) {
      const res = await fetch(`${url}${pathTo("history", { key })}`, {
        headers: { Authorization: `Bearer ${ADMIN_TOKEN}` },
      });
      return (await res.json()) as HistoryResponse;
    },
    async close() {
      await new Promise((r) => server.close(r));
      await backends.close();
    },
  };
}

/**
 * A job whose steps get the action.yml defaults, as the runner passes them; with `idToken` (e.g. an
 * OIDC issuer's runnerEnv()) it is a job with `permissions: id-token: write`.
 */
export const newJob = (
  repository = "octo/app",
  workflow = "E2E",
  opts: { idToken?: Record<string, string> } = {},
) =>
  new Job({
    inputDefaults: actionInputDefaults(),
    env: { GITHUB_REPOSITORY: repository, GITHUB_WORKFLOW: workflow },
    idToken: opts.idToken,
  });

/** The inputs every step of a test shares: server, API token, key. */
export const base = (server: LiveServer, key: string, extra: Record<string, string> = {}) => ({
  url: server.url,
  token: ADMIN_TOKEN,
  key,
  ...extra,
});

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function until(check: () => Promise<boolean>, timeoutMs: number, what: string) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await sleep(100);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}
