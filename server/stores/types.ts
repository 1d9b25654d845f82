/**
 * The store contract: the five lock operations every store implements atomically (one Redis round
 * trip each), plus the token records of auth. Stores decide only what must be decided atomically
 * against the store's clock; everything else (validation, hashing, HTTP) lives in `locks/`.
 */
import type { SessionStore, TokenStore } from "../auth/types.js";

/** Which lock: keys of different namespaces never meet. */
export interface LockRef {
  namespace: string;
  key: string;
}

/** exclusive: the key's only holder; shared: one of up to `limit` holders at once. */
export type LockMode = "exclusive" | "shared";

/** A live lease as anyone may see it. Times are milliseconds since the epoch by the store's clock. */
export interface Lease {
  mode: LockMode;
  holderId: string | null;
  reason: string | null;
  fencingToken: number;
  acquiredAt: number;
  /** null: held until released. */
  expiresAt: number | null;
}

/** The API token behind an operation, as a key's history names it: never its secret. */
export interface Actor {
  id: string;
  name: string | null;
}

export type HistoryKind =
  | "granted"
  | "extended"
  | "released"
  | "expired"
  | "forced_release"
  | "queue_timeout"
  | "superseded";

/** One event of a key's history (see HistoryEvent in the protocol). Times: ms by the store's clock. */
export interface HistoryEntry {
  kind: HistoryKind;
  at: number;
  holderId: string | null;
  reason: string | null;
  mode: LockMode | null;
  fencingToken: number | null;
  /** For a lease that ended: how long it was held. */
  heldMs: number | null;
  actor: Actor | null;
  /** superseded: the newer waiter's holder id. */
  supersededBy?: string | null;
}

/** What a history read returns of the events it finds: the newest historyPerKey, none past retention. */
export const keptHistory = (entries: HistoryEntry[], now: number, limits: StoreLimits) =>
  entries.filter((e) => e.at > now - limits.historyRetentionMs).slice(0, limits.historyPerKey);

/** A key of a namespace in the listing. */
export interface KeySummary {
  key: string;
  /** The exclusive lease, or the shared lease that ends last; null when free. */
  lease: Lease | null;
  holders: number;
  waiting: number;
  registered: boolean;
}

/** Every outcome carries the store's clock reading, so expiry is judged and reported by one clock. */
type At = { now: number };

export type AcquireOutcome = At &
  /** expired: how many leases on the key this grant found ended by expiry (for the metrics). */

  /** queued: it waited in the queue for it. */
  (
    | { outcome: "granted"; lease: Lease; expired?: number; queued?: boolean }
    /** The same token already held the lease (a retried acquire): same lease, expiry extended. */
    | { outcome: "retried"; lease: Lease }
    /** position: 1-based place in the key's queue (0 when the call did not queue). */
    | { outcome: "held"; lease: Lease; position: number }
    /** Free, but earlier waiters come first; wakeAt: when the first of them loses its place unless it asks. */
    | { outcome: "queued"; position: number; wakeAt: number }
    /** The key is a registered lock and the token is not its credential. */
    | { outcome: "forbidden" }
    /** `registeredOnly` was asked and no registered lock has this key. */
    | { outcome: "unknown" }
    /** Shared holders admit a different number of holders than the caller's limit. */
    | { outcome: "limit"; limit: number }
    /** A registered lock (the /locks API) cannot be held shared. */
    | { outcome: "mode_conflict" }
    /** A newer waiter of its group took its place; by: that waiter's holder id (null: none given). */
    | { outcome: "superseded"; by: string | null }
    | QuotaOutcome
  );

/** A new record (or a new waiter) would pass one of the store's limits (StoreLimits). */
export type QuotaOutcome = { outcome: "quota"; limit: "locks" | "waiters"; max: number };

/** What bounds the store's records (LSS_MAX_LOCKS, LSS_MAX_WAITERS, LSS_LOCK_RETENTION_DAYS). */
export interface StoreLimits {
  /** Records (leases and /locks locks) one namespace may have at once. */
  locksPerNamespace: number;
  /** Namespaces with a cap of their own (the open /locks API's: LSS_OPEN_MAX_LOCKS). */
  locksByNamespace?: Readonly<Record<string, number>>;
  /** Waiters one key's queue may have at once. */
  waitersPerKey: number;
  /** How long a /locks lock outlives its last write (create, lock, unlock) before it is deleted. */
  lockRetentionMs: number;
  /** Events a key's history keeps (the newest), and for how long after its last event. */
  historyPerKey: number;
  historyRetentionMs: number;
}

/** The cap on one namespace's records. */
export const locksIn = (limits: StoreLimits, namespace: string) =>
  limits.locksByNamespace?.[namespace] ?? limits.locksPerNamespace;

export const DEFAULT_LIMITS: StoreLimits = {
  locksPerNamespace: 10_000,
  waitersPerKey: 1_000,
  lockRetentionMs: 30 * 86_400_000,
  historyPerKey: 100,
  historyRetentionMs: 30 * 86_400_000,
};

export type RenewOutcome = At &
  (
    | { outcome: "renewed"; lease: Lease }
    | { outcome: "held"; lease: Lease }
    | { outcome: "not_held" }
    | { outcome: "forbidden" }
  );

export type ReleaseOutcome = At &
  /** again: a retried release (it had been released already); expired: leases found expired. */

  /** lease: the one that ended (absent from a retried release). */
  (
    | { outcome: "released"; again?: boolean; expired?: number; lease?: Lease }
    | { outcome: "held"; lease: Lease }
    | { outcome: "not_held" }
    | { outcome: "forbidden" }
    | { outcome: "unknown" }
  );

/**
 * lease: the exclusive lease, or the shared lease that ends last, or null when free. holders: every
 * live lease. limit: the limit in force while shared holders hold it. waiting: how many queue, and
 * queue: the modes of the first waiters in order (both empty when the caller said it does not
 * need to know).
 */
export type InspectOutcome = At & {
  lease: Lease | null;
  holders: Lease[];
  limit: number | null;
  registered: boolean;
  waiting: number;
  queue: QueuedWaiter[];
};

/** A waiter as a status shows it (holder, priority, group, since: null for one queued by an older server). */
export interface QueuedWaiter {
  mode: LockMode;
  holderId: string | null;
  priority: number | null;
  group: string | null;
  since: number | null;
}

/** left: it was queued, and is not any more. */
export type LeaveOutcome = At & { left: boolean };

export type RegisterOutcome = At &
  ({ outcome: "created"; lease: Lease | null } | { outcome: "exists" } | QuotaOutcome);

export interface StoreAcquireParams {
  /** sha256 of the lease token: stores never see a token itself. */
  tokenHash: string;
  holderId: string | null;
  reason: string | null;
  /** null: no expiry (status locks only). */
  ttlMs: number | null;
  /** Refuse unless the key is a registered lock (the /locks API never creates a lease by accident). */
  registeredOnly: boolean;
  /**
   * Wait in the key's FIFO queue: join it (or keep one's place) for this long plus QUEUE_GRACE_MS.
   * null: don't queue (and don't jump it either: a free key goes to the first live waiter).
   */
  queueWindowMs: number | null;
  mode: LockMode;
  /** Shared: how many may hold the key at once (1 … MAX_HOLDERS of the protocol); ignored for exclusive. */
  limit: number;
  /** Queued: its place, higher first (see PRIORITY_AGE_MS); 0 when not given. */
  priority?: number;
  /**
   * Queued: its supersede group (deploy/main): joining a key's queue, it takes the place of the
   * waiter of its group there before it, which is answered "superseded". null or absent: none.
   */
  group?: string | null;
  /** Who asks, for the key's history. */
  actor: Actor | null;
}

/**
 * A waiter's priority counts as this long a wait: a waiter of priority 0 that has waited 10 minutes
 * ranks with a newcomer of priority 10, so a stream of hotfixes delays others but never forever.
 */
export const PRIORITY_AGE_MS = 60_000;

/** A waiter's name in a key's queue: the mode it waits for, and its token's hash. */
export const queueMember = (mode: LockMode, tokenHash: string) =>
  `${mode === "shared" ? "s" : "x"}:${tokenHash}`;

export interface RegisterParams {
  /** sha256 of the lock's credential; it is also the token of every lease on this key. */
  credentialHash: string;
  /** Take the lease at once (the /locks API's `l=true`). */
  lock: { ttlMs: number | null; holderId: string | null } | null;
  actor: Actor | null;
}

/** An acquire of one of several keys (a pool): its outcome, and which key it is about. */
export type PoolOutcome = AcquireOutcome & { index: number };

export interface LockStore {
  readonly kind: "memory" | "redis" | "upstash";
  acquire(ref: LockRef, params: StoreAcquireParams): Promise<AcquireOutcome>;
  /**
   * Acquire whichever of the keys is the caller's turn first (the one it holds already, for a
   * retried acquire), else wait in every key's queue with one arrival number, so that a pool is
   * served first come first served. One round trip; `index` (0-based) says which key.
   */
  acquireAny(refs: LockRef[], params: StoreAcquireParams): Promise<PoolOutcome>;
  renew(ref: LockRef, params: { tokenHash: string; ttlMs: number }): Promise<RenewOutcome>;
  /** tokenHash null: an operator's forced release of whatever lease holds the key. */
  release(
    ref: LockRef,
    params: { tokenHash: string | null; registeredOnly: boolean; actor: Actor | null },
  ): Promise<ReleaseOutcome>;
  /**
   * `watch`: the caller will wait for the key to be free, so the store must publish its release.
   * `waiting: false`: the caller does not need the queue's length (one command less).
   */
  inspect(ref: LockRef, opts?: { watch?: boolean; waiting?: boolean }): Promise<InspectOutcome>;
  /** Create a registered lock (the /locks API): a key with a credential that outlives its leases. */
  register(ref: LockRef, params: RegisterParams): Promise<RegisterOutcome>;
  /**
   * Leave the key's queue (a cancelled waiter); nothing happens when not queued. The history
   * records a queue timeout, with the holder id and actor when given.
   */
  leave(
    ref: LockRef,
    tokenHash: string,
    who?: { holderId: string | null; actor: Actor | null },
  ): Promise<LeaveOutcome>;
  /**
   * The key's history, newest first: at most StoreLimits.historyPerKey events, none older than
   * historyRetentionMs. One read.
   */
  history(ref: LockRef): Promise<{ now: number; entries: HistoryEntry[] }>;
  /**
   * The namespace's keys in order, from the first after `after` (null: the first), that start with
   * `prefix`; at most `limit`, and whether there are more. One round trip, whatever the number of
   * keys in the namespace or the database. `last`: the last key looked at (the next page starts
   * after it), null when none.
   */
  list(
    namespace: string,
    opts: { prefix: string; after: string | null; limit: number },
  ): Promise<{ now: number; keys: KeySummary[]; more: boolean; last: string | null }>;
  /** Releases and expiry changes, pushed by the store to the requests that wait. */
  readonly events: LockEvents;
  /**
   * One cheap read (a single command) that changes whenever the lease does: for waiters whose
   * events source is down, to look now and then without running a whole script. It reads the
   * exclusive lease's expiry as acquire and inspect report it ("0": held until released), "-1" once
   * released, null when the key has no record; while shared holders hold it, "<exp>|<how late
   * their leases run>".
   */
  peek(ref: LockRef): Promise<string | null>;
  readonly tokens: TokenStore;
  readonly sessions: SessionStore;
  /** Small JSON records by id, one hash per kind: the GitHub App's gates and its outbox. */
  records(kind: RecordKind): RecordStore;
  /**
   * True the first time `id` is claimed within `ttlMs` (a webhook delivery), false after: one
   * `SET NX PX`, so several instances agree.
   */
  claimOnce(id: string, ttlMs: number): Promise<boolean>;
  /** Gives a claim back (its work failed: a redelivery must be done, not ignored). */
  unclaim(id: string): Promise<void>;
  /** Whether `id` is claimed now (one GET). */
  claimed(id: string): Promise<boolean>;
  /** Resolves when the store answers; throws StoreUnavailableError otherwise. */
  ping(): Promise<void>;
  /**
   * Whether the store keeps every lock record until LSS deletes it: a Redis whose maxmemory-policy
   * evicts keys could drop a held lease and grant it again. null policy: the store cannot say.
   */
  safety(): Promise<StoreSafety>;
  close(): Promise<void>;
}

/** The store did not answer (in time): every caller must fail closed on it. */
export class StoreUnavailableError extends Error {
  constructor(
    cause: unknown,
    /** What the operator should check, naming the variable (e.g. a token the store refused). */
    readonly hint: StoreFailureHint | null = null,
    /**
     * The operation reached the store and no answer came back: a write may have been applied (a
     * lease granted) all the same. false: it never left, nothing changed.
     */
    readonly maybeApplied = false,
  ) {
    super(`lock store unavailable: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.name = "StoreUnavailableError";
  }
}

/**
 * refused: the store rejects our credentials (a configuration mistake); unreachable: no answer;
 * unsafe: it answers, but could lose lock records (an evicting Redis); quota: it refuses every
 * command until its plan's limit resets (Upstash's requests a month).
 */
export type RecordKind = "gates" | "outbox" | "freeze" | "webhooks" | "deliveries";

export interface RecordStore {
  put(id: string, json: string): Promise<void>;
  get(id: string): Promise<string | null>;
  /** id → record. */
  all(): Promise<Record<string, string>>;
  /** Whether it was there. */
  delete(id: string): Promise<boolean>;
}

export interface StoreFailureHint {
  kind: "refused" | "unreachable" | "unsafe" | "replicas" | "quota";
  message: string;
}

export interface StoreSafety {
  evictionPolicy: string | null;
  /** false: lock operations are refused (503) until the policy is fixed or the risk accepted. */
  safe: boolean;
  problem: string | null;
}

/** How long an unused record (a lease that ended, a queue nobody waits in) outlives its use. */
export const GC_SLACK_MS = 3_600_000;

/** How long a released lease's record stays, so that a retried release still answers "released". */
export const RELEASED_GRACE_MS = 30_000;

/** How long a waiter keeps its place after its wait window ends without it asking again. */
export const QUEUE_GRACE_MS = 5_000;

/**
 * How many waiters that stopped asking one acquire drops from the head of a queue. With more ahead,
 * the key goes to nobody on that call (the first live waiter is not known yet): bounded work per
 * call, and nobody jumps the queue.
 */
export const STALE_WAITERS_PER_CALL = 32;

/**
 * How many of the records Redis drops first a namespace at its cap looks at for one that holds
 * nothing (a lease that ended, nobody queued), to make room for a new one: bounded work per call.
 */
export const RECLAIM_PER_CALL = 64;

/**
 * released: the key is free; `next` names the first waiter (only it need look, the others wait for
 * the next grant's "expiry"), null when nobody queues. expiry: a lease's expiry changed (renewed,
 * or a new grant). resync: events may have been missed (the source was down): ask the store again.
 */
export type LockEvent =
  | { kind: "released"; next: string | null; nextUntil: number | null }
  | { kind: "expiry"; expiresAt: number | null }
  /** A newer waiter of its group took this waiter's place (member: mode and token hash). */
  | { kind: "superseded"; member: string }
  | { kind: "resync" };

export interface LockEvents {
  /**
   * Start listening on a key. Open it before asking the store: every event after this is kept for
   * `next`. Resolves once listening (or once it is known the source is down: `live` false).
   */
  watch(ref: LockRef, signal?: AbortSignal): Promise<Watch>;
  close(): Promise<void>;
}

export interface Watch {
  /** The next event since the watch opened, or null after timeoutMs (or when the signal aborts). */
  next(timeoutMs: number, signal?: AbortSignal): Promise<LockEvent | null>;
  /** false while the source is down: events may be missed until a `resync`; peek meanwhile. */
  readonly live: boolean;
  close(): void;
}
