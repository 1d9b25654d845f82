/**
 * Cloudflare Workers entry (wrangler.toml points here). Configuration comes from the Worker's
 * bindings (vars and secrets), so the app is built on the first request. Only the Upstash store
 * runs here: a Worker cannot keep a TCP Redis client, and shares no memory between isolates.
 * `scheduled` is the scheduler's tick (the GitHub App's and the notifications'), run by the Cron
 * Trigger wrangler.toml declares.
 */
import { Redis } from "@upstash/redis/cloudflare";
import type { ExecutionContext } from "hono";
import { createApp, tickOf } from "./app.js";
import { upstashBackend } from "./backend-upstash.js";
import { loadConfig } from "./config.js";
import { githubAppOf } from "./github/app.js";
import { createMetrics } from "./metrics.js";
import { notifierOf, slottedNotifier } from "./notify/notifier.js";
import { RUNTIMES } from "./runtime.js";
import { lazyFetch, stringBindings } from "./serverless.js";
import { upstashOptions } from "./stores/upstash.js";

interface Instance {
  app: ReturnType<typeof createApp>;
  /** The Cron Trigger's tick, scheduled at scheduledTime (ms). */
  tick: (scheduledTime: number) => Promise<number | null>;
}
let instance: Instance | undefined;

function build(env: Record<string, unknown>): Instance {
  const config = loadConfig(stringBindings(env), "workers");
  if (config.store.kind !== "upstash") throw new Error("unreachable: workers runs on upstash only");
  const { url, token } = config.store;
  // No auto-pipelining: it would batch commands of concurrent requests into one fetch, and a
  // Worker must not settle one request's promises from another request's I/O.
  const client = new Redis({
    ...upstashOptions(url, token, config.storeTimeoutMs),
    enableAutoPipelining: false,
  });
  const backend = upstashBackend(client, config.store, config);
  const metrics = config.metricsEnabled ? createMetrics() : undefined;
  const github = githubAppOf(config, backend.store, metrics);
  const notifier = notifierOf(config, backend.store, metrics);
  const app = createApp({
    ...backend,
    config,
    runtime: RUNTIMES.workers,
    metrics,
    github,
    notifier,
    log: console.log,
  });
  return { app, tick: (scheduledTime) => tickOf(github, slottedNotifier(notifier, scheduledTime))() };
}

export default {
  fetch: lazyFetch((env: Record<string, unknown>) => {
    instance ??= build(env);
    return instance.app;
  }),
  /** The Cron Trigger: the scheduler's tick (the App's, and the notifications'). */
  scheduled(event: { scheduledTime: number }, env: Record<string, unknown>, ctx: ExecutionContext) {
    try {
      instance ??= build(env);
    } catch (err) {
      console.error(`lss: configuration error: ${(err as Error).message}`);
      return;
    }
    ctx.waitUntil(instance.tick(event.scheduledTime));
  },
};
