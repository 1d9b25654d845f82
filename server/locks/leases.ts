/**
 * The lease API's semantics: acquire, renew, release, status. Each call is one store operation;
 * this module only hashes tokens, chooses new ones, and turns outcomes into responses or errors.
 */
import type {
  AcquireRequest,
  GrantResponse,
  HistoryResponse,
  ListResponse,
  ReleaseRequest,
  RenewRequest,
  StatusResponse,
} from "../../src/protocol/lease.js";
import { MAX_HOLDERS } from "../../src/protocol/lease.js";
import { randomId, sha256Hex } from "../crypto.js";
import { ApiError, badRequest } from "../errors.js";
import type { Actor, LockRef, LockStore } from "../stores/types.js";
import {
  credentialError,
  heldError,
  notHeldError,
  queuedError,
  quotaError,
  supersededError,
  unconfirmed,
} from "./errors.js";
import { historyPage, leaseView, lockSummary } from "./views.js";
import { acquireWaiting, inspectWaiting } from "./waiting.js";

/** 122 random bits; randomUUID draws from a pooled buffer, unlike a getRandomValues call per token. */
export const newLeaseToken = randomId;

/**
 * How many store pages (of LISTING_PAGE keys) one listing of a key-restricted caller reads at
 * most, whatever its page size: past a run of 1,000 keys it may not see, the listing ends there
 * (docs/guarantees.md's Limits say so).
 */
export const LISTING_READS = 10;
const LISTING_PAGE = 100;

type AcquireOutcome = Awaited<ReturnType<LockStore["acquire"]>> & { index: number };

/** What the store is asked for: the token's hash, the mode and limit the request means. */
function acquireParams(req: AcquireRequest, token: string, actor: Actor | null) {
  // A limit counts shared holders: it implies shared, and contradicts exclusive.
  if (req.mode === "exclusive" && req.limit !== undefined) {
    throw badRequest("invalid body: limit counts shared holders: leave it out, or send mode: shared", {
      details: [{ in: "body", field: "limit", message: "limit needs mode: shared" }],
    });
  }
  const mode = req.mode ?? (req.limit !== undefined ? "shared" : "exclusive");
  return {
    tokenHash: sha256Hex(token),
    holderId: req.holder_id ?? null,
    reason: req.reason ?? null,
    ttlMs: req.ttl_ms,
    registeredOnly: false,
    mode,
    limit: mode === "shared" ? (req.limit ?? MAX_HOLDERS) : 1,
    priority: req.priority ?? 0,
    group: req.supersede ?? null,
    actor,
  };
}

/** A grant as the answer, anything else as the error that says why not. */
function granted(result: AcquireOutcome, refs: LockRef[], token: string): GrantResponse {
  const ref = refs[result.index] as LockRef;
  switch (result.outcome) {
    case "granted":
    case "retried":
      return { status: "ok", key: ref.key, locked: true, token, ...leaseView(result.lease, result.now) };
    case "held":
      throw heldError(ref.key, result.lease, result.now, result.position);
    case "queued":
      throw queuedError(ref.key, result.position);
    case "superseded":
      throw supersededError(ref.key, result.by);
    case "forbidden":
    case "unknown":
      throw credentialError(ref.key);
    case "quota":
      throw quotaError(ref.namespace, ref.key, result);
    case "limit":
      throw new ApiError(
        "limit_mismatch",
        `"${ref.key}" is held shared with limit ${result.limit}; every shared holder must ask with limit ${result.limit}`,
        { extra: { key: ref.key, limit: result.limit } },
      );
    case "mode_conflict":
      throw new ApiError(
        "mode_conflict",
        `"${ref.key}" is a lock of the /locks API: it has one holder (its key), never shared ones`,
        { extra: { key: ref.key } },
      );
  }
}

/**
 * With wait_ms the request waits in the key's FIFO queue (and answers the moment it is granted);
 * without, it is a single try that never jumps the queue. `signal`: the client left.
 */
async function acquire(
  store: LockStore,
  refs: LockRef[],
  req: AcquireRequest,
  opts: { actor: Actor | null; signal?: AbortSignal },
): Promise<GrantResponse> {
  // A client-chosen token makes the acquire idempotent: a retry returns the same lease.
  const token = req.token ?? newLeaseToken();
  const params = acquireParams(req, token, opts.actor);
  const waitMs = req.wait_ms ?? 0;
  const once = { ...params, queueWindowMs: null };
  const result = await (waitMs > 0
    ? acquireWaiting(store, refs, params, waitMs, opts.signal)
    : refs.length === 1
      ? store.acquire(refs[0] as LockRef, once).then((o) => ({ ...o, index: 0 }))
      : store.acquireAny(refs, once)
  ).catch((err) => {
    // The token is what lets the caller settle it: retry with it (idempotent), or release it.
    const keys = refs.map((r) => r.key).join('", "');
    throw unconfirmed(
      err,
      `the acquire of "${keys}"`,
      { key: refs.length === 1 ? refs[0]?.key : null, token },
      "Retry with this token (the same lease comes back) or release it with this token.",
    );
  });
  return granted(result, refs, token);
}

async function renew(store: LockStore, ref: LockRef, req: RenewRequest): Promise<GrantResponse> {
  const result = await store
    .renew(ref, { tokenHash: sha256Hex(req.token), ttlMs: req.ttl_ms })
    .catch((err) => {
      throw unconfirmed(err, `the renewal of "${ref.key}"`, { key: ref.key }, "Renewing again is harmless.");
    });
  switch (result.outcome) {
    case "renewed":
      return {
        status: "ok",
        key: ref.key,
        locked: true,
        token: req.token,
        ...leaseView(result.lease, result.now),
      };
    case "held":
      throw heldError(ref.key, result.lease, result.now);
    case "not_held":
      throw notHeldError(ref.key);
    case "forbidden":
      throw credentialError(ref.key);
  }
}

/** `force` releases whoever holds the key: the route allows it to admin tokens only. */
async function release(store: LockStore, ref: LockRef, req: ReleaseRequest, actor: Actor | null) {
  const tokenHash = req.token === undefined ? null : sha256Hex(req.token);
  const result = await store.release(ref, { tokenHash, registeredOnly: false, actor }).catch((err) => {
    throw unconfirmed(err, `the release of "${ref.key}"`, { key: ref.key }, "Releasing again is harmless.");
  });
  switch (result.outcome) {
    case "released":
      return { status: "ok" as const, key: ref.key, locked: false as const };
    case "held":
      throw heldError(ref.key, result.lease, result.now);
    case "not_held":
      throw notHeldError(ref.key);
    case "forbidden":
    case "unknown":
      throw credentialError(ref.key);
  }
}

/**
 * A listing of the keys `visible` shows, for a caller that may see only some (an OIDC rule's key
 * patterns): it reads only the ranges those patterns' keys start with (`ranges`, from
 * literalRanges), at most LISTING_READS pages of the store, and pages by the last key it shows,
 * so that a cursor never names a key the caller may not see.
 */
async function listVisible(
  store: LockStore,
  githubUrl: string,
  namespace: string,
  opts: { ranges: string[]; cursor: string | null; limit: number },
  visible: (key: string) => boolean,
): Promise<ListResponse> {
  const shown: ListResponse["locks"] = [];
  let reads = 0;
  let after = opts.cursor;
  for (const range of opts.ranges) {
    // A range wholly before the cursor has been listed already.
    if (after !== null && after > range && !after.startsWith(range)) continue;
    for (let more = true; more; ) {
      if (reads++ === LISTING_READS)
        return { status: "ok", locks: shown, next_cursor: shown.at(-1)?.key ?? null };
      const page = await store.list(namespace, { prefix: range, after, limit: LISTING_PAGE });
      for (const k of page.keys) {
        if (!visible(k.key)) continue;
        shown.push(lockSummary(k, page.now, githubUrl));
        if (shown.length === opts.limit) return { status: "ok", locks: shown, next_cursor: k.key };
      }
      more = page.more;
      after = page.last ?? after;
    }
  }
  return { status: "ok", locks: shown, next_cursor: null };
}

/** With waitMs, answers the moment the key reads free (or when the window ends). */
async function status(
  store: LockStore,
  ref: LockRef,
  waitMs = 0,
  signal?: AbortSignal,
): Promise<StatusResponse> {
  const state = waitMs > 0 ? await inspectWaiting(store, ref, waitMs, signal) : await store.inspect(ref);
  const { lease, now, waiting } = state;
  const more = {
    waiting,
    mode: lease?.mode ?? null,
    limit: state.limit,
    holders: state.holders.map((h) => leaseView(h, now)),
    queue: state.queue.map((w, i) => ({
      position: i + 1,
      mode: w.mode,
      holder_id: w.holderId,
      priority: w.priority ?? 0,
      group: w.group,
      waiting_since: w.since == null ? null : new Date(w.since).toISOString(),
    })),
  };
  if (lease) {
    const { mode: _mode, ...view } = leaseView(lease, now);
    return { status: "ok", key: ref.key, locked: true, ...view, ...more };
  }
  const free = { holder_id: null, reason: null, fencing_token: null, acquired_at: null, expires_at: null };
  return { status: "ok", key: ref.key, locked: false, ...free, expires_in_ms: null, ...more };
}

/**
 * The lease API on a store. `githubUrl`: the origin of the GitHub whose runs holder ids may link
 * to (LSS_GITHUB_SERVER_URL).
 */
export function createLeases(store: LockStore, githubUrl: string) {
  return {
    acquire: (refs: LockRef[], req: AcquireRequest, opts: { actor: Actor | null; signal?: AbortSignal }) =>
      acquire(store, refs, req, opts),

    /** Leave the key's queue (a cancelled waiter): a queue timeout in its history. */
    async leave(ref: LockRef, token: string, who: { holderId: string | null; actor: Actor | null }) {
      await store.leave(ref, sha256Hex(token), who);
      return { status: "ok" as const, key: ref.key };
    },
    renew: (ref: LockRef, req: RenewRequest) => renew(store, ref, req),
    release: (ref: LockRef, req: ReleaseRequest, actor: Actor | null) => release(store, ref, req, actor),

    /** The namespace's keys in order with their state, a page at a time (cursor: the last key seen). */
    async list(
      namespace: string,
      opts: { prefix: string; cursor: string | null; limit: number },
    ): Promise<ListResponse> {
      const page = await store.list(namespace, {
        prefix: opts.prefix,
        after: opts.cursor,
        limit: opts.limit,
      });
      const locks = page.keys.map((k) => lockSummary(k, page.now, githubUrl));
      return { status: "ok", locks, next_cursor: page.more ? page.last : null };
    },
    listVisible: (
      namespace: string,
      opts: { ranges: string[]; cursor: string | null; limit: number },
      visible: (key: string) => boolean,
    ) => listVisible(store, githubUrl, namespace, opts, visible),

    /** The key's history, newest first, a page at a time. */
    async history(ref: LockRef, opts: { cursor: string | null; limit: number }): Promise<HistoryResponse> {
      const { entries } = await store.history(ref);
      return { status: "ok", key: ref.key, ...historyPage(entries, { ...opts, githubUrl }) };
    },
    status: (ref: LockRef, waitMs = 0, signal?: AbortSignal) => status(store, ref, waitMs, signal),
  };
}

export type Leases = ReturnType<typeof createLeases>;
