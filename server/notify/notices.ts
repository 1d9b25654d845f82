/**
 * A lock event as a webhook tells it: the notice, its JSON payload, and the Slack text of it.
 */
import { formatDuration } from "../../src/protocol/durations.js";
import type { NotifyEvent } from "./subscriptions.js";

export interface Notice {
  /** The same event noticed twice (two instances, a retried request) is one notice. */
  id: string;
  event: NotifyEvent;
  namespace: string;
  key: string;
  /** When it happened, by the store's clock (ms). */
  at: number;
  holderId: string | null;
  reason: string | null;
  fencingToken: number | null;
  /** released, forced_release, expired, held_longer_than: how long it was held. */
  heldMs?: number | null;
  /** queue_longer_than: how long the first waiter has waited. */
  waitedMs?: number | null;
  /** superseded: the newer waiter's holder. */
  supersededBy?: string | null;
  /** held_longer_than, queue_longer_than: the subscription's threshold. */
  thresholdMs?: number | null;
  /** Only for this subscription (a threshold of its own). */
  subscriptionId?: string;
}

/** The JSON body of a delivery. */
export const payloadOf = (n: Notice, deliveryId: string) => ({
  id: deliveryId,
  event: n.event,
  namespace: n.namespace,
  key: n.key,
  at: new Date(n.at).toISOString(),
  holder_id: n.holderId,
  reason: n.reason,
  fencing_token: n.fencingToken,
  held_ms: n.heldMs ?? null,
  waited_ms: n.waitedMs ?? null,
  superseded_by: n.supersededBy ?? null,
  threshold_ms: n.thresholdMs ?? null,
});

/** Slack's mrkdwn reserves &, < and >. */
const slack = (text: string) => text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");

/** One line for a Slack incoming webhook ({"text": …}). */
export function slackText(n: Notice): string {
  const key = `\`${slack(n.key)}\``;
  const who = slack(n.holderId ?? "an anonymous holder");
  const why = n.reason ? ` (${slack(n.reason)})` : "";
  const held = n.heldMs != null ? ` after ${formatDuration(n.heldMs)}` : "";
  switch (n.event) {
    case "granted":
      return `LSS: ${key} granted to ${who}${why} after waiting (fencing token ${n.fencingToken})`;
    case "released":
      return `LSS: ${key} released by ${who}${held}`;
    case "forced_release":
      return `LSS: ${key} force-released: it was held by ${who}${why}${held}`;
    case "expired":
      return `LSS: ${key}: the lease of ${who}${why} expired${held} (its holder stopped renewing it)`;
    case "superseded":
      return `LSS: ${key}: ${who} gave its place in the queue to ${slack(n.supersededBy ?? "a newer waiter")}, a newer run of its group`;
    case "held_longer_than":
      return `LSS: ${key} has been held by ${who}${why} for ${formatDuration(n.heldMs ?? 0)} (longer than ${formatDuration(n.thresholdMs ?? 0)})`;
    case "queue_longer_than":
      return `LSS: ${key}: ${who} has waited ${formatDuration(n.waitedMs ?? 0)} in its queue (longer than ${formatDuration(n.thresholdMs ?? 0)})`;
  }
}
