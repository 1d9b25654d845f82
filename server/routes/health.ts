/** For load balancers and deploy checks: 200 only when the store answers. */
import { createRoute, z } from "@hono/zod-openapi";
import type { RuntimeName } from "../runtime.js";
import type { LockStore } from "../stores/types.js";
import { newRouter } from "./router.js";

const Health = z.object({
  status: z.enum(["ok", "error"]),
  runtime: z.enum(["node", "vercel", "workers"]),
  store: z.enum(["memory", "redis", "upstash"]),
  store_reachable: z.boolean(),
  durable: z.boolean(),
  latency_ms: z.number().nullable(),
});

export function healthRoutes(store: LockStore, runtime: RuntimeName) {
  const health = createRoute({
    method: "get",
    path: "/health",
    tags: ["Health"],
    summary: "Which runtime and store serve, and whether the store is reachable",
    responses: {
      200: { description: "Store reachable", content: { "application/json": { schema: Health } } },
      503: { description: "Store unreachable", content: { "application/json": { schema: Health } } },
    },
  });

  return newRouter().openapi(health, async (c) => {
    const started = performance.now();
    const reachable = await store.ping().then(
      () => true,
      () => false,
    );
    const body = {
      status: reachable ? ("ok" as const) : ("error" as const),
      runtime,
      store: store.kind,
      store_reachable: reachable,
      durable: store.kind !== "memory",
      latency_ms: reachable ? Math.round((performance.now() - started) * 10) / 10 : null,
    };
    return reachable ? c.json(body, 200) : c.json(body, 503);
  });
}
