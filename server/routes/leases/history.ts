/** GET /infra/locks/{key}/history: who held a key and when, newest first, a page at a time. */
import { createRoute, z } from "@hono/zod-openapi";
import { HistoryResponse } from "../../../src/protocol/lease.js";
import { PATHS } from "../../../src/protocol/paths.js";
import { requireScope } from "../../auth/middleware.js";
import { HISTORY_CURSOR } from "../../locks/views.js";
import type { Router } from "../router.js";
import { commonErrors, jsonAnswer, keyParams, type LeaseRouteDeps, ref } from "./common.js";

export function registerHistory(app: Router, { leases, schemas }: LeaseRouteDeps) {
  const history = createRoute({
    method: "get",
    path: PATHS.history,
    tags: ["Leases"],
    summary: "Who held a key and when: its grants, releases, expiries, forced releases, queue timeouts",
    description:
      "Newest first, `limit` at a time (default 50, at most 100); `cursor` (the previous page's " +
      "`next_cursor`) asks for older events. Each key keeps its last LSS_HISTORY_EVENTS events " +
      "(100) for LSS_HISTORY_DAYS (30) after the last one. An expiry is written when the key is next " +
      "acquired, at the time the lease ended; until then it is read from the key's record.",
    middleware: [requireScope("locks:read")],
    request: {
      params: keyParams,
      query: z.object({
        cursor: z.string().regex(HISTORY_CURSOR, "cursor must be a next_cursor of this history").optional(),
        limit: schemas.pageLimit,
      }),
    },
    responses: { 200: jsonAnswer("One page of events", HistoryResponse), ...commonErrors },
  });
  app.openapi(history, async (c) => {
    const q = c.req.valid("query");
    const page = await leases.history(ref(c, c.req.valid("param").key, "locks:read"), {
      cursor: q.cursor ?? null,
      limit: q.limit ?? 50,
    });
    return c.json(page, 200);
  });
}
