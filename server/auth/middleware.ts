/** Who is calling (authenticate), may they (requireScope), and how often (rateLimit). */
import { createMiddleware } from "hono/factory";
import { ApiError } from "../errors.js";
import { countedInProcess, type RateDecision, type RateLimiter } from "./rate-limit.js";
import { OPEN_NAMESPACE, type Principal, type Scope, type TokenVerifier } from "./types.js";

export type AppEnv = { Variables: { principal: Principal } };

/** Who an unauthenticated caller of an open route is: the open API's namespace, limited by address. */
const anonymous = (address: string): Principal => ({
  id: `addr:${address}`,
  name: null,
  namespace: OPEN_NAMESPACE,
  scopes: new Set<Scope>(["locks:read", "locks:write"]),
  anonymous: true,
});

/** How many addresses the guard remembers; past it, the one whose window began first is forgotten. */
const GUARDED_ADDRESSES = 10_000;

/**
 * Failed authentications per address, counted in this instance's memory (fixed one-minute
 * windows): past the limit an address's next tokens are not looked up in the store, so made-up
 * tokens cannot make the store work for free. Tokens verified without a lookup (the admin token,
 * a workflow's OIDC token, a token whose record this instance holds) still pass: an address is
 * often shared (a NAT, a CI provider's egress), and one client's failures must not lock out the
 * others' valid tokens.
 */
export function failedAuthGuard(perMinute: number) {
  // Insertion order is window order: a new window re-inserts its address at the end.
  const windows = new Map<string, { start: number; failures: number }>();
  const current = (address: string, now: number) => {
    const w = windows.get(address);
    return w && now - w.start < 60_000 ? w : undefined;
  };
  /**
   * Full: forget one address, never all. Of the 16 whose windows began first, the first that is
   * not blocked now (its window over, or under the limit); else the very first.
   */
  const forgetOne = (now: number) => {
    let seen = 0;
    for (const [address, w] of windows) {
      if (now - w.start >= 60_000 || w.failures < perMinute) return windows.delete(address);
      if (++seen === 16) break;
    }
    return windows.delete(windows.keys().next().value as string);
  };
  return {
    /** Seconds until the address may have unknown tokens looked up again, or 0. */
    blockedFor(address: string, now = Date.now()): number {
      const w = current(address, now);
      return w && w.failures >= perMinute ? Math.ceil((w.start + 60_000 - now) / 1000) : 0;
    },
    failed(address: string, now = Date.now()) {
      let w = current(address, now);
      if (!w) {
        w = { start: now, failures: 0 };
        windows.delete(address);
        if (windows.size >= GUARDED_ADDRESSES) forgetOne(now);
        windows.set(address, w);
      }
      w.failures++;
    },
    /** How many addresses it remembers (for tests of its bound). */
    size: () => windows.size,
  };
}

export type FailedAuthGuard = ReturnType<typeof failedAuthGuard>;

export const authenticate = (
  verifier: TokenVerifier,
  opts: {
    optional: boolean;
    clientAddress: (c: import("hono").Context) => string;
    failures?: FailedAuthGuard;
  },
) =>
  createMiddleware<AppEnv>(async (c, next) => {
    if (opts.optional) {
      c.set("principal", anonymous(opts.clientAddress(c)));
      return next();
    }
    const address = opts.failures ? opts.clientAddress(c) : "";
    const wait = opts.failures?.blockedFor(address) ?? 0;
    const header = c.req.header("Authorization");
    if (!header) {
      throw new ApiError(
        "unauthorized",
        "missing Authorization header: send 'Authorization: Bearer <token>'",
        {
          headers: {
            "WWW-Authenticate": 'Bearer realm="lss"',
          },
        },
      );
    }
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    let principal: Principal | null = null;
    try {
      // Past its failed authentications, an address gets no lookup in the store.
      principal = match?.[1] ? await verifier.verify(match[1], { lookup: wait === 0 }) : null;
    } catch (err) {
      // An OIDC token refused (401, with the reason) counts as a failed authentication too.
      if (err instanceof ApiError && err.status === 401) opts.failures?.failed(address);
      throw err;
    }
    if (!principal && wait > 0) {
      throw new ApiError(
        "rate_limited",
        `too many failed authentications from this address; retry in ${wait} s`,
        { extra: { retry_after_seconds: wait }, headers: { "Retry-After": String(wait) } },
      );
    }
    if (!principal) {
      opts.failures?.failed(address);
      throw new ApiError("unauthorized", "unknown or revoked token", {
        headers: {
          "WWW-Authenticate": 'Bearer realm="lss", error="invalid_token"',
        },
      });
    }
    c.set("principal", principal);
    return next();
  });

export const requireScope = (scope: Scope) =>
  createMiddleware<AppEnv>(async (c, next) => {
    if (!c.get("principal").scopes.has(scope)) {
      throw new ApiError("forbidden", `this token lacks the ${scope} scope`);
    }
    return next();
  });

/**
 * shared: counted once across instances; inProcess: this instance's count, for countedInProcess.
 * A renewal or release the store refused (a made-up or stale token) is counted in the shared store
 * too, after the fact: past the limit there, this instance refuses the caller's renewals and
 * releases until the shared window ends, so that a flood of them spread over many instances
 * (serverless isolates each count their own) still meets one limit.
 */
export function rateLimit(shared: RateLimiter, inProcess?: RateLimiter) {
  const blocked = new Map<string, number>();
  const block = (caller: string, until: number) => {
    blocked.delete(caller);
    if (blocked.size >= 10_000) blocked.delete(blocked.keys().next().value as string);
    blocked.set(caller, until);
  };
  const decide = async (caller: string, local: boolean): Promise<RateDecision> => {
    if (!local || !inProcess) return shared.limit(caller);
    const left = (blocked.get(caller) ?? 0) - Date.now();
    if (left > 0) return { allowed: false, limit: shared.perMinute, remaining: 0, retryAfterMs: left };
    blocked.delete(caller);
    return inProcess.limit(caller);
  };
  return createMiddleware<AppEnv>(async (c, next) => {
    const caller = c.get("principal").id;
    const local = inProcess !== undefined && countedInProcess(c.req.method, c.req.path);
    const decision = await decide(caller, local);
    c.header("RateLimit-Limit", String(decision.limit));
    c.header("RateLimit-Remaining", String(Math.max(0, decision.remaining)));
    if (!decision.allowed) {
      const seconds = Math.max(1, Math.ceil(decision.retryAfterMs / 1000));
      throw new ApiError(
        "rate_limited",
        `rate limit of ${decision.limit} requests per minute exceeded; retry in ${seconds} s`,
        { extra: { retry_after_seconds: seconds }, headers: { "Retry-After": String(seconds) } },
      );
    }
    await next();
    if (!local || c.res.status < 400) return;
    // The answer stands whatever the count says; a store that cannot count now blocks nobody.
    const charged = await shared.limit(caller).catch(() => null);
    if (charged && !charged.allowed) block(caller, Date.now() + charged.retryAfterMs);
  });
}
