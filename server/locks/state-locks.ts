/**
 * The Lock State Service API (`/locks`) on the lease engine. A state lock is a registered key
 * `locks/<id>` whose credential is its lock key `k`; locking takes a lease whose token is `k`,
 * unlocking releases it. So the two APIs share one engine and one key space, and a state lock can
 * be inspected (holder, expiry, fencing token) through the lease API too.
 */
import { type CreatedResponse, STATE_LOCK_KEY_PREFIX } from "../../src/protocol/state-locks.js";
import { randomBase64Url, randomUuid, sha256Hex } from "../crypto.js";
import { ApiError } from "../errors.js";
import type { Actor, Lease, LockRef, LockStore } from "../stores/types.js";
import { credentialError, heldError, queuedError, quotaError, unconfirmed } from "./errors.js";

export type StateLockCheck =
  | { state: "unlocked" }
  | { state: "unknown" }
  | { state: "locked"; lease: Lease; now: number };

const refOf = (namespace: string, id: string): LockRef => ({
  namespace,
  key: `${STATE_LOCK_KEY_PREFIX}${id}`,
});

const unknownLock = (id: string) => new ApiError("not_found", `no lock with id "${id}"`);

async function create(
  store: LockStore,
  namespace: string,
  opts: { locked: boolean; ttlSeconds: number | null; credential: string | null; actor: Actor | null },
): Promise<CreatedResponse> {
  const id = randomUuid();
  const credential = opts.credential ?? randomBase64Url(18);
  const lock = opts.locked
    ? { ttlMs: opts.ttlSeconds == null ? null : opts.ttlSeconds * 1000, holderId: null }
    : null;
  const ref = refOf(namespace, id);
  const result = await store
    .register(ref, { credentialHash: sha256Hex(credential), lock, actor: opts.actor })
    .catch((err) => {
      throw unconfirmed(
        err,
        "the new lock",
        { id, key: credential, lockId: id, lockKey: credential },
        "It may exist: its id and key are in this answer.",
      );
    });
  // A fresh random UUID cannot exist already; if it ever did, nothing was overwritten.
  if (result.outcome === "exists") throw new ApiError("internal", "lock id collision; try again");
  if (result.outcome === "quota") throw quotaError(namespace, ref.key, result);
  const expiresAt = result.lease?.expiresAt;
  const locked = result.lease != null;
  return {
    id,
    key: credential,
    locked,
    expires_at: expiresAt == null ? null : new Date(expiresAt).toISOString(),
    lockId: id,
    lockKey: credential,
    isLocked: locked,
  };
}

async function check(store: LockStore, namespace: string, id: string): Promise<StateLockCheck> {
  const { lease, registered, now } = await store.inspect(refOf(namespace, id), { waiting: false });
  if (!registered) return { state: "unknown" };
  return lease ? { state: "locked", lease, now } : { state: "unlocked" };
}

async function lock(
  store: LockStore,
  namespace: string,
  id: string,
  credential: string,
  ttlSeconds: number | null,
  actor: Actor | null,
): Promise<void> {
  const ref = refOf(namespace, id);
  const result = await store
    .acquire(ref, {
      tokenHash: sha256Hex(credential),
      holderId: null,
      reason: null,
      ttlMs: ttlSeconds == null ? null : ttlSeconds * 1000,
      registeredOnly: true,
      queueWindowMs: null,
      mode: "exclusive",
      limit: 1,
      actor,
    })
    .catch((err) => {
      throw unconfirmed(err, `locking lock "${id}"`, { id }, "Locking again is harmless.");
    });
  switch (result.outcome) {
    case "granted":
    case "retried": // locking a locked lock sets its new expiry
      return;
    case "unknown":
      throw unknownLock(id);
    case "forbidden":
      throw credentialError(ref.key);
    case "held": // only the credential can hold a state lock, so this is not expected
      throw heldError(ref.key, result.lease, result.now);
    case "queued":
      throw queuedError(ref.key, result.position);
    case "quota":
      throw quotaError(namespace, ref.key, result);
  }
}

async function unlock(
  store: LockStore,
  namespace: string,
  id: string,
  credential: string,
  actor: Actor | null,
): Promise<void> {
  const ref = refOf(namespace, id);
  const result = await store
    .release(ref, { tokenHash: sha256Hex(credential), registeredOnly: true, actor })
    .catch((err) => {
      throw unconfirmed(err, `unlocking lock "${id}"`, { id }, "Unlocking again is harmless.");
    });
  switch (result.outcome) {
    case "released":
    case "not_held": // unlocking an unlocked lock is a no-op
      return;
    case "unknown":
      throw unknownLock(id);
    case "forbidden":
      throw credentialError(ref.key);
    case "held":
      throw heldError(ref.key, result.lease, result.now);
  }
}

/** The /locks API on a store. */
export function createStateLocks(store: LockStore) {
  return {
    create: (namespace: string, opts: Parameters<typeof create>[2]) => create(store, namespace, opts),
    check: (namespace: string, id: string) => check(store, namespace, id),
    lock: (
      namespace: string,
      id: string,
      credential: string,
      ttlSeconds: number | null,
      actor: Actor | null,
    ) => lock(store, namespace, id, credential, ttlSeconds, actor),
    unlock: (namespace: string, id: string, credential: string, actor: Actor | null) =>
      unlock(store, namespace, id, credential, actor),
  };
}

export type StateLocks = ReturnType<typeof createStateLocks>;
