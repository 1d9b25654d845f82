/** The errors both APIs answer lock outcomes with: held, queued, not held, credentials, quotas, unconfirmed writes. */

import { OPEN_NAMESPACE } from "../auth/types.js";
import { ApiError } from "../errors.js";
import { type Lease, type QuotaOutcome, StoreUnavailableError } from "../stores/types.js";
import { leaseView } from "./views.js";

/** "by ci-7 (deploy) for another 30 s": the holder of a lease, in the words of a 409. */
const holderSentence = (lease: Lease, now: number) => {
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
  new ApiError("lock_held", `"${key}" is held ${holderSentence(lease, now)}`, {
    extra: {
      key,
      locked: true,
      ...leaseView(lease, now),
      position: position || null,
    },
  });

/** 409: free, but earlier waiters are served first. */
export const queuedError = (key: string, position: number) =>
  new ApiError(
    "queued",
    `"${key}" goes to earlier waiters first${position ? `; you are number ${position}` : ""}`,
    {
      extra: {
        key,
        locked: false,
        position: position || null,
      },
    },
  );

/** 409: a newer waiter of the caller's supersede group took its place in the queue. */
export const supersededError = (key: string, by: string | null) =>
  new ApiError(
    "superseded",
    `a newer waiter of your group (${by ? `held by ${by}` : "with no holder id"}) took your place in the queue of "${key}"`,
    { extra: { key, superseded_by: by } },
  );

export const notHeldError = (key: string) =>
  new ApiError("not_held", `the lease on "${key}" has expired or was released; acquire it again`, {
    extra: {
      key,
      locked: false,
    },
  });

export const credentialError = (key: string) =>
  new ApiError(
    "forbidden",
    `"${key}" is a state lock of the /locks API: only its lock key (k) may lock or unlock it`,
  );

/** 403: the store's bounds (LSS_MAX_LOCKS, LSS_MAX_WAITERS) would be passed; naming which and how to fix it. */
export const quotaError = (namespace: string, key: string, quota: QuotaOutcome) =>
  new ApiError(
    "quota_exceeded",
    quota.limit === "locks"
      ? `namespace "${namespace}" already has ${quota.max} live locks, the most ` +
          `${namespace === OPEN_NAMESPACE ? "LSS_OPEN_MAX_LOCKS" : "LSS_MAX_LOCKS"} allows: ` +
          "release some (or let them expire), or ask the operator to raise it"
      : `${quota.max} waiters already queue for "${key}", the most LSS_MAX_WAITERS allows`,
    { extra: { limit: quota.limit, max: quota.max } },
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
    "outcome_unknown",
    `the lock store did not confirm ${what}${err.hint ? ` (${err.hint.message})` : ""}: it may have happened. ${advice}`,
    { extra, headers: { "Retry-After": "1" } },
  );
}
