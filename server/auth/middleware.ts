/** Who is calling (authenticate), may they (requireScope), and how often (rateLimit). */
import { createMiddleware } from "hono/factory";
import { ApiError } from "../errors.js";
import type { Scope } from "../stores/types.js";
import type { RateLimiter } from "./rate-limit.js";
import { DEFAULT_NAMESPACE, type Principal, type TokenVerifier } from "./tokens.js";

export type AppEnv = { Variables: { principal: Principal } };

/** Who an unauthenticated caller of an open route is: the default namespace, limited by address. */
const anonymous = (address: string): Principal => ({
  id: `addr:${address}`,
  namespace: DEFAULT_NAMESPACE,
  scopes: new Set<Scope>(["locks:read", "locks:write"]),
});

export const authenticate = (
  verifier: TokenVerifier,
  opts: { optional: boolean; clientAddress: (c: import("hono").Context) => string },
) =>
  createMiddleware<AppEnv>(async (c, next) => {
    if (opts.optional) {
      c.set("principal", anonymous(opts.clientAddress(c)));
      return next();
    }
    const header = c.req.header("Authorization");
    if (!header) {
      throw new ApiError(
        401,
        "unauthorized",
        "missing Authorization header: send 'Authorization: Bearer <token>'",
        {},
        {
          "WWW-Authenticate": 'Bearer realm="lss"',
        },
      );
    }
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    const principal = match?.[1] ? await verifier.verify(match[1]) : null;
    if (!principal) {
      throw new ApiError(
        401,
        "unauthorized",
        "unknown or revoked token",
        {},
        {
          "WWW-Authenticate": 'Bearer realm="lss", error="invalid_token"',
        },
      );
    }
    c.set("principal", principal);
    return next();
  });

export const requireScope = (scope: Scope) =>
  createMiddleware<AppEnv>(async (c, next) => {
    if (!c.var.principal.scopes.has(scope)) {
      throw new ApiError(403, "forbidden", `this token lacks the ${scope} scope`);
    }
    return next();
  });

export const rateLimit = (limiter: RateLimiter) =>
  createMiddleware<AppEnv>(async (c, next) => {
    const decision = await limiter.limit(c.var.principal.id);
    c.header("RateLimit-Limit", String(decision.limit));
    c.header("RateLimit-Remaining", String(Math.max(0, decision.remaining)));
    if (!decision.allowed) {
      const seconds = Math.max(1, Math.ceil(decision.retryAfterMs / 1000));
      throw new ApiError(
        429,
        "rate_limited",
        `rate limit of ${decision.limit} requests per minute exceeded; retry in ${seconds} s`,
        { retry_after_seconds: seconds },
        { "Retry-After": String(seconds) },
      );
    }
    return next();
  });
