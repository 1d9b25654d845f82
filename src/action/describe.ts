/** Human sentences about locks and failures, shared by log lines, failures and the job summary. */

import type { HeldLease } from "../client/client.js";
import { LssError } from "../client/errors.js";
import { formatDuration } from "../protocol/durations.js";
import { Input } from "./names.js";

export function describeHolder(held: HeldLease | null): string {
  if (!held) return "locked";
  const who = held.holder_id ?? "an anonymous holder";
  const why = held.reason ? ` (${held.reason})` : "";
  const since = held.acquired_at ? ` since ${held.acquired_at}` : "";
  const until =
    held.expires_in_ms == null ? ", until released" : `, expires in ${formatDuration(held.expires_in_ms)}`;
  return `held by ${who}${why}${since}${until}`;
}

/** An error as a one-line failure that names the input to fix when there is one. */
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
