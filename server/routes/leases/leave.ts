/** POST /infra/locks/{key}/leave: a waiter that gives up (a cancelled job) leaves the key's queue. */
import { createRoute, z } from "@hono/zod-openapi";
import { LeaveRequest } from "../../../src/protocol/lease.js";
import { PATHS } from "../../../src/protocol/paths.js";
import { requireScope } from "../../auth/middleware.js";
import { actorOf, holderOf } from "../../auth/principal.js";
import { jsonBody, type Router } from "../router.js";
import { commonErrors, jsonAnswer, jsonRequest, keyParams, type LeaseRouteDeps, ref } from "./common.js";

export function registerLeave(app: Router, { leases }: LeaseRouteDeps) {
  const leave = createRoute({
    method: "post",
    path: PATHS.leave,
    tags: ["Leases"],
    summary: "Leave the key's queue (a cancelled waiter)",
    middleware: [requireScope("locks:write"), jsonBody],
    request: { params: keyParams, body: jsonRequest(LeaveRequest) },
    responses: {
      200: jsonAnswer("Not queued (any more)", z.object({ status: z.literal("ok"), key: z.string() })),
      ...commonErrors,
    },
  });
  app.openapi(leave, async (c) => {
    const { token, holder_id } = c.req.valid("json");
    const who = {
      holderId: holderOf(c.get("principal"), holder_id) ?? null,
      actor: actorOf(c.get("principal")),
    };
    return c.json(await leases.leave(ref(c, c.req.valid("param").key, "locks:write"), token, who), 200);
  });
}
