/**
 * Where a caller acts: its token's namespace, or, for a token with the admin scope, the namespace
 * it names (the API's LSS-Namespace header, the dashboard's namespace switch). An admin may mint a
 * token of any namespace already, so reaching one directly grants nothing new; any other caller
 * naming a namespace not its own is refused, never quietly sent to its own.
 */
import { createMiddleware } from "hono/factory";
import { NAMESPACE_HEADER, NAMESPACE_PATTERN, NAMESPACE_RULE } from "../../src/protocol/namespace.js";
import { ApiError } from "../errors.js";
import type { AppEnv } from "./middleware.js";
import type { Principal } from "./types.js";

/** The principal acting in `requested` (absent or empty: where it is). */
export function actingIn(principal: Principal, requested: string | undefined): Principal {
  if (!requested || requested === principal.namespace) return principal;
  if (!NAMESPACE_PATTERN.test(requested))
    throw new ApiError("bad_request", `${NAMESPACE_HEADER} must be ${NAMESPACE_RULE}`);
  if (principal.anonymous) {
    throw new ApiError(
      "forbidden",
      `this server's /locks API is open: it takes no token and acts in namespace ${principal.namespace}, so ${NAMESPACE_HEADER} cannot name another`,
    );
  }
  if (!principal.scopes.has("admin")) {
    throw new ApiError(
      "forbidden",
      `this token acts in namespace ${principal.namespace}: only a token with the admin scope may name another (${NAMESPACE_HEADER}: ${requested})`,
    );
  }
  return { ...principal, namespace: requested };
}

/** After authentication and the rate limit: the request acts where its LSS-Namespace header says. */
export const namedNamespace = createMiddleware<AppEnv>(async (c, next) => {
  c.set("principal", actingIn(c.get("principal"), c.req.header(NAMESPACE_HEADER)));
  return next();
});
