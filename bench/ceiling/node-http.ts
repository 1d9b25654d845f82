/** Bare node:http around the lock engine: see common.ts. */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { readBody, send } from "../bare-http.js";
import { actor, leases, port, refOf, store } from "./common.js";

const STATUS = /^\/infra\/locks\/([^/]+)$/;
const CHANGE = /^\/infra\/locks\/([^/]+)\/(acquire|release)$/;

async function handle(req: IncomingMessage, res: ServerResponse) {
  const url = req.url ?? "/";
  if (url === "/health") {
    await store.ping();
    return send(res, 200, { status: "ok" });
  }
  const status = req.method === "GET" ? STATUS.exec(url) : null;
  if (status) return send(res, 200, await leases.status(refOf(decodeURIComponent(status[1] ?? ""))));
  const change = req.method === "POST" ? CHANGE.exec(url) : null;
  if (!change) return send(res, 404, { status: "error" });
  const ref = refOf(decodeURIComponent(change[1] ?? ""));
  const body = JSON.parse((await readBody(req)) || "{}");
  if (change[2] === "acquire") return send(res, 200, await leases.acquire([ref], body, { actor }));
  return send(res, 200, await leases.release(ref, body, actor));
}

createServer((req, res) => {
  handle(req, res).catch(() => {
    if (!res.headersSent) send(res, 503, { status: "error" });
  });
}).listen(port, "127.0.0.1");
