/** POST /infra/locks/{key}/renew: a held lease, ttl_ms from now. */
import { createRoute } from "@hono/zod-openapi";
import { GrantResponse, RenewRequest } from "../../../src/protocol/lease.js";
import { PATHS } from "../../../src/protocol/paths.js";
import { requireScope } from "../../auth/middleware.js";
import { errorResponses, jsonBody, type Router } from "../router.js";
import { commonErrors, jsonAnswer, jsonRequest, keyParams, type LeaseRouteDeps, ref } from "./common.js";

export function registerRenew(app: Router, { leases, schemas }: LeaseRouteDeps) {
  const renew = createRoute({
    method: "post",
    path: PATHS.renew,
    tags: ["Leases"],
    summary: "Extend a held lease to ttl_ms from now",
    middleware: [requireScope("locks:write"), jsonBody],
    request: { params: keyParams, body: jsonRequest(RenewRequest.extend({ ttl_ms: schemas.ttl })) },
    responses: {
      200: jsonAnswer("Renewed", GrantResponse),
      ...errorResponses([409, "The lease expired, was released, or is held with another token"]),
      ...commonErrors,
    },
  });
  app.openapi(renew, async (c) =>
    c.json(await leases.renew(ref(c, c.req.valid("param").key, "locks:write"), c.req.valid("json")), 200),
  );
}
