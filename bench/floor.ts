/**
 * The floor: the least a lock server over HTTP + Redis can do per request. Bare node:http, exactly
 * ONE plain Redis round trip per request, JSON in and out, same URLs as the lease API so the
 * benchmark drives it with the very same request sequence.
 *
 *   POST /infra/locks/:key/acquire {"ttl_ms":N}   → SET floor:<key> <token> PX N   → {"token":…}
 *   POST /infra/locks/:key/release {"token":…}    → DEL floor:<key>                → {"locked":false}
 *   GET  /health                                  → PING
 *
 * No auth, no validation, no atomic compare: it is a yardstick, not a lock server.
 * Env: PORT, REDIS_URL. Listens on 127.0.0.1 only.
 */
import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { Redis } from "ioredis";
import { readBody, send } from "./bare-http.js";

const port = Number(process.env.PORT);
const redisUrl = process.env.REDIS_URL;
if (!port || !redisUrl) throw new Error("floor: set PORT and REDIS_URL");

const redis = new Redis(redisUrl, { maxRetriesPerRequest: 0 });
redis.on("error", () => {}); // surfaces per command as a 503

const ROUTE = /^\/infra\/locks\/([^/]+)\/(acquire|release)$/;

async function handle(req: IncomingMessage, res: ServerResponse) {
  const url = req.url ?? "/";
  if (req.method === "GET" && url === "/health") {
    await redis.ping();
    return send(res, 200, { status: "ok" });
  }
  const match = req.method === "POST" ? ROUTE.exec(url) : null;
  if (!match) {
    req.resume();
    return send(res, 404, { status: "error" });
  }
  const [, key = "", action] = match;
  const body = JSON.parse((await readBody(req)) || "{}") as { ttl_ms?: number; token?: string };
  if (action === "acquire") {
    const token = randomBytes(24).toString("base64url");
    await redis.set(`floor:${key}`, token, "PX", body.ttl_ms ?? 30_000);
    return send(res, 200, { status: "ok", key, locked: true, token });
  }
  await redis.del(`floor:${key}`);
  return send(res, 200, { status: "ok", key, locked: false });
}

const server = createServer((req, res) => {
  handle(req, res).catch(() => {
    if (!res.headersSent) send(res, 503, { status: "error" });
  });
});

redis.once("ready", () => server.listen(port, "127.0.0.1"));

const stop = () => server.close(() => process.exit(0));
process.once("SIGINT", stop);
process.once("SIGTERM", stop);
