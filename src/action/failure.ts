/** A failure as one line for the step's log, naming the input to fix when there is one. */
import { LssError } from "../client/errors.js";
import { Input } from "./names.js";

export function describeFailure(err: unknown, url: string): string {
  if (!(err instanceof LssError)) return err instanceof Error ? err.message : String(err);
  switch (err.code) {
    case "unreachable":
      return `${err.message}. Check input '${Input.url}' (${url}) and that the server is up.`;
    case "unauthorized":
      return `LSS refused the API token: ${err.message}. Check input '${Input.token}'.`;
    case "forbidden":
      return `LSS refused: ${err.message}. Check input '${Input.token}' and its scopes.`;
    default:
      return err.message;
  }
}
