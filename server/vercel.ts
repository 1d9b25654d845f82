/**
 * Vercel (serverless, Node.js runtime) entry: the same app, configured from the environment.
 * Module scope survives between invocations of a warm function, so the store client and the
 * rate limiter's cache are reused. Vercel sits behind a proxy: the client address is X-Forwarded-For.
 */
import { Hono } from "hono";
import { handle } from "hono/vercel";
import { createApp } from "./app.js";
import { openBackend } from "./backend.js";
import { loadConfig } from "./config.js";

// Serverless functions have a time limit: hold waiting requests 25 s unless told otherwise.
const config = {
  ...loadConfig({ LSS_MAX_WAIT_MS: "25000", ...process.env }),
  trustProxy: true,
};
const app = createApp({ ...openBackend(config), config });

/** Serves at / (with the rewrite in vercel.json) and at /api (without it). */
export const vercelApp = new Hono().route("/api", app).route("/", app);
export default handle(vercelApp);
