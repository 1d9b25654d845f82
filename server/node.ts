/** Node entry point: `npm start`. */
import { readFileSync } from "node:fs";
import { serve } from "@hono/node-server";
import { createApp } from "./app.js";
import { openBackend } from "./backend.js";
import { ConfigError, loadConfig } from "./config.js";
import { githubAppOf } from "./github/app.js";
import { createMetrics } from "./metrics.js";
import { NOTIFY_TICK_MS, notifierOf, tickEvery } from "./notify/notifier.js";
import { announce, withTryOutAdminToken } from "./startup.js";
import { StoreUnavailableError } from "./stores/types.js";

/** Read first: the parent may end while the store is first asked (see the watch below). */
const STARTED_BY = process.ppid;

/** A configuration mistake ends the process with one line naming the variable, not a stack trace. */
function exitMisconfigured(message: string): never {
  console.error(`lss: configuration error: ${message}`);
  process.exit(1);
}

let loaded: ReturnType<typeof loadConfig>;
try {
  loaded = loadConfig(process.env, "node", (path) => readFileSync(path, "utf8"));
} catch (err) {
  if (err instanceof ConfigError) exitMisconfigured(err.message);
  throw err;
}
const { config, generated } = withTryOutAdminToken(loaded);
const backend = openBackend(config);
// Give the store its first connection before taking requests. Serve anyway (as 503s) if it does
// not answer yet; but a store that refuses our credentials will not change its mind.
await backend.store.ping().catch((err) => {
  if (err instanceof StoreUnavailableError && err.hint?.kind === "refused")
    exitMisconfigured(err.hint.message);
  console.error(
    `store not reachable yet: ${err instanceof StoreUnavailableError && err.hint ? err.hint.message : err.message}`,
  );
});
// A Redis that may evict lock records gets lock operations refused (503) until it is fixed: say so now.
const safety = await backend.store.safety().catch(() => null);
if (safety?.problem)
  console.error(`${safety.safe ? "warning" : "lss: lock operations refused"}: ${safety.problem}`);
// prom-client's process metrics (CPU, memory, event loop, GC) join this process's /metrics.
const metrics = config.metricsEnabled ? createMetrics({ processMetrics: true }) : undefined;
// The GitHub App: each instance follows the keys its gates and freezes wait on, and ticks.
const following = new AbortController();
const github = githubAppOf(config, backend.store, metrics);
if (github && config.github) void github.follow(following.signal, config.github.tickMs);
// Notifications: their time-based events and retries, every tick (sooner when a retry is due).
const notifier = notifierOf(config, backend.store, metrics);
void tickEvery(notifier.tick, following.signal, config.github?.tickMs ?? NOTIFY_TICK_MS);
const server = serve(
  {
    fetch: createApp({ ...backend, config, metrics, github, notifier, log: console.log }).fetch,
    port: config.port,
  },
  (info) => announce(config, info.port, generated),
);
let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  following.abort();
  server.close(() => backend.store.close().finally(() => process.exit(0)));
};
process.once("SIGINT", stop);
process.once("SIGTERM", stop);
// Under `npm start`, npm → sh → this process: stopping npm ends the shell but signals no further.
// Its end is this process's cue (it is then another's child), so that no server is left on the port.
// (On Linux and macOS: Windows keeps an orphan's parent id.)
if (process.env.npm_lifecycle_event === "start") {
  setInterval(() => process.ppid !== STARTED_BY && stop(), 500).unref();
}
