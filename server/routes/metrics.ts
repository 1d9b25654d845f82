/**
 * GET /metrics: this instance's Prometheus metrics (server/metrics.ts), for a bearer token with the
 * admin scope or LSS_METRICS_TOKEN (a token a scraper may hold without any power over locks).
 */
import { createRoute, z } from "@hono/zod-openapi";
import type { MiddlewareHandler } from "hono";
import { PATHS } from "../../src/protocol/paths.js";
import { authenticate, type FailedAuthGuard } from "../auth/middleware.js";
import type { Principal, TokenVerifier } from "../auth/types.js";
import { constantTimeEqual, sha256Hex } from "../crypto.js";
import { ApiError } from "../errors.js";
import type { Metrics } from "../metrics.js";
import { errorResponses, type Router } from "./router.js";

/** Who LSS_METRICS_TOKEN is: nobody's namespace, no scope: it may read /metrics and nothing else. */
const SCRAPER: Principal = { id: "metrics", name: "metrics", namespace: "", scopes: new Set() };

/** The verifier of /metrics: LSS_METRICS_TOKEN (compared as hashes, in constant time), else any API token. */
function metricsVerifier(verifier: TokenVerifier, metricsToken: string | null): TokenVerifier {
  const hash = metricsToken ? sha256Hex(metricsToken) : null;
  return {
    async verify(bearer, opts) {
      if (hash && constantTimeEqual(sha256Hex(bearer), hash)) return SCRAPER;
      return verifier.verify(bearer, opts);
    },
    verifyStored: (credential) => verifier.verifyStored(credential),
    forget: (id) => verifier.forget(id),
  };
}

export function registerMetrics(
  app: Router,
  metrics: Metrics,
  opts: {
    verifier: TokenVerifier;
    metricsToken: string | null;
    clientAddress: Parameters<typeof authenticate>[1]["clientAddress"];
    failures?: FailedAuthGuard;
    limited: MiddlewareHandler[];
  },
) {
  const auth = authenticate(metricsVerifier(opts.verifier, opts.metricsToken), {
    optional: false,
    clientAddress: opts.clientAddress,
    failures: opts.failures,
  });
  const allowed: MiddlewareHandler = async (c, next) => {
    const principal = c.get("principal") as Principal;
    if (principal !== SCRAPER && !principal.scopes.has("admin")) {
      throw new ApiError("forbidden", "/metrics needs a token with the admin scope, or LSS_METRICS_TOKEN");
    }
    return next();
  };

  const route = createRoute({
    method: "get",
    path: PATHS.metrics,
    tags: ["Health"],
    summary: "This instance's Prometheus metrics (admin scope or LSS_METRICS_TOKEN)",
    middleware: [auth, ...opts.limited, allowed] as const,
    responses: {
      200: {
        description: "Prometheus text exposition format",
        content: { "text/plain": { schema: z.string() } },
      },
      ...errorResponses([401, "No token, or an unknown one"], [403, "A token without the admin scope"]),
    },
  });

  return app.openapi(route, async (c) =>
    c.text(await metrics.render(), 200, { "Content-Type": metrics.contentType, "Cache-Control": "no-store" }),
  );
}
