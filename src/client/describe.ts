/** Who holds a lock, as one sentence: shared by the action's logs and summary and the CLI. */
import { formatDuration } from "../protocol/durations.js";
import type { HeldLease } from "./client.js";
import type { WaitProgress } from "./wait.js";

export function describeHolder(held: HeldLease | null): string {
  if (!held) return "locked";
  // A 409 "queued" names no lease (a real holder, even anonymous, has a grant time and a token).
  if (held.fencing_token == null && held.acquired_at == null) return "free, but earlier waiters go first";
  const who = held.holder_id ?? "an anonymous holder";
  const why = held.reason ? ` (${held.reason})` : "";
  const since = held.acquired_at ? ` since ${held.acquired_at}` : "";
  const until =
    held.expires_in_ms == null ? ", until released" : `, expires in ${formatDuration(held.expires_in_ms)}`;
  return `held by ${who}${why}${since}${until}`;
}

/**
 * "waiting for qa-env: held by … since …, expires in 1m; number 2 in the queue. Waited 5s of 10m."
 * The action's log line and the CLI's progress line.
 */
export function waitingText(what: string, timeoutMs: number, p: WaitProgress): string {
  const place = p.holder?.position ? `; number ${p.holder.position} in the queue` : "";
  return `waiting for ${what}: ${describeHolder(p.holder)}${place}. Waited ${formatDuration(p.waitedMs)} of ${formatDuration(timeoutMs)}.`;
}

/** "timed out after 10m waiting for qa-env: held by …": the action's failure and the CLI's. */
export const timedOutText = (what: string, timeoutMs: number, held: HeldLease | null) =>
  `timed out after ${formatDuration(timeoutMs)} waiting for ${what}: ${describeHolder(held)}`;

/** The text with its first letter upper-cased, to begin a sentence. */
export const sentence = (text: string) => text.charAt(0).toUpperCase() + text.slice(1);

/** "superseded on qa-env: a newer waiter of its group (acme/web run 12) took its place": action and CLI. */
export const supersededText = (what: string, by: string | null) =>
  `superseded on ${what}: a newer waiter of its group (${by ?? "no holder id"}) took its place in the queue`;
