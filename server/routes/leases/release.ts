/** POST /infra/locks/{key}/release: with the lease's token (locks:write), or force (admin or locks:force). */
import { createRoute } from "@hono/zod-openapi";
import { ReleaseRequest, ReleaseResponse } from "../../../src/protocol/lease.js";
import { PATHS } from "../../../src/protocol/paths.js";
import { actorOf } from "../../auth/principal.js";
import { mayForce } from "../../auth/tokens.js";
import { ApiError } from "../../errors.js";
import { errorResponses, jsonBody, type Router } from "../router.js";
import { commonErrors, jsonAnswer, jsonRequest, keyParams, type LeaseRouteDeps, ref } from "./common.js";

export function registerRelease(app: Router, { leases }: LeaseRouteDeps) {
  const release = createRoute({
    method: "post",
    path: PATHS.release,
    tags: ["Leases"],
    summary: "Release a lease with its token (locks:write), or force: true (admin or locks:force)",
    // The scope depends on the body: locks:write for one's own lease, locks:force to force one.
    middleware: [jsonBody],
    request: { params: keyParams, body: jsonRequest(ReleaseRequest) },
    responses: {
      200: jsonAnswer("Released (also for a retried release)", ReleaseResponse),
      ...errorResponses([409, "The lease expired, or is held with another token"]),
      ...commonErrors,
    },
  });
  app.openapi(release, async (c) => {
    const body = c.req.valid("json");
    const key = c.req.valid("param").key;
    if (body.force && !mayForce(c.get("principal"), key)) {
      throw new ApiError(
        "forbidden",
        `force releases whoever holds the key: it needs the admin or locks:force scope (for "${key}")`,
      );
    }
    if (!body.force && !c.get("principal").scopes.has("locks:write")) {
      throw new ApiError("forbidden", "this token lacks the locks:write scope");
    }
    const lock = body.force ? { namespace: c.get("principal").namespace, key } : ref(c, key, "locks:write");
    return c.json(await leases.release(lock, body, actorOf(c.get("principal"))), 200);
  });
}
