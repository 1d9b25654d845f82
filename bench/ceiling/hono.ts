/** Bare Hono on @hono/node-server around the lock engine: see common.ts. */
import { serve } from "@hono/node-server";
import { Hono } from "hono";
import type { AcquireRequest, ReleaseRequest } from "../../src/protocol/lease.js";
import { actor, leases, port, refOf, store } from "./common.js";

const app = new Hono();
app.get("/health", async (c) => {
  await store.ping();
  return c.json({ status: "ok" });
});
app.get("/infra/locks/:key", async (c) => c.json(await leases.status(refOf(c.req.param("key")))));
app.post("/infra/locks/:key/acquire", async (c) =>
  c.json(await leases.acquire([refOf(c.req.param("key"))], await c.req.json<AcquireRequest>(), { actor })),
);
app.post("/infra/locks/:key/release", async (c) =>
  c.json(await leases.release(refOf(c.req.param("key")), await c.req.json<ReleaseRequest>(), actor)),
);
serve({ fetch: app.fetch, port, hostname: "127.0.0.1" });
