/** GET /infra/locks: the namespace's keys with their state, a page at a time. */
import { createRoute, z } from "@hono/zod-openapi";
import { ListResponse, LockKey } from "../../../src/protocol/lease.js";
import { PATHS } from "../../../src/protocol/paths.js";
import { requireScope } from "../../auth/middleware.js";
import { literalRanges } from "../../auth/oidc-policy.js";
import { may } from "../../auth/tokens.js";
import type { Router } from "../router.js";
import { commonErrors, jsonAnswer, type LeaseRouteDeps } from "./common.js";

export function registerList(app: Router, { leases, schemas }: LeaseRouteDeps) {
  const list = createRoute({
    method: "get",
    path: PATHS.list,
    tags: ["Leases"],
    summary: "The namespace's keys with their state (held or free, holder, expiry, waiters)",
    description:
      "Keys in lexical order, `limit` at a time (default 50, at most 100); `prefix` lists only the keys " +
      "that start with it; `cursor` (the previous page's `next_cursor`) asks for the next page. A key " +
      "is listed while it has a record: while held, and for an hour after its last lease ended.",
    middleware: [requireScope("locks:read")],
    request: {
      query: z.object({
        prefix: z.string().max(512, "prefix must be at most 512 characters").optional(),
        cursor: LockKey.optional(),
        limit: schemas.pageLimit,
      }),
    },
    responses: { 200: jsonAnswer("One page of keys", ListResponse), ...commonErrors },
  });
  app.openapi(list, async (c) => {
    const q = c.req.valid("query");
    const p = c.get("principal");
    const page = { prefix: q.prefix ?? "", cursor: q.cursor ?? null, limit: q.limit ?? 50 };
    const patterns = p.patterns?.("locks:read") ?? ["*"];
    if (patterns.includes("*")) return c.json(await leases.list(p.namespace, page), 200);
    // Keys the token's rule does not cover are not its to see, nor their names in a cursor.
    const ranges = literalRanges(patterns, page.prefix);
    const visible = (key: string) => key.startsWith(page.prefix) && may(p, "locks:read", key);
    return c.json(await leases.listVisible(p.namespace, { ...page, ranges }, visible), 200);
  });
}
