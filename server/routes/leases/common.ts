/**
 * What the lease routes share: their limits, the request schemas those bound, the errors every
 * route may answer, whose key a request names (ref), and the wait slots of long-polls.
 */

import { z } from "@hono/zod-openapi";
import { formatDuration } from "../../../src/protocol/durations.js";
import { LockKey, TtlMs, WaitMs } from "../../../src/protocol/lease.js";
import type { AppEnv } from "../../auth/middleware.js";
import { may } from "../../auth/tokens.js";
import type { Scope } from "../../auth/types.js";
import { createWaitSlots } from "../../auth/wait-slots.js";
import { ApiError, badRequest } from "../../errors.js";
import type { Leases } from "../../locks/leases.js";
import { errorResponses } from "../router.js";

export interface LeaseLimits {
  maxTtlMs: number;
  maxWaitMs: number;
  maxWaitsPerCaller: number;
}

/** What each lease route is given. */
export interface LeaseRouteDeps {
  leases: Leases;
  schemas: ReturnType<typeof leaseSchemas>;
  /** Runs a request that waits in one of its caller's wait slots (LSS_MAX_WAITS). */
  waiting: ReturnType<typeof waitSlots>;
}

// Hono's `c.var` builds an object of every variable at each read: routes read one with `get`.
type Ctx = { get(name: "principal"): AppEnv["Variables"]["principal"] };

export const keyParams = z.object({ key: LockKey });

export const commonErrors = errorResponses(
  [400, "Invalid key or body"],
  [401, "Missing, unknown or revoked token"],
  [403, "Token lacks the scope, or the key is a state lock and the token is not its key"],
  [429, "Rate limited (see Retry-After)"],
  [503, "Store unreachable: nothing is granted"],
);

export const jsonRequest = <T extends z.ZodType>(schema: T) => ({
  required: true,
  content: { "application/json": { schema } },
});

export const jsonAnswer = <T extends z.ZodType>(description: string, schema: T) => ({
  description,
  content: { "application/json": { schema } },
});

/** ttl_ms and wait_ms as this server bounds them. */
export function leaseSchemas({ maxTtlMs, maxWaitMs }: LeaseLimits) {
  // The document's bound is 60000 ms; CI holds locks for hours, so the bound is a setting.
  // Said as a duration too (7d), as the action's `hold` and `lss --ttl` take it.
  const said = maxTtlMs % 86_400_000 === 0 ? `${maxTtlMs / 86_400_000}d` : formatDuration(maxTtlMs);
  const ttl = TtlMs.max(
    maxTtlMs,
    `ttl_ms must be at most ${maxTtlMs} (${said}: this server's LSS_MAX_TTL_MS)`,
  );
  // A long-poll hint: longer waits are cut to the server's bound (LSS_MAX_WAIT_MS), not refused,
  // so that one client works against servers with different bounds.
  const waitMs = WaitMs.max(300_000, "wait_ms must be at most 300000").transform((ms) =>
    Math.min(ms, maxWaitMs),
  );
  /** ?limit=: how many a page has (1 … 100, default 50). */
  const pageLimit = z
    .string()
    .regex(/^\d+$/, "limit must be a whole number")
    .transform(Number)
    .pipe(z.number().min(1, "limit must be at least 1").max(100, "limit must be at most 100"))
    .optional();
  return { ttl, waitMs, pageLimit };
}

/** A request that will wait takes one of its caller's wait slots for as long as it waits. */
export function waitSlots(maxWaitsPerCaller: number) {
  const slots = createWaitSlots(maxWaitsPerCaller);
  return async <T>(c: Ctx, waitMs: number, op: () => Promise<T>) => {
    if (waitMs <= 0) return op();
    const give = slots.take(c.get("principal").id);
    if (!give) {
      throw new ApiError(
        "rate_limited",
        `this caller already has ${maxWaitsPerCaller} waiting requests open, the most LSS_MAX_WAITS allows`,
        { extra: { retry_after_seconds: 1 }, headers: { "Retry-After": "1" } },
      );
    }
    try {
      return await op();
    } finally {
      give();
    }
  };
}

const notCovered = (scope: Scope, key: string) =>
  new ApiError(
    "forbidden",
    `this token's ${scope} scope does not cover "${key}" (its OIDC rule names other keys)`,
  );

/** The caller's lock `key`, if its token's `scope` covers it (an OIDC rule may name its keys). */
export const ref = (c: Ctx, key: string, scope: Scope) => {
  if (!may(c.get("principal"), scope, key)) throw notCovered(scope, key);
  return { namespace: c.get("principal").namespace, key };
};

/**
 * The signal of the client going away, for a request that waits (only a wait listens to it). Not
 * asked for otherwise: the Node adapter makes an AbortController for each request that asks.
 */
export const leaving = (c: { req: { raw: Request } }, waitMs: number | undefined) =>
  waitMs ? c.req.raw.signal : undefined;

/** wait_ms keeps a place in a queue: only the caller's own token can ask for it again. */
export const needsOwnToken = (body: { wait_ms?: number; token?: string }) => {
  if (body.wait_ms && !body.token) {
    throw badRequest("wait_ms needs your own token: retries with it keep your place in the queue", {
      details: [{ in: "body", field: "token", message: "token is required with wait_ms" }],
    });
  }
};
