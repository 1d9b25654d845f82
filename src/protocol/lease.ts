/**
 * Wire format of the lease API (`/infra/locks/{key}/…`), shared by the server and the typed client
 * so that the two cannot drift. Limits follow the lease API document; the upper TTL bound is a
 * server setting (LSS_MAX_TTL_MS) and is applied by the server on top of these schemas.
 */
import { z } from "zod";
import { strictBody, textSchema } from "./common.js";
import {
  HOLDER_ID_RULE,
  KEY_RULE,
  LEASE_TOKEN_RULE,
  LIMIT_RANGE,
  LIMIT_TEXT_PATTERN,
  MAX_HOLDERS,
  POOL_CHECKS,
  REASON_RULE,
  SUPERSEDE_RULE,
} from "./fields.js";

export { ERROR_CODES, type ErrorCode, ErrorResponse, printable, strictBody } from "./common.js";

export { INVISIBLE_FORMATTING, KEY_PATTERN, keysOf, MAX_HOLDERS, MAX_POOL_KEYS } from "./fields.js";

export const LockKey = textSchema(KEY_RULE);
export const HolderId = textSchema(HOLDER_ID_RULE);
export const LeaseToken = textSchema(LEASE_TOKEN_RULE);
export const Reason = textSchema(REASON_RULE);
export const SupersedeGroup = textSchema(SUPERSEDE_RULE);

export const TtlMs = z
  .number({ error: "ttl_ms must be an integer number of milliseconds" })
  .int("ttl_ms must be an integer number of milliseconds")
  .min(1, "ttl_ms must be at least 1");

export const WaitMs = z
  .number({ error: "wait_ms must be an integer number of milliseconds" })
  .int("wait_ms must be an integer number of milliseconds")
  .min(0, "wait_ms must be at least 0");

export const LockMode = z.enum(["exclusive", "shared"], { error: "mode must be exclusive or shared" });

export const HolderLimit = z
  .number({ error: `limit must be a whole number from 1 to ${MAX_HOLDERS}` })
  .int(`limit must be a whole number from 1 to ${MAX_HOLDERS}`)
  .min(1, "limit must be at least 1")
  .max(MAX_HOLDERS, `limit must be at most ${MAX_HOLDERS}`);

/** A waiter's priority: higher first (FIFO within one); every minute waited counts as one more. */
export const MIN_PRIORITY = -100;
export const MAX_PRIORITY = 100;
const PRIORITY_RANGE = `priority must be a whole number from ${MIN_PRIORITY} to ${MAX_PRIORITY}`;
export const Priority = z
  .number({ error: PRIORITY_RANGE })
  .int(PRIORITY_RANGE)
  .min(MIN_PRIORITY, PRIORITY_RANGE)
  .max(MAX_PRIORITY, PRIORITY_RANGE);

/** A limit as a command line or a workflow writes it: digits (one message for every mistake). */
export const HolderLimitText = z
  .string()
  .regex(LIMIT_TEXT_PATTERN, LIMIT_RANGE)
  .transform(Number)
  .pipe(z.number().min(1, LIMIT_RANGE).max(MAX_HOLDERS, LIMIT_RANGE));

export const AcquireRequest = strictBody({
  /** Wait in the key's queue up to this long (bounded by the server); needs your own token. */
  wait_ms: WaitMs.optional(),
  ttl_ms: TtlMs,
  holder_id: HolderId.optional(),
  /** Client-chosen lease token: a retried acquire with the same token returns the same lease. */
  token: LeaseToken.optional(),
  reason: Reason.optional(),
  /** exclusive (the default): the only holder; shared: one of up to `limit` holders. */
  mode: LockMode.optional(),
  /** How many may hold it at once (implies shared); every shared holder must count the same. */
  limit: HolderLimit.optional(),
  /**
   * With wait_ms: the place in the queue, highest first, first come first served within one (default
   * 0). A minute of waiting counts as one more, so that nothing waits forever. Never preempts a holder.
   */
  priority: Priority.optional(),
  /**
   * With wait_ms: a group (deploy/main). Joining the queue, this request takes the place of the
   * request of its group waiting there before it, which is answered 409 superseded. Holders are
   * never touched.
   */
  supersede: SupersedeGroup.optional(),
});

/** A pool: several keys, of which an acquire gets whichever frees first. */
export const PoolKeys = z
  .array(LockKey, { error: "keys must be a list of lock names" })
  .min(POOL_CHECKS.min.min, POOL_CHECKS.min.message)
  .max(POOL_CHECKS.max.max, POOL_CHECKS.max.message)
  .refine((keys) => POOL_CHECKS.repeated(keys) === undefined, {
    error: (issue) => POOL_CHECKS.repeatedMessage(POOL_CHECKS.repeated(issue.input as string[])),
  })
  .refine(POOL_CHECKS.stateLock.test, { message: POOL_CHECKS.stateLock.message });

export const RenewRequest = strictBody({ token: LeaseToken, ttl_ms: TtlMs });

/** `token` releases your lease; `force: true` (admin scope) releases whoever holds the key. */
export const ReleaseRequest = strictBody({
  token: LeaseToken.optional(),
  force: z.literal(true, { error: "force must be true (or left out)" }).optional(),
}).refine((r) => (r.token === undefined) !== (r.force === undefined), {
  message: "send either token (your lease's) or force: true (admin only), not both",
});

/** A waiter as a status shows it (holder, priority, group, since: absent from older servers). */
export const QueueEntry = z.object({
  position: z.number().int(),
  mode: LockMode,
  holder_id: z.string().nullable().optional(),
  priority: z.number().int().optional(),
  /** Its supersede group, or null. */
  group: z.string().nullable().optional(),
  /** When it joined the queue (ISO 8601, the store's clock). */
  waiting_since: z.string().nullable().optional(),
});

/** What anyone may see of a lease: never its token. Times are ISO 8601 by the store's clock. */
export const LeaseView = z.object({
  /** exclusive or shared (absent from older servers: exclusive). */
  mode: LockMode.optional(),
  holder_id: z.string().nullable(),
  reason: z.string().nullable(),
  fencing_token: z.number().int(),
  acquired_at: z.string(),
  /** null: held until released (only status locks of the /locks API can be held forever). */
  expires_at: z.string().nullable(),
  /** Remaining time by the store's clock, so that waiting clients need not trust their own. */
  expires_in_ms: z.number().int().nullable(),
});

export const GrantResponse = LeaseView.extend({
  status: z.literal("ok"),
  key: z.string(),
  locked: z.literal(true),
  token: z.string(),
});

/** holder_id: who gives up waiting, for the key's history (a queue timeout). */
export const LeaveRequest = strictBody({ token: LeaseToken, holder_id: HolderId.optional() });

/** A key's holder as a status or a listing shows it: all null when the key is free. */
const HeldFields = {
  holder_id: z.string().nullable(),
  reason: z.string().nullable(),
  fencing_token: z.number().int().nullable(),
  acquired_at: z.string().nullable(),
  expires_at: z.string().nullable(),
  expires_in_ms: z.number().int().nullable(),
};

export const StatusResponse = z.object({
  status: z.literal("ok"),
  key: z.string(),
  locked: z.boolean(),
  ...HeldFields,
  /** How many wait in the key's queue. */
  waiting: z.number().int(),
  /** exclusive, shared, or null when free. */
  mode: LockMode.nullable().optional(),
  /** With shared holders: how many may hold it at once. */
  limit: z.number().int().nullable().optional(),
  /** Every holder (never a token); the top-level fields describe the one whose lease ends last. */
  holders: z.array(LeaseView).optional(),
  /** The first waiters, in order: the mode each waits for, and (from servers that know) who waits. */
  queue: z.array(QueueEntry).optional(),
});

export const ReleaseResponse = z.object({
  status: z.literal("ok"),
  key: z.string(),
  locked: z.literal(false),
});

/** What a key's history records (see HistoryEvent). */
export const HISTORY_EVENTS = [
  "granted",
  "extended",
  "released",
  "expired",
  "forced_release",
  "queue_timeout",
  "superseded",
] as const;
export const HistoryEventKind = z.enum(HISTORY_EVENTS);

/**
 * One event of a key's history. granted: a lease began; extended: its holder acquired again with
 * the same token (a renewal, the heartbeat of a running job, is not recorded); released, expired,
 * forced_release: a lease ended (held_ms says how long it was held; an expiry is written when the
 * key is next acquired, at the time the lease ended); queue_timeout: a waiter gave up (its holder_id
 * when it said it) or stopped asking; superseded: a waiter (holder_id) gave its place to a newer one of
 * its group (superseded_by, that one's holder). actor: the API token that did it, by id and name, never its
 * secret (null for an expiry). run_url: the workflow run, when the holder id names one.
 */
export const HistoryEvent = z.object({
  event: HistoryEventKind,
  at: z.string(),
  holder_id: z.string().nullable(),
  reason: z.string().nullable(),
  mode: LockMode.nullable(),
  fencing_token: z.number().int().nullable(),
  held_ms: z.number().int().nullable(),
  actor: z.object({ token_id: z.string(), token_name: z.string().nullable() }).nullable(),
  run_url: z.string().nullable(),
  /** superseded: the holder of the newer waiter that took its place. */
  superseded_by: z.string().nullable().optional(),
});

/** Newest first; next_cursor fetches the older events (null: no more). */
export const HistoryResponse = z.object({
  status: z.literal("ok"),
  key: z.string(),
  events: z.array(HistoryEvent),
  next_cursor: z.string().nullable(),
});

/** A key of the namespace at a glance (the listing): what its status says, in brief. */
export const LockSummary = z.object({
  key: z.string(),
  locked: z.boolean(),
  mode: LockMode.nullable(),
  /** The holder whose lease ends last (of a shared key: one of `holders`). */
  ...HeldFields,
  /** How many hold it now (0 when free). */
  holders: z.number().int(),
  waiting: z.number().int(),
  /** A status lock of the /locks API (key `locks/<id>`). */
  registered: z.boolean(),
  run_url: z.string().nullable(),
});

/** Keys in order; next_cursor asks for the keys after the last one (null: no more). */
export const ListResponse = z.object({
  status: z.literal("ok"),
  locks: z.array(LockSummary),
  next_cursor: z.string().nullable(),
});

export type AcquireRequest = z.infer<typeof AcquireRequest>;
export type RenewRequest = z.infer<typeof RenewRequest>;
export type ReleaseRequest = z.infer<typeof ReleaseRequest>;
export type GrantResponse = z.infer<typeof GrantResponse>;
export type StatusResponse = z.infer<typeof StatusResponse>;
export type LeaseView = z.infer<typeof LeaseView>;
export type HistoryEvent = z.infer<typeof HistoryEvent>;
export type HistoryEventKind = z.infer<typeof HistoryEventKind>;
export type HistoryResponse = z.infer<typeof HistoryResponse>;
export type LockSummary = z.infer<typeof LockSummary>;
export type ListResponse = z.infer<typeof ListResponse>;
