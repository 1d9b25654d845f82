/**
 * Cloudflare Workers entry (wrangler.toml points here). Configuration comes from the Worker's
 * bindings (vars and secrets), so the app is built on the first request. Only the Upstash store
 * runs here: a Worker cannot keep a TCP Redis client, and shares no memory between isolates.
 */
import { Redis } from "@upstash/redis/cloudflare";
import { createApp } from "./app.js";
import { upstashBackend } from "./backend-upstash.js";
import { loadConfig } from "./config.js";
import { RUNTIMES } from "./runtime.js";
import { lazyFetch, stringBindings } from "./serverless.js";
import { upstashOptions } from "./stores/upstash.js";

export default {
  fetch: lazyFetch((env: Record<string, unknown>) => {
    const config = loadConfig(stringBindings(env), "workers");
    if (config.store.kind !== "upstash") throw new Error("unreachable: workers runs on upstash only");
    const { url, token } = config.store;
    // No auto-pipelining: it would batch commands of concurrent requests into one fetch, and a
    // Worker must not settle one request's promises from another request's I/O.
    const client = new Redis({
      ...upstashOptions(url, token, config.storeTimeoutMs),
      enableAutoPipelining: false,
    });
    return createApp({ ...upstashBackend(client, config.store, config), config, runtime: RUNTIMES.workers });
  }),
};
