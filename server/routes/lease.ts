/** The lease API, as in the lease API document: /infra/locks/{key}/acquire|renew|release and status. */
import { createRoute, z } from "@hono/zod-openapi";
import {
  AcquireRequest,
  GrantResponse,
  HistoryResponse,
  LeaveRequest,
  ListResponse,
  LockKey,
  PoolKeys,
  ReleaseRequest,
  ReleaseResponse,
  RenewRequest,
  StatusResponse,
  TtlMs,
  WaitMs,
} from "../../src/protocol/lease.js";
import { PATHS } from "../../src/protocol/paths.js";
import { type AppEnv, requireScope } from "../auth/middleware.js";
import { literalRanges } from "../auth/oidc-policy.js";
import { actorOf, holderOf } from "../auth/principal.js";
import { may, mayForce } from "../auth/tokens.js";
import type { Scope } from "../auth/types.js";
import { createWaitSlots } from "../auth/wait-slots.js";
import { ApiError, badRequest } from "../errors.js";
import type { Leases } from "../locks/leases.js";
import { HISTORY_CURSOR } from "../locks/views.js";
import { errorResponses as errors, jsonBody, newRouter } from "./router.js";

const params = z.object({ key: LockKey });

const notCovered = (scope: Scope, key: string) =>
  new ApiError(
    "forbidden",
    `this token's ${scope} scope does not cover "${key}" (its OIDC rule names other keys)`,
  );

const common = errors(
  [400, "Invalid key or body"],
  [401, "Missing, unknown or revoked token"],
  [403, "Token lacks the scope, or the key is a state lock and the token is not its key"],
  [429, "Rate limited (see Retry-After)"],
  [503, "Store unreachable: nothing is granted"],
);

const body = <T extends z.ZodType>(schema: T) => ({
  required: true,
  content: { "application/json": { schema } },
});

export function leaseRoutes(
  leases: Leases,
  limits: { maxTtlMs: number; maxWaitMs: number; maxWaitsPerCaller: number },
) {
  const { maxTtlMs, maxWaitMs, maxWaitsPerCaller } = limits;
  const slots = createWaitSlots(maxWaitsPerCaller);
  // The document's bound is 60000 ms; CI holds locks for hours, so the bound is a setting.
  const ttl = TtlMs.max(maxTtlMs, `ttl_ms must be at most ${maxTtlMs} (LSS_MAX_TTL_MS)`);
  // A long-poll hint: longer waits are cut to the server's bound (LSS_MAX_WAIT_MS), not refused,
  // so that one client works against servers with different bounds.
  const waitMs = WaitMs.max(300_000, "wait_ms must be at most 300000").transform((ms) =>
    Math.min(ms, maxWaitMs),
  );
  const write = [requireScope("locks:write"), jsonBody];

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
    middleware: write,
    request: { params, body: body(AcquireRequest.extend({ ttl_ms: ttl, wait_ms: waitMs.optional() })) },
    responses: {
      200: { description: "Granted", content: { "application/json": { schema: GrantResponse } } },
      ...errors([409, "Held by someone else: the body says by whom and until when"]),
      ...common,
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
    middleware: write,
    request: {
      body: body(AcquireRequest.extend({ ttl_ms: ttl, wait_ms: waitMs.optional(), keys: PoolKeys })),
    },
    responses: {
      200: { description: "Granted one key", content: { "application/json": { schema: GrantResponse } } },
      ...errors([
        409,
        "Every key is held (the body says by whom, for the first key) or promised to earlier waiters",
      ]),
      ...common,
    },
  });

  const renew = createRoute({
    method: "post",
    path: PATHS.renew,
    tags: ["Leases"],
    summary: "Extend a held lease to ttl_ms from now",
    middleware: write,
    request: { params, body: body(RenewRequest.extend({ ttl_ms: ttl })) },
    responses: {
      200: { description: "Renewed", content: { "application/json": { schema: GrantResponse } } },
      ...errors([409, "The lease expired, was released, or is held with another token"]),
      ...common,
    },
  });

  const release = createRoute({
    method: "post",
    path: PATHS.release,
    tags: ["Leases"],
    summary: "Release a lease with its token (locks:write), or force: true (admin or locks:force)",
    // The scope depends on the body: locks:write for one's own lease, locks:force to force one.
    middleware: [jsonBody],
    request: { params, body: body(ReleaseRequest) },
    responses: {
      200: {
        description: "Released (also for a retried release)",
        content: { "application/json": { schema: ReleaseResponse } },
      },
      ...errors([409, "The lease expired, or is held with another token"]),
      ...common,
    },
  });

  const leave = createRoute({
    method: "post",
    path: PATHS.leave,
    tags: ["Leases"],
    summary: "Leave the key's queue (a cancelled waiter)",
    middleware: write,
    request: { params, body: body(LeaveRequest) },
    responses: {
      200: {
        description: "Not queued (any more)",
        content: { "application/json": { schema: z.object({ status: z.literal("ok"), key: z.string() }) } },
      },
      ...common,
    },
  });

  const status = createRoute({
    method: "get",
    path: PATHS.status,
    tags: ["Leases"],
    summary:
      "Whether a key is held, by whom and until when (never the token); wait_ms waits until it is free",
    middleware: [requireScope("locks:read")],
    request: {
      params,
      query: z.object({
        wait_ms: z
          .string()
          .regex(/^\d+$/, "wait_ms must be a whole number of milliseconds")
          .transform(Number)
          .pipe(waitMs)
          .optional(),
      }),
    },
    responses: {
      200: { description: "Lease state", content: { "application/json": { schema: StatusResponse } } },
      ...common,
    },
  });

  /** ?limit=: how many a page has (1 … 100, default 50). */
  const pageLimit = z
    .string()
    .regex(/^\d+$/, "limit must be a whole number")
    .transform(Number)
    .pipe(z.number().min(1, "limit must be at least 1").max(100, "limit must be at most 100"))
    .optional();

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
        limit: pageLimit,
      }),
    },
    responses: {
      200: { description: "One page of keys", content: { "application/json": { schema: ListResponse } } },
      ...common,
    },
  });

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
      params,
      query: z.object({
        cursor: z.string().regex(HISTORY_CURSOR, "cursor must be a next_cursor of this history").optional(),
        limit: pageLimit,
      }),
    },
    responses: {
      200: {
        description: "One page of events",
        content: { "application/json": { schema: HistoryResponse } },
      },
      ...common,
    },
  });

  /** A request that will wait takes one of its caller's wait slots for as long as it waits. */
  const waiting = async <T>(c: { var: AppEnv["Variables"] }, waitMs: number, op: () => Promise<T>) => {
    if (waitMs <= 0) return op();
    const give = slots.take(c.var.principal.id);
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

  /** The caller's lock `key`, if its token's `scope` covers it (an OIDC rule may name its keys). */
  const ref = (c: { var: AppEnv["Variables"] }, key: string, scope: Scope) => {
    if (!may(c.var.principal, scope, key)) throw notCovered(scope, key);
    return { namespace: c.var.principal.namespace, key };
  };
  /**
   * The signal of the client going away, for a request that waits (only a wait listens to it). Not
   * asked for otherwise: the Node adapter makes an AbortController for each request that asks.
   */
  const leaving = (c: { req: { raw: Request } }, waitMs: number | undefined) =>
    waitMs ? c.req.raw.signal : undefined;

  /** wait_ms keeps a place in a queue: only the caller's own token can ask for it again. */
  const needsOwnToken = (body: { wait_ms?: number; token?: string }) => {
    if (body.wait_ms && !body.token) {
      throw badRequest("wait_ms needs your own token: retries with it keep your place in the queue", {
        details: [{ in: "body", field: "token", message: "token is required with wait_ms" }],
      });
    }
  };

  return newRouter()
    .openapi(acquire, async (c) => {
      const body = c.req.valid("json");
      needsOwnToken(body);
      // The client going away (a cancelled job) ends the wait and leaves the queue.
      return c.json(
        await waiting(c, body.wait_ms ?? 0, () =>
          leases.acquire(
            [ref(c, c.req.valid("param").key, "locks:write")],
            { ...body, holder_id: holderOf(c.var.principal, body.holder_id) },
            { actor: actorOf(c.var.principal), signal: leaving(c, body.wait_ms) },
          ),
        ),
        200,
      );
    })
    .openapi(acquirePool, async (c) => {
      const { keys, ...body } = c.req.valid("json");
      needsOwnToken(body);
      return c.json(
        await waiting(c, body.wait_ms ?? 0, () =>
          leases.acquire(
            keys.map((key) => ref(c, key, "locks:write")),
            { ...body, holder_id: holderOf(c.var.principal, body.holder_id) },
            { actor: actorOf(c.var.principal), signal: leaving(c, body.wait_ms) },
          ),
        ),
        200,
      );
    })
    .openapi(leave, async (c) => {
      const { token, holder_id } = c.req.valid("json");
      const who = { holderId: holderOf(c.var.principal, holder_id) ?? null, actor: actorOf(c.var.principal) };
      return c.json(await leases.leave(ref(c, c.req.valid("param").key, "locks:write"), token, who), 200);
    })
    .openapi(renew, async (c) =>
      c.json(await leases.renew(ref(c, c.req.valid("param").key, "locks:write"), c.req.valid("json")), 200),
    )
    .openapi(release, async (c) => {
      const body = c.req.valid("json");
      const key = c.req.valid("param").key;
      if (body.force && !mayForce(c.var.principal, key)) {
        throw new ApiError(
          "forbidden",
          `force releases whoever holds the key: it needs the admin or locks:force scope (for "${key}")`,
        );
      }
      if (!body.force && !c.var.principal.scopes.has("locks:write")) {
        throw new ApiError("forbidden", "this token lacks the locks:write scope");
      }
      const lock = body.force ? { namespace: c.var.principal.namespace, key } : ref(c, key, "locks:write");
      return c.json(await leases.release(lock, body, actorOf(c.var.principal)), 200);
    })
    .openapi(list, async (c) => {
      const q = c.req.valid("query");
      const p = c.var.principal;
      const prefix = q.prefix ?? "";
      const cursor = q.cursor ?? null;
      const limit = q.limit ?? 50;
      const patterns = p.patterns?.("locks:read") ?? ["*"];
      if (patterns.includes("*")) {
        return c.json(await leases.list(p.namespace, { prefix, cursor, limit }), 200);
      }
      // Keys the token's rule does not cover are not its to see, nor their names in a cursor.
      const ranges = literalRanges(patterns, prefix);
      const visible = (key: string) => key.startsWith(prefix) && may(p, "locks:read", key);
      return c.json(await leases.listVisible(p.namespace, { ranges, cursor, limit }, visible), 200);
    })
    .openapi(history, async (c) => {
      const q = c.req.valid("query");
      const page = await leases.history(ref(c, c.req.valid("param").key, "locks:read"), {
        cursor: q.cursor ?? null,
        limit: q.limit ?? 50,
      });
      return c.json(page, 200);
    })
    .openapi(status, async (c) => {
      const waitMs = c.req.valid("query").wait_ms ?? 0;
      return c.json(
        await waiting(c, waitMs, () =>
          leases.status(ref(c, c.req.valid("param").key, "locks:read"), waitMs, leaving(c, waitMs)),
        ),
        200,
      );
    });
}
