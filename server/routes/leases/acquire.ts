/** POST /infra/locks/{key}/acquire and POST /infra/pools/acquire: a lease, at once or by waiting in the queue. */
import { createRoute } from "@hono/zod-openapi";
import { AcquireRequest, GrantResponse, PoolKeys } from "../../../src/protocol/lease.js";
import { PATHS } from "../../../src/protocol/paths.js";
import { requireScope } from "../../auth/middleware.js";
import { actorOf, holderOf } from "../../auth/principal.js";
import { errorResponses, jsonBody, type Router } from "../router.js";
import {
  commonErrors,
  jsonAnswer,
  jsonRequest,
  keyParams,
  type LeaseRouteDeps,
  leaving,
  needsOwnToken,
  ref,
} from "./common.js";

export function registerAcquire(app: Router, { leases, schemas, waiting }: LeaseRouteDeps) {
  const request = AcquireRequest.extend({ ttl_ms: schemas.ttl, wait_ms: schemas.waitMs.optional() });
  const acquire = createRoute({
    method: "post",
    path: PATHS.acquire,
    tags: ["Leases"],
    summary: "Acquire a lease on a key",
    description:
      "Grants a lease for ttl_ms, with a token and a fencing token that only ever increases. " +
      "Sending your own `token` makes the call idempotent: a retry returns the same lease instead of 409. " +
      "With `wait_ms` (and your own `token`) the request waits in the key's first-come-first-served queue " +
      "and answers the moment it is granted; a 409 then says your place in the queue. Without it, a single " +
      "try that never jumps the queue.",
    middleware: [requireScope("locks:write"), jsonBody],
    request: { params: keyParams, body: jsonRequest(request) },
    responses: {
      200: jsonAnswer("Granted", GrantResponse),
      ...errorResponses([409, "Held by someone else: the body says by whom and until when"]),
      ...commonErrors,
    },
  });
  const acquirePool = createRoute({
    method: "post",
    path: PATHS.acquirePool,
    tags: ["Leases"],
    summary: "Acquire whichever of several keys frees first (a pool)",
    description:
      "As an acquire of one key, for a pool of 2 to 10 keys (e.g. qa-1, qa-2, qa-3): the first key that is " +
      "free for you is granted, and the answer's `key` says which. With `wait_ms` the request waits in " +
      "every key's queue, first come first served across the pool. Renew and release the lease by its key.",
    middleware: [requireScope("locks:write"), jsonBody],
    request: { body: jsonRequest(request.extend({ keys: PoolKeys })) },
    responses: {
      200: jsonAnswer("Granted one key", GrantResponse),
      ...errorResponses([
        409,
        "Every key is held (the body says by whom, for the first key) or promised to earlier waiters",
      ]),
      ...commonErrors,
    },
  });

  app.openapi(acquire, async (c) => {
    const body = c.req.valid("json");
    needsOwnToken(body);
    // The client going away (a cancelled job) ends the wait and leaves the queue.
    const granted = await waiting(c, body.wait_ms ?? 0, () =>
      leases.acquire(
        [ref(c, c.req.valid("param").key, "locks:write")],
        { ...body, holder_id: holderOf(c.get("principal"), body.holder_id) },
        { actor: actorOf(c.get("principal")), signal: leaving(c, body.wait_ms) },
      ),
    );
    return c.json(granted, 200);
  });
  app.openapi(acquirePool, async (c) => {
    const { keys, ...body } = c.req.valid("json");
    needsOwnToken(body);
    const granted = await waiting(c, body.wait_ms ?? 0, () =>
      leases.acquire(
        keys.map((key) => ref(c, key, "locks:write")),
        { ...body, holder_id: holderOf(c.get("principal"), body.holder_id) },
        { actor: actorOf(c.get("principal")), signal: leaving(c, body.wait_ms) },
      ),
    );
    return c.json(granted, 200);
  });
}
