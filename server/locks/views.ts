/** Store results → the JSON views of the lease API (leases, listings, histories); errors are in errors.ts. */
import type { HistoryEvent, LeaseView, LockSummary } from "../../src/protocol/lease.js";
import type { HistoryEntry, KeySummary, Lease } from "../stores/types.js";

const iso = (ms: number) => new Date(ms).toISOString();

export const leaseView = (lease: Lease, now: number): LeaseView => ({
  mode: lease.mode,
  holder_id: lease.holderId,
  reason: lease.reason,
  fencing_token: lease.fencingToken,
  acquired_at: iso(lease.acquiredAt),
  expires_at: lease.expiresAt == null ? null : iso(lease.expiresAt),
  expires_in_ms: lease.expiresAt == null ? null : Math.max(0, lease.expiresAt - now),
});

/** Addresses in a holder id that look like a workflow run's (the action's default holder ends with one). */
const RUN_URL = /https?:\/\/[^\s/]+\/[^\s/]+\/[^\s/]+\/actions\/runs\/\d+(?:\/attempts\/\d+)?(?![\w/])/g;

/**
 * The workflow run a holder id names, when it is one of the configured GitHub's (`githubUrl`, an
 * origin): whoever takes a lock writes its holder id, and another host's address would become a
 * "run" link on the dashboard and in the API.
 */
export const runUrlOf = (holderId: string | null, githubUrl: string): string | null => {
  for (const [text] of (holderId ?? "").matchAll(RUN_URL)) {
    const url = URL.canParse(text) ? new URL(text) : null;
    // As every parser reads it: no user part or backslash that hosts differ on, then the host.
    if (!url || url.username || url.password || text.includes("\\") || url.origin !== githubUrl) continue;
    if (RUN_PATH.test(url.pathname)) return url.href;
  }
  return null;
};
const RUN_PATH = /^\/[^/]+\/[^/]+\/actions\/runs\/\d+(?:\/attempts\/\d+)?$/;

export const lockSummary = (k: KeySummary, now: number, githubUrl: string): LockSummary => ({
  key: k.key,
  locked: k.lease != null,
  mode: k.lease?.mode ?? null,
  holder_id: k.lease?.holderId ?? null,
  reason: k.lease?.reason ?? null,
  fencing_token: k.lease?.fencingToken ?? null,
  acquired_at: k.lease ? iso(k.lease.acquiredAt) : null,
  expires_at: k.lease?.expiresAt == null ? null : iso(k.lease.expiresAt),
  expires_in_ms: k.lease?.expiresAt == null ? null : Math.max(0, k.lease.expiresAt - now),
  holders: k.holders,
  waiting: k.waiting,
  registered: k.registered,
  run_url: runUrlOf(k.lease?.holderId ?? null, githubUrl),
});

const historyEvent = (e: HistoryEntry, githubUrl: string): HistoryEvent => ({
  event: e.kind,
  at: iso(e.at),
  holder_id: e.holderId,
  reason: e.reason,
  mode: e.mode,
  fencing_token: e.fencingToken,
  held_ms: e.heldMs,
  actor: e.actor ? { token_id: e.actor.id, token_name: e.actor.name } : null,
  run_url: runUrlOf(e.holderId, githubUrl),
  ...(e.kind === "superseded" ? { superseded_by: e.supersededBy ?? null } : {}),
});

/** A history cursor: "<at ms>.<how many events at that time were on earlier pages>". */
export const HISTORY_CURSOR = /^(\d{1,15})\.(\d{1,6})$/;

/**
 * One page of a key's history, newest first. Events are ordered by time (an expiry is written when
 * the key is next granted, at the time the lease ended), and a cursor names a time and how many of
 * that time's events were seen, so that events recorded between two pages do not shift them.
 */
export function historyPage(
  entries: HistoryEntry[],
  opts: { cursor: string | null; limit: number; githubUrl: string },
): { events: HistoryEvent[]; next_cursor: string | null } {
  const sorted = entries
    .map((e, i) => ({ e, i }))
    .sort((a, b) => b.e.at - a.e.at || a.i - b.i)
    .map(({ e }) => e);
  let start = 0;
  const m = opts.cursor ? HISTORY_CURSOR.exec(opts.cursor) : null;
  if (m) {
    const at = Number(m[1]);
    let skip = Number(m[2]);
    while (start < sorted.length) {
      const e = sorted[start] as HistoryEntry;
      if (e.at > at || (e.at === at && skip-- > 0)) start++;
      else break;
    }
  }
  const page = sorted.slice(start, start + opts.limit);
  const last = page.at(-1);
  let next: string | null = null;
  if (last && start + page.length < sorted.length) {
    const end = start + page.length;
    let same = 0;
    for (let i = end - 1; i >= 0 && (sorted[i] as HistoryEntry).at === last.at; i--) same++;
    next = `${last.at}.${same}`;
  }
  return { events: page.map((e) => historyEvent(e, opts.githubUrl)), next_cursor: next };
}
