/**
 * The Lock State Service API (`/locks`), as in its document: state in the status code
 * (204 unlocked, 423 locked, 404 unknown), the per-lock key `k` as its credential.
 */
import { createRoute, z } from "@hono/zod-openapi";
import { PATHS } from "../../src/protocol/paths.js";
import {
  CreatedResponse,
  CreateQuery,
  LockQuery,
  STATE_LOCK_KEY_PREFIX,
  StateLockId,
  UnlockQuery,
} from "../../src/protocol/state-locks.js";
import { type AppEnv, requireScope } from "../auth/middleware.js";
import { actorOf } from "../auth/principal.js";
import { may } from "../auth/tokens.js";

import type { Scope } from "../auth/types.js";
import { ApiError } from "../errors.js";
import type { StateLocks } from "../locks/state-locks.js";
import { leaseView } from "../locks/views.js";
import { errorResponse as error, type Router } from "./router.js";

/** Any lock not made yet: a rule covers new /locks locks when it covers every locks/<id>. */
const NEW_LOCK_ID = "00000000-0000-4000-8000-000000000000";

const params = z.object({ id: StateLockId });
const missingKey = () =>
  new ApiError("unauthorized", "missing k: pass the lock's key as ?k=<key>", {
    headers: { "WWW-Authenticate": "k" },
  });

const create = createRoute({
  method: "post",
  path: PATHS.createStateLock,
  tags: ["Lock State Service"],
  summary: "Create a lock (l=true to create it locked, e=seconds, k=your own key)",
  middleware: [requireScope("locks:write")],
  request: { query: CreateQuery },
  responses: {
    200: { description: "Created", content: { "application/json": { schema: CreatedResponse } } },
    400: error("Invalid l, e or k"),
  },
});

const check = createRoute({
  method: "get",
  path: PATHS.stateLock,
  tags: ["Lock State Service"],
  summary: "The lock's state as a status code: 204 unlocked, 423 locked, 404 unknown",
  middleware: [requireScope("locks:read")],
  request: { params },
  responses: {
    204: { description: "Unlocked" },
    423: {
      description: "Locked",
      content: {
        "application/json": {
          schema: z.object({
            id: z.string(),
            locked: z.literal(true),
            expires_at: z.string().nullable(),
            expires_in_ms: z.number().nullable(),
          }),
        },
      },
    },
    404: error("No such lock"),
  },
});

const changeResponses = (done: string) => ({
  204: { description: done },
  401: error("Missing k"),
  403: error("Wrong k"),
  404: error("No such lock"),
});

const lock = createRoute({
  method: "patch",
  path: PATHS.lockStateLock,
  tags: ["Lock State Service"],
  summary: "Lock (e=seconds, else until unlocked); locking a locked lock sets its new expiry",
  middleware: [requireScope("locks:write")],
  request: { params, query: LockQuery },
  responses: changeResponses("Locked"),
});

const unlock = createRoute({
  method: "patch",
  path: PATHS.unlockStateLock,
  tags: ["Lock State Service"],
  summary: "Unlock (unlocking an unlocked lock is a no-op)",
  middleware: [requireScope("locks:write")],
  request: { params, query: UnlockQuery },
  responses: changeResponses("Unlocked"),
});

/** A lock's lease key, locks/<id>, must be one the token's scope covers (an OIDC rule may name its keys). */
const covered = (
  c: { get(name: "principal"): AppEnv["Variables"]["principal"] },
  scope: Scope,
  id: string,
) => {
  if (!may(c.get("principal"), scope, `${STATE_LOCK_KEY_PREFIX}${id}`)) {
    throw new ApiError(
      "forbidden",
      `this token's ${scope} scope does not cover the /locks API's locks (their keys are ${STATE_LOCK_KEY_PREFIX}<id>)`,
    );
  }
};

export function registerStateLockRoutes(app: Router, locks: StateLocks) {
  return app
    .openapi(create, async (c) => {
      covered(c, "locks:write", NEW_LOCK_ID);
      const q = c.req.valid("query");
      const created = await locks.create(c.get("principal").namespace, {
        locked: q.l ?? false,
        ttlSeconds: q.e ?? null,
        credential: q.k ?? null,
        actor: actorOf(c.get("principal")),
      });
      return c.json(created, 200);
    })
    .openapi(check, async (c) => {
      const { id } = c.req.valid("param");
      covered(c, "locks:read", id);
      const found = await locks.check(c.get("principal").namespace, id);
      if (found.state === "unknown") throw new ApiError("not_found", `no lock with id "${id}"`);
      if (found.state === "unlocked") return c.body(null, 204);
      const { expires_at, expires_in_ms } = leaseView(found.lease, found.now);
      return c.json({ id, locked: true as const, expires_at, expires_in_ms }, 423);
    })
    .openapi(lock, async (c) => {
      const { id } = c.req.valid("param");
      const { k, e } = c.req.valid("query");
      if (k === undefined) throw missingKey();
      covered(c, "locks:write", id);
      await locks.lock(c.get("principal").namespace, id, k, e ?? null, actorOf(c.get("principal")));
      return c.body(null, 204);
    })
    .openapi(unlock, async (c) => {
      const { id } = c.req.valid("param");
      const { k } = c.req.valid("query");
      if (k === undefined) throw missingKey();
      covered(c, "locks:write", id);
      await locks.unlock(c.get("principal").namespace, id, k, actorOf(c.get("principal")));
      return c.body(null, 204);
    });
}
