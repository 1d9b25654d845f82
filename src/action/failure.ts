/** A failure as one line for the step's log, naming the input to fix when there is one. */
import { LssError } from "../client/errors.js";
import { NO_OIDC_POLICY } from "../protocol/error-codes.js";
import type { Inputs } from "./inputs.js";
import { Input } from "./names.js";

export function describeFailure(err: unknown, inputs: Pick<Inputs, "url" | "auth">): string {
  if (!(err instanceof LssError)) return err instanceof Error ? err.message : String(err);
  const oidc = inputs.auth.kind === "oidc";
  switch (err.code) {
    case "unreachable":
      return `${err.message}. Check input '${Input.url}' (${inputs.url}) and that the server is up.`;
    case "token_unavailable":
      return `Could not get the job's GitHub OIDC token: ${err.message.replace(/^could not get a token: /, "")}.`;
    case "unauthorized":
      // The client's message begins with the operation ("acquire qa-env: …").
      if (oidc && err.message.includes(NO_OIDC_POLICY))
        return `LSS refused the job's GitHub OIDC token: ${err.message}. Until it does, give the action an API token (input '${Input.token}').`;
      return oidc
        ? `LSS refused the job's GitHub OIDC token: ${err.message}. Check that the server trusts this issuer and audience (input '${Input.audience}', default the origin of '${Input.url}').`
        : `LSS refused the API token: ${err.message}. Check input '${Input.token}'.`;
    case "forbidden":
      return oidc
        ? `LSS refused: ${err.message}. The server's OIDC policy decides what each workflow may do.`
        : `LSS refused: ${err.message}. Check input '${Input.token}' and its scopes.`;
    case "bad_request":
      // The server's own bound, lower than the action's (7 days): say which inputs ask for it.
      if (/ttl_ms must be at most/.test(err.message))
        return `${err.message}. Ask for less with input '${Input.hold}' or '${Input.ttl}', or have the server's operator raise LSS_MAX_TTL_MS (up to 7 days).`;
      return err.message;
    default:
      return err.message;
  }
}
