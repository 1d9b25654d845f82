/** GET /infra/locks/{key}: whether a key is held, by whom, until when; wait_ms waits until it is free. */
import { createRoute, z } from "@hono/zod-openapi";
import { StatusResponse } from "../../../src/protocol/lease.js";
import { PATHS } from "../../../src/protocol/paths.js";
import { requireScope } from "../../auth/middleware.js";
import type { Router } from "../router.js";
import { commonErrors, jsonAnswer, keyParams, type LeaseRouteDeps, leaving, ref } from "./common.js";

export function registerStatus(app: Router, { leases, schemas, waiting }: LeaseRouteDeps) {
  const status = createRoute({
    method: "get",
    path: PATHS.status,
    tags: ["Leases"],
    summary:
      "Whether a key is held, by whom and until when (never the token); wait_ms waits until it is free",
    middleware: [requireScope("locks:read")],
    request: {
      params: keyParams,
      query: z.object({
        wait_ms: z
          .string()
          .regex(/^\d+$/, "wait_ms must be a whole number of milliseconds")
          .transform(Number)
          .pipe(schemas.waitMs)
          .optional(),
      }),
    },
    responses: { 200: jsonAnswer("Lease state", StatusResponse), ...commonErrors },
  });
  app.openapi(status, async (c) => {
    const waitMs = c.req.valid("query").wait_ms ?? 0;
    const lock = ref(c, c.req.valid("param").key, "locks:read");
    return c.json(await waiting(c, waitMs, () => leases.status(lock, waitMs, leaving(c, waitMs))), 200);
  });
}
