/** For load balancers and deploy checks: 200 only when the store answers. */
import { createRoute, z } from "@hono/zod-openapi";
import { PATHS } from "../../src/protocol/paths.js";
import { VERSION } from "../../src/version.js";
import type { RuntimeName } from "../runtime.js";
import { type LockStore, StoreUnavailableError } from "../stores/types.js";
import type { Router } from "./router.js";

const Health = z.object({
  status: z.enum(["ok", "error"]),
  /** The server's version (LSS's release). */
  version: z.string(),
  runtime: z.enum(["node", "vercel", "workers"]),
  store: z.enum(["memory", "redis", "upstash"]),
  store_reachable: z.boolean(),
  durable: z.boolean(),
  latency_ms: z.number().nullable(),
  /** Redis's maxmemory-policy (null: the store cannot say, e.g. Upstash). */
  eviction_policy: z.string().nullable(),
  /**
   * Why lock operations are refused: the store answers but could lose records (an evicting Redis),
   * or it refuses every command (an Upstash database past its plan's limit).
   */
  problem: z.string().nullable(),
});

/** How long one look at the store answers /health. */
export const HEALTH_CACHE_MS = 1000;

export function registerHealth(app: Router, store: LockStore, runtime: RuntimeName) {
  const health = createRoute({
    method: "get",
    path: PATHS.health,
    tags: ["Health"],
    summary: "Which runtime and store serve, whether the store is reachable, and whether it is safe",
    responses: {
      200: { description: "Store reachable", content: { "application/json": { schema: Health } } },
      503: { description: "Store unreachable", content: { "application/json": { schema: Health } } },
    },
  });

  // Load balancers ask every few seconds, anyone may ask at any rate: the store is asked at most
  // once per HEALTH_CACHE_MS per instance, and the answers in between repeat the last one.
  let last: { at: number; answer: Promise<{ ok: boolean; body: z.infer<typeof Health> }> } | null = null;
  const check = async () => {
    const started = performance.now();
    let refusal: string | null = null;
    const reachable = await store.ping().then(
      () => true,
      (err) => {
        if (err instanceof StoreUnavailableError && err.hint?.kind === "quota") refusal = err.hint.message;
        return false;
      },
    );
    const latency = reachable ? Math.round((performance.now() - started) * 10) / 10 : null;
    const safety = reachable ? await store.safety().catch(() => null) : null;
    const ok = reachable && safety?.safe === true;
    const body = {
      status: ok ? ("ok" as const) : ("error" as const),
      version: VERSION,
      runtime,
      store: store.kind,
      store_reachable: reachable,
      durable: store.kind !== "memory",
      latency_ms: latency,
      eviction_policy: safety?.evictionPolicy ?? null,
      problem: safety?.problem ?? refusal,
    };
    return { ok, body };
  };

  return app.openapi(health, async (c) => {
    if (!last || Date.now() - last.at >= HEALTH_CACHE_MS) last = { at: Date.now(), answer: check() };
    const { ok, body } = await last.answer;
    return ok ? c.json(body, 200) : c.json(body, 503);
  });
}
