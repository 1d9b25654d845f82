/** Who holds a lock, as one sentence: shared by the action's logs and summary and the CLI. */
import { formatDuration } from "../protocol/durations.js";
import type { HeldLease } from "./client.js";

export function describeHolder(held: HeldLease | null): string {
  if (!held) return "locked";
  const who = held.holder_id ?? "an anonymous holder";
  const why = held.reason ? ` (${held.reason})` : "";
  const since = held.acquired_at ? ` since ${held.acquired_at}` : "";
  const until =
    held.expires_in_ms == null ? ", until released" : `, expires in ${formatDuration(held.expires_in_ms)}`;
  return `held by ${who}${why}${since}${until}`;
}
