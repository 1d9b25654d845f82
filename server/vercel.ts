/**
 * Vercel (Node.js runtime) entry. Vercel's bridge hands a web Request only to a module whose default
 * export has `fetch` (a default-exported function gets Node's req/res instead), so this exports
 * `{ fetch }`. Module scope survives between invocations of a warm instance, so the store client is
 * reused. Served at / (vercel.json rewrites every path to /api) and at /api. The GitHub App's tick
 * is GET /api/tick (or /api/github/tick), which a Vercel Cron calls with CRON_SECRET.
 */
import { Hono } from "hono";
import { createApp, noRoute } from "./app.js";
import { openBackend } from "./backend.js";
import { loadConfig } from "./config.js";
import { githubAppOf } from "./github/app.js";
import { createMetrics } from "./metrics.js";
import { notifierOf } from "./notify/notifier.js";
import { RUNTIMES } from "./runtime.js";
import { lazyFetch } from "./serverless.js";

export default {
  fetch: lazyFetch(() => {
    const config = loadConfig(process.env, "vercel");
    // A Vercel instance is a Node process: its /metrics describes it too (see docs/metrics.md).
    const metrics = config.metricsEnabled ? createMetrics({ processMetrics: true }) : undefined;
    const backend = openBackend(config);
    const github = githubAppOf(config, backend.store, metrics);
    const notifier = notifierOf(config, backend.store, metrics);
    const app = createApp({
      ...backend,
      config,
      runtime: RUNTIMES.vercel,
      metrics,
      github,
      notifier,
      log: console.log,
    });
    return new Hono().route("/api", app).route("/", app).notFound(noRoute);
  }),
};
