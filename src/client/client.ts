/**
 * Typed client for both LSS APIs, used by the GitHub Action and the CLI: one method per
 * operation, over the transport (transport.ts: bearer, retries, backoff). Every acquire carries a
 * client-chosen token, so a retried acquire returns the same lease instead of 409.
 */
import type { GrantResponse, HistoryResponse, ListResponse, StatusResponse } from "../protocol/lease.js";
import { pathTo } from "../protocol/paths.js";
import type { CreatedResponse } from "../protocol/state-locks.js";
import { codeOf, LssError } from "./errors.js";
import { type Answer, createTransport, type Transport, type TransportOptions } from "./transport.js";

export { abortableSleep, isHeaderToken, type TokenProvider } from "./transport.js";

export type ClientOptions = TransportOptions;

/** A lease as others see it: who holds it, why, until when (never its token); and our place in its queue. */
export type HeldLease = Pick<
  StatusResponse,
  "holder_id" | "reason" | "fencing_token" | "acquired_at" | "expires_at" | "expires_in_ms"
> & { position?: number | null };

/** superseded: a newer waiter of its group (by: that one's holder id) took its place in the queue. */
export type AcquireResult =
  | { acquired: true; lease: GrantResponse }
  | { acquired: false; held: HeldLease }
  | { acquired: false; superseded: { by: string | null } };

/** What every call may take: a signal that cancels it. */
export interface CallOptions {
  signal?: AbortSignal;
}

export interface AcquireParams {
  ttlMs: number;
  holderId?: string;
  reason?: string;
  /** Your own lease token (e.g. a team secret); a random one otherwise. */
  token?: string;
  /** shared: one of up to `limit` holders (default: the only holder). */
  shared?: boolean;
  /** How many may hold it at once (implies shared). */
  limit?: number;
  /** While waiting: its place in the queue, highest first (-100 … 100; default 0). */
  priority?: number;
  /**
   * While waiting: its supersede group (deploy/main). A newer waiter of the group takes its place,
   * and this acquire ends not acquired, superseded.
   */
  supersede?: string;
}

export interface AcquireOptions extends AcquireParams, CallOptions {
  /** Wait in the key's queue up to this long (the server holds the request); 0, the default: try once. */
  waitMs?: number;
}

/** One key, or a pool: several keys of which the acquire gets whichever is free first. */
export type LockTarget = string | readonly string[];

/** How a target reads in messages: qa-env, or qa-1|qa-2|qa-3. */
export const targetName = (target: LockTarget) => (typeof target === "string" ? target : target.join("|"));

export type StateLockState = "unlocked" | "locked" | "unknown";

/** A lease token of 128 random bits (Web Crypto: the same on Node, Deno, Bun and Workers). */
export const newToken = () => globalThis.crypto.randomUUID().replaceAll("-", "");

/** The response schemas, loaded (with zod) when first needed: see `parsed`. */
const protocol = async () => {
  const [lease, stateLocks] = await Promise.all([
    import("../protocol/lease.js"),
    import("../protocol/state-locks.js"),
  ]);
  return { ...lease, CreatedResponse: stateLocks.CreatedResponse };
};
type Protocol = Awaited<ReturnType<typeof protocol>>;
type ZodSafeParse<T> =
  | { success: true; data: T }
  | { success: false; error: { issues: Array<{ path: PropertyKey[]; message: string }> } };

const heldFrom = (body: Record<string, unknown>): HeldLease => ({
  holder_id: (body.holder_id as string | null) ?? null,
  reason: (body.reason as string | null) ?? null,
  fencing_token: (body.fencing_token as number | null) ?? null,
  acquired_at: (body.acquired_at as string | null) ?? null,
  expires_at: (body.expires_at as string | null) ?? null,
  expires_in_ms: (body.expires_in_ms as number | null) ?? null,
  position: (body.position as number | null) ?? null,
});

/** An answer that is not the one asked for, as the LssError it means. */
const fail = (r: Answer, what: string): never => {
  const error = r.body?.error as { message?: string } | undefined;
  throw new LssError(
    codeOf(r.body, "http_error"),
    `${what}: ${error?.message ?? `HTTP ${r.status}`}`,
    r.status,
    r.body,
  );
};

/**
 * The body as the protocol's schema reads it, or LssError("bad_response"). The schemas (and zod)
 * are loaded on first use: the action's uncontended acquire never needs them, and loading them
 * costs a step's start-up tens of milliseconds.
 */
async function parsed<T>(
  r: Answer,
  schema: (p: Protocol) => { safeParse(v: unknown): ZodSafeParse<T> },
  what: string,
): Promise<T> {
  const result = schema(await protocol()).safeParse(r.body);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  throw new LssError(
    "bad_response",
    `${what}: ${r.status} with an answer the protocol does not know (${issue?.path.map(String).join(".") || "body"}: ${issue?.message})`,
    r.status,
    r.body,
  );
}

export function createClient(opts: ClientOptions) {
  const transport = createTransport(opts);
  return { url: transport.url, ...leaseMethods(transport), ...stateLockMethods(transport) };
}

/** The lease API: acquire (one key or a pool), leave, renew, release, status, history, list. */
function leaseMethods({ request }: Transport) {
  return {
    /**
     * One try; with waitMs the server holds the request in the key's queue until it is granted or
     * the wait ends (then: not acquired, with our place in the queue).
     */
    async acquire(target: LockTarget, opts: AcquireOptions): Promise<AcquireResult & { token: string }> {
      const token = opts.token ?? newToken();
      const pool = typeof target !== "string";
      const shared = opts.shared || opts.limit !== undefined;
      const waitMs = opts.waitMs ?? 0;
      const body = {
        ...(pool ? { keys: target } : {}),
        ttl_ms: opts.ttlMs,
        holder_id: opts.holderId,
        reason: opts.reason,
        token,
        ...(shared ? { mode: "shared" } : {}),
        ...(opts.limit !== undefined ? { limit: opts.limit } : {}),
        ...(waitMs > 0 ? { wait_ms: waitMs } : {}),
        ...(opts.priority ? { priority: opts.priority } : {}),
        ...(opts.supersede ? { supersede: opts.supersede } : {}),
      };
      const path = pool ? pathTo("acquirePool") : pathTo("acquire", { key: target });
      const r = await request("POST", path, { body, signal: opts.signal, holdMs: waitMs });
      // A grant is not parsed with the schemas: it is the action's fast path (see parsed).
      if (r.status === 200) return { acquired: true, lease: r.body as GrantResponse, token };
      const code = (r.body?.error as { code?: string })?.code;
      if (r.status === 409 && (code === "lock_held" || code === "queued")) {
        return { acquired: false, held: heldFrom(r.body ?? {}), token };
      }
      if (r.status === 409 && code === "superseded") {
        const by = (r.body?.superseded_by as string | null | undefined) ?? null;
        return { acquired: false, superseded: { by }, token };
      }
      return fail(r, `acquire ${targetName(target)}`);
    },

    /**
     * Leave the queue of the key (or of every key of a pool): giving up, or cancelled. holderId:
     * who gives up, for the key's history.
     */
    async leave(target: LockTarget, opts: { token: string; holderId?: string } & CallOptions): Promise<void> {
      const { token, signal, holderId } = opts;
      // Every key's queue, whatever one of them answers: a place left behind holds up the rest.
      const keys = typeof target === "string" ? [target] : target;
      const answers = await Promise.allSettled(
        keys.map(async (key) => {
          const body = { token, ...(holderId ? { holder_id: holderId } : {}) };
          const r = await request("POST", pathTo("leave", { key }), { body, signal });
          if (r.status !== 200) fail(r, `leave the queue of ${key}`);
        }),
      );
      const failed = answers.find((a) => a.status === "rejected");
      if (failed) throw failed.reason;
    },

    /** Like a grant, a renewal is the renewer's every call: not parsed with the schemas. */
    async renew(key: string, opts: { token: string; ttlMs: number } & CallOptions): Promise<GrantResponse> {
      const body = { token: opts.token, ttl_ms: opts.ttlMs };
      const r = await request("POST", pathTo("renew", { key }), { body, signal: opts.signal });
      return r.status === 200 ? (r.body as GrantResponse) : fail(r, `renew ${key}`);
    },

    /** Release with the lease's token, or (admin tokens only) whatever lease holds the key. */
    async release(key: string, how: ({ token: string } | { force: true }) & CallOptions): Promise<void> {
      const body = "token" in how ? { token: how.token } : { force: true };
      const r = await request("POST", pathTo("release", { key }), { body, signal: how.signal });
      if (r.status !== 200) fail(r, `release ${key}`);
    },

    /** With waitMs the server answers when the key reads free, or when the wait ends. */
    async status(key: string, opts: { waitMs?: number } & CallOptions = {}): Promise<StatusResponse> {
      const waitMs = opts.waitMs ?? 0;
      const path = pathTo("status", { key }, { wait_ms: waitMs > 0 ? waitMs : undefined });
      const r = await request("GET", path, { signal: opts.signal, holdMs: waitMs });
      return r.status === 200
        ? parsed(r, (p) => p.StatusResponse, `status of ${key}`)
        : fail(r, `status of ${key}`);
    },

    /** A page of the key's history, newest first (cursor: the previous page's next_cursor). */
    async history(
      key: string,
      page: { limit?: number; cursor?: string } & CallOptions = {},
    ): Promise<HistoryResponse> {
      const path = pathTo("history", { key }, { limit: page.limit, cursor: page.cursor });
      const r = await request("GET", path, { signal: page.signal });
      return r.status === 200
        ? parsed(r, (p) => p.HistoryResponse, `history of ${key}`)
        : fail(r, `history of ${key}`);
    },

    /** A page of the namespace's keys with their state (prefix: only keys that start with it). */
    async list(
      page: { prefix?: string; limit?: number; cursor?: string } & CallOptions = {},
    ): Promise<ListResponse> {
      const query = { prefix: page.prefix || undefined, limit: page.limit, cursor: page.cursor };
      const r = await request("GET", pathTo("list", {}, query), { signal: page.signal });
      return r.status === 200 ? parsed(r, (p) => p.ListResponse, "list locks") : fail(r, "list locks");
    },
  };
}

/** The Lock State Service API: create, lock and unlock, and read a /locks lock. */
function stateLockMethods({ request }: Transport) {
  return {
    /** POST /locks: a new /locks lock (`e` seconds locked; `k` your own key). */
    async createStateLock(
      p: { locked: boolean; e?: string; k?: string } & CallOptions,
    ): Promise<CreatedResponse> {
      const path = pathTo("createStateLock", {}, { l: p.locked ? "true" : undefined, e: p.e, k: p.k });
      // Not idempotent: each POST makes a lock, so a retry after a lost answer would make two.
      const r = await request("POST", path, { signal: p.signal, idempotent: false });
      return r.status === 200 ? parsed(r, (s) => s.CreatedResponse, "create lock") : fail(r, "create lock");
    },

    /** PATCH /locks/{id}/lock|unlock with the lock's key (`e`: seconds it stays locked). */
    async changeStateLock(
      id: string,
      change: { action: "lock" | "unlock"; k: string; e?: string } & CallOptions,
    ): Promise<void> {
      const name = change.action === "lock" ? "lockStateLock" : "unlockStateLock";
      const r = await request("PATCH", pathTo(name, { id }, { k: change.k, e: change.e }), {
        signal: change.signal,
      });
      if (r.status !== 204) fail(r, `${change.action} ${id}`);
    },

    /** A /locks API lock: 204 unlocked, 423 locked, 404 unknown. */
    async stateLock(
      id: string,
      opts: CallOptions = {},
    ): Promise<{ state: StateLockState; expires_at: string | null }> {
      const r = await request("GET", pathTo("stateLock", { id }), { signal: opts.signal });
      if (r.status === 204) return { state: "unlocked", expires_at: null };
      if (r.status === 423)
        return { state: "locked", expires_at: (r.body?.expires_at as string | null) ?? null };
      if (r.status === 404) return { state: "unknown", expires_at: null };
      return fail(r, `state of lock ${id}`);
    },
  };
}

export type LssClient = ReturnType<typeof createClient>;

/**
 * Release with the token whatever of the target it may hold (of a pool: any one key); true when
 * every release went through or found nothing held with this token.
 */
export async function releaseAny(client: LssClient, target: LockTarget, token: string): Promise<boolean> {
  const outcomes = await Promise.all(
    (typeof target === "string" ? [target] : target).map((key) =>
      client.release(key, { token }).then(
        () => "released" as const,
        (err: unknown) =>
          err instanceof LssError && err.status === 409 ? ("not held" as const) : ("failed" as const),
      ),
    ),
  );
  return !outcomes.includes("failed");
}
