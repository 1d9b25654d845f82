/**
 * Where a caller acts: its token's namespace, or, for a token with the admin scope, the namespace
 * it names (the API's LSS-Namespace header, the dashboard's namespace switch). An admin may mint a
 * token of any namespace already, so reaching one directly grants nothing new; any other token
 * naming a namespace not its own is refused, never quietly sent to its own.
 */
import { NAMESPACE_HEADER } from "../../src/protocol/paths.js";
import { ApiError } from "../errors.js";
import { NAMESPACE_PATTERN, type Principal } from "./types.js";

export const NAMESPACE_RULE = "1–63 lowercase letters, digits, '_' or '-', starting with a letter or digit";

/** The principal acting in `requested` (absent or empty: where it is). */
export function actingIn(principal: Principal, requested: string | undefined): Principal {
  if (!requested || requested === principal.namespace) return principal;
  if (!NAMESPACE_PATTERN.test(requested))
    throw new ApiError("bad_request", `${NAMESPACE_HEADER} must be ${NAMESPACE_RULE}`);
  if (!principal.scopes.has("admin")) {
    throw new ApiError(
      "forbidden",
      `this token acts in namespace ${principal.namespace}: only a token with the admin scope may name another (${NAMESPACE_HEADER}: ${requested})`,
    );
  }
  return { ...principal, namespace: requested };
}
