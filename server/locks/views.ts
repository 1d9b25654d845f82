/** Store results → the JSON views of the lease API and the errors both APIs share. */
import type { HistoryEvent, LeaseView, LockSummary } from "../../src/protocol/lease.js";
import { ApiError } from "../errors.js";
import {
  type HistoryEntry,
  type KeySummary,
  type Lease,
  type QuotaOutcome,
  StoreUnavailableError,
} from "../stores/types.js";

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

/** A workflow run's address in a holder id (the action's default holder ends with one). */
const RUN_URL = /https?:\/\/[^\s]+\/actions\/runs\/\d+(?:\/attempts\/\d+)?/;
export const runUrlOf = (holderId: string | null) => (holderId && RUN_URL.exec(holderId)?.[0]) || null;

export const lockSummary = (k: KeySummary, now: number): LockSummary => ({
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
  run_url: runUrlOf(k.lease?.holderId ?? null),
});

const historyEvent = (e: HistoryEntry): HistoryEvent => ({
  event: e.kind,
  at: iso(e.at),
  holder_id: e.holderId,
  reason: e.reason,
  mode: e.mode,
  fencing_token: e.fencingToken,
  held_ms: e.heldMs,
  actor: e.actor ? { token_id: e.actor.id, token_name: e.actor.name } : null,
  run_url: runUrlOf(e.holderId),
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
  _now: number,
  opts: { cursor: string | null; limit: number },
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
  return { events: page.map(historyEvent), next_cursor: next };
}

const describeHolder = (lease: Lease, now: number) => {
  const who = lease.holderId ? `by ${lease.holderId}` : "by an anonymous holder";
  const until =
    lease.expiresAt == null ? "until released" : `for another ${Math.ceil((lease.expiresAt - now) / 1000)} s`;
  const why = lease.reason ? ` (${lease.reason})` : "";
  // Of a shared key, the holder named is the one whose lease decides the wait; a status lists all.
  const shared = lease.mode === "shared" ? "shared (its status lists every holder), " : "";
  return `${shared}${who}${why} ${until}`;
};

/** 409 with the holder (and the caller's place in the queue), so that a waiter can say whom it waits for. */
export const heldError = (key: string, lease: Lease, now: number, position = 0) =>
  new ApiError(409, "lock_held", `"${key}" is held ${describeHolder(lease, now)}`, {
    key,
    locked: true,
    ...leaseView(lease, now),
    position: position || null,
  });

/** 409: free, but earlier waiters are served first. */
export const queuedError = (key: string, position: number) =>
  new ApiError(
    409,
    "queued",
    `"${key}" goes to earlier waiters first${position ? `; you are number ${position}` : ""}`,
    {
      key,
      locked: false,
      position: position || null,
    },
  );

export const notHeldError = (key: string) =>
  new ApiError(409, "not_held", `the lease on "${key}" has expired or was released; acquire it again`, {
    key,
    locked: false,
  });

export const credentialError = (key: string) =>
  new ApiError(
    403,
    "forbidden",
    `"${key}" is a state lock of the /locks API: only its lock key (k) may lock or unlock it`,
  );

/** 403: the store's bounds (LSS_MAX_LOCKS, LSS_MAX_WAITERS) would be passed; naming which and how to fix it. */
export const quotaError = (namespace: string, key: string, quota: QuotaOutcome) =>
  new ApiError(
    403,
    "quota_exceeded",
    quota.limit === "locks"
      ? `namespace "${namespace}" already has ${quota.max} locks, the most LSS_MAX_LOCKS allows: ` +
          "release some (or let them expire), or ask the operator to raise it"
      : `${quota.max} waiters already queue for "${key}", the most LSS_MAX_WAITERS allows`,
    { limit: quota.limit, max: quota.max },
  );

/**
 * A write the store may have applied without answering (it timed out after the script was sent):
 * 503 outcome_unknown, never "nothing was changed", with what the caller needs to settle it (the
 * lease token, the new lock's id and key). Any other error passes through unchanged.
 */
export function unconfirmed(
  err: unknown,
  what: string,
  extra: Record<string, unknown>,
  advice: string,
): unknown {
  if (!(err instanceof StoreUnavailableError) || !err.maybeApplied) return err;
  return new ApiError(
    503,
    "outcome_unknown",
    `the lock store did not confirm ${what}: it may have happened. ${advice}`,
    extra,
    { "Retry-After": "1" },
  );
}
