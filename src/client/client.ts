/**
 * Typed client for both LSS APIs, used by the GitHub Action and the CLI. Transient failures
 * (network errors, 429, 5xx) are retried with exponential backoff and jitter. Every acquire
 * carries a client-chosen token, so a retried acquire returns the same lease instead of 409.
 */
import { randomUUID } from "node:crypto";
import type { GrantResponse, HistoryResponse, ListResponse, StatusResponse } from "../protocol/lease.js";
import type { CreatedResponse } from "../protocol/state-locks.js";
import { codeOf, LssError } from "./errors.js";

/**
 * A bearer token that may change: asked before every request (so it can hand out a fresh one when
 * the last is about to expire), and once more with `refresh: true` when the server answers 401.
 */
export type TokenProvider = (ask: { refresh: boolean; signal?: AbortSignal }) => Promise<string>;

export interface ClientOptions {
  url: string;
  /** Bearer token, or a provider of one (e.g. a CI job's OIDC ID token); the /locks API may not need one. */
  token?: string | TokenProvider;
  /** Attempts after the first for transient failures. */
  retries?: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Per attempt. */
  timeoutMs?: number;
  fetch?: typeof fetch;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Told before each retry, e.g. to log "server answered 503, retrying in 1.2 s". */
  onRetry?: (info: { attempt: number; delayMs: number; reason: string }) => void;
  userAgent?: string;
}

/** A lease as others see it: who holds it, why, until when (never its token); and our place in its queue. */
export type HeldLease = Pick<
  StatusResponse,
  "holder_id" | "reason" | "fencing_token" | "acquired_at" | "expires_at" | "expires_in_ms"
> & { position?: number | null };

export type AcquireResult = { acquired: true; lease: GrantResponse } | { acquired: false; held: HeldLease };

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

export const newToken = () => randomUUID().replaceAll("-", "");

const RETRYABLE = new Set([429, 500, 502, 503, 504]);

/** Network failures before anything was sent (no connection was made). */
const NEVER_SENT = /ECONNREFUSED|ENOTFOUND|EAI_AGAIN/;

/**
 * A retryable answer after which the server certainly did nothing: rate limited, or the store
 * unreachable before anything was written (store_unavailable says "nothing was changed"). Not a
 * 500 or a proxy's 502/504, and not 503 outcome_unknown (the write may have been made).
 */
const answeredUndone = (status: number, body: Record<string, unknown> | null) =>
  status === 429 || (status === 503 && codeOf(body, "unavailable") === "store_unavailable");

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

export const abortableSleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });

const heldFrom = (body: Record<string, unknown>): HeldLease => ({
  holder_id: (body.holder_id as string | null) ?? null,
  reason: (body.reason as string | null) ?? null,
  fencing_token: (body.fencing_token as number | null) ?? null,
  acquired_at: (body.acquired_at as string | null) ?? null,
  expires_at: (body.expires_at as string | null) ?? null,
  expires_in_ms: (body.expires_in_ms as number | null) ?? null,
  position: (body.position as number | null) ?? null,
});

/** Whether a bearer token can go in a header as it is: visible ASCII, no spaces. */
export const isHeaderToken = (token: string) => /^[\x21-\x7e]+$/.test(token);

const badToken = () =>
  new LssError("bad_token", "token is not a valid header value (a line break or space in it?)");

export function createClient(opts: ClientOptions) {
  // fetch would reject it with a message that quotes the whole header, secret included.
  if (typeof opts.token === "string" && opts.token && !isHeaderToken(opts.token)) throw badToken();
  const provider = typeof opts.token === "function" ? opts.token : null;
  const base = opts.url.replace(/\/+$/, "");
  const retries = opts.retries ?? 4;
  const baseDelay = opts.baseDelayMs ?? 250;
  const maxDelay = opts.maxDelayMs ?? 5000;
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const doFetch = opts.fetch ?? fetch;
  const sleep = opts.sleep ?? abortableSleep;
  const lockPath = (key: string) => `/infra/locks/${encodeURIComponent(key)}`;

  /** The bearer for one attempt: the fixed token, or the provider's (checked as the fixed one is). */
  async function bearer(refresh: boolean, signal?: AbortSignal): Promise<string | undefined> {
    if (!provider) return (opts.token as string | undefined) || undefined;
    let token: string;
    try {
      token = await provider({ refresh, signal });
    } catch (err) {
      if (signal?.aborted) throw signal.reason ?? err;
      if (err instanceof LssError) throw err;
      throw new LssError(
        "token_unavailable",
        `could not get a token: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
    if (!isHeaderToken(token)) throw badToken();
    return token;
  }

  /** One request with retries; returns status and parsed body, or throws LssError("unreachable"). */
  async function request(
    method: string,
    path: string,
    body?: unknown,
    signal?: AbortSignal,
    /** For requests the server holds (long-polls): added to the per-attempt timeout. */
    holdMs = 0,
    /**
     * Whether asking again may repeat what an earlier attempt did: false for a request that is
     * not idempotent (POST /locks makes a new lock each time), retried only when the server
     * certainly did nothing (see certainlyUndone).
     */
    idempotent = true,
  ): Promise<{ status: number; body: Record<string, unknown> | null; headers: Headers }> {
    const headers: Record<string, string> = { "User-Agent": opts.userAgent ?? "lss-client" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let lastReason = "";
    /** A provided token is refreshed once when the server refuses it (it may have just expired). */
    let refresh = false;
    let refreshed = false;
    for (let attempt = 0; ; attempt++) {
      let retryAfterMs: number | null = null;
      const token = await bearer(refresh, signal);
      if (token) headers.Authorization = `Bearer ${token}`;
      try {
        const res = await doFetch(`${base}${path}`, {
          method,
          headers,
          body: body === undefined ? undefined : JSON.stringify(body),
          signal: signal
            ? AbortSignal.any([signal, AbortSignal.timeout(timeoutMs + holdMs)])
            : AbortSignal.timeout(timeoutMs + holdMs),
        });
        const text = await res.text();
        if (res.status === 401 && provider && !refreshed) {
          refresh = refreshed = true;
          attempt--; // not a retry of a transient failure: no backoff, no count
          continue;
        }
        refresh = false;
        let parsed: Record<string, unknown> | null = null;
        if (text) {
          try {
            parsed = JSON.parse(text);
          } catch {
            if (!RETRYABLE.has(res.status)) {
              throw new LssError(
                "bad_response",
                `${method} ${path}: ${res.status} with a body that is not JSON`,
                res.status,
              );
            }
          }
        }
        if (!RETRYABLE.has(res.status)) return { status: res.status, body: parsed, headers: res.headers };
        const message = (parsed?.error as { message?: string } | undefined)?.message;
        lastReason = `server answered ${res.status}${message ? ` (${message})` : ""}`;
        const retryAfter = Number(res.headers.get("Retry-After"));
        if (Number.isFinite(retryAfter) && retryAfter > 0) retryAfterMs = retryAfter * 1000;
        if (attempt >= retries || (!idempotent && !answeredUndone(res.status, parsed))) {
          throw new LssError(
            codeOf(parsed, "unavailable"),
            `${method} ${path}: ${lastReason}`,
            res.status,
            parsed,
          );
        }
      } catch (err) {
        if (err instanceof LssError) throw err;
        if (signal?.aborted) throw signal.reason ?? err;
        lastReason = describeNetworkError(err);
        if (attempt >= retries) {
          throw new LssError("unreachable", `cannot reach LSS at ${base}: ${lastReason}`);
        }
        if (!idempotent && !NEVER_SENT.test(lastReason)) {
          throw new LssError(
            "unreachable",
            `${method} ${path}: ${lastReason}; it may have reached the server, so it is not sent again`,
          );
        }
      }
      const backoff = Math.min(maxDelay, baseDelay * 2 ** attempt) * (0.5 + Math.random() / 2);
      const delayMs = Math.min(maxDelay, Math.max(backoff, retryAfterMs ?? 0));
      opts.onRetry?.({ attempt: attempt + 1, delayMs, reason: lastReason });
      await sleep(delayMs, signal);
    }
  }

  const fail = (r: { status: number; body: Record<string, unknown> | null }, what: string): never => {
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
    r: { status: number; body: Record<string, unknown> | null },
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

  return {
    url: base,

    /**
     * One try; with waitMs the server holds the request in the key's queue until it is granted or
     * the wait ends (then: not acquired, with our place in the queue).
     */
    async acquire(target: LockTarget, opts: AcquireOptions): Promise<AcquireResult & { token: string }> {
      const token = opts.token ?? newToken();
      const pool = typeof target !== "string";
      const shared = opts.shared || opts.limit !== undefined;
      const waitMs = opts.waitMs ?? 0;
      const r = await request(
        "POST",
        pool ? "/infra/pools/acquire" : `${lockPath(target)}/acquire`,
        {
          ...(pool ? { keys: target } : {}),
          ttl_ms: opts.ttlMs,
          holder_id: opts.holderId,
          reason: opts.reason,
          token,
          ...(shared ? { mode: "shared" } : {}),
          ...(opts.limit !== undefined ? { limit: opts.limit } : {}),
          ...(waitMs > 0 ? { wait_ms: waitMs } : {}),
        },
        opts.signal,
        waitMs,
      );
      // A grant is not parsed with the schemas: it is the action's fast path (see parsed).
      if (r.status === 200) return { acquired: true, lease: r.body as GrantResponse, token };
      const code = (r.body?.error as { code?: string })?.code;
      if (r.status === 409 && (code === "lock_held" || code === "queued")) {
        return { acquired: false, held: heldFrom(r.body ?? {}), token };
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
          const r = await request("POST", `${lockPath(key)}/leave`, body, signal);
          if (r.status !== 200) fail(r, `leave the queue of ${key}`);
        }),
      );
      const failed = answers.find((a) => a.status === "rejected");
      if (failed) throw failed.reason;
    },

    /** Like a grant, a renewal is the renewer's every call: not parsed with the schemas. */
    async renew(key: string, opts: { token: string; ttlMs: number } & CallOptions): Promise<GrantResponse> {
      const body = { token: opts.token, ttl_ms: opts.ttlMs };
      const r = await request("POST", `${lockPath(key)}/renew`, body, opts.signal);
      return r.status === 200 ? (r.body as GrantResponse) : fail(r, `renew ${key}`);
    },

    /** Release with the lease's token, or (admin tokens only) whatever lease holds the key. */
    async release(key: string, how: ({ token: string } | { force: true }) & CallOptions): Promise<void> {
      const body = "token" in how ? { token: how.token } : { force: true };
      const r = await request("POST", `${lockPath(key)}/release`, body, how.signal);
      if (r.status !== 200) fail(r, `release ${key}`);
    },

    /** With waitMs the server answers when the key reads free, or when the wait ends. */
    async status(key: string, opts: { waitMs?: number } & CallOptions = {}): Promise<StatusResponse> {
      const waitMs = opts.waitMs ?? 0;
      const query = waitMs > 0 ? `?wait_ms=${waitMs}` : "";
      const r = await request("GET", `${lockPath(key)}${query}`, undefined, opts.signal, waitMs);
      return r.status === 200
        ? parsed(r, (p) => p.StatusResponse, `status of ${key}`)
        : fail(r, `status of ${key}`);
    },

    /** A page of the key's history, newest first (cursor: the previous page's next_cursor). */
    async history(
      key: string,
      page: { limit?: number; cursor?: string } & CallOptions = {},
    ): Promise<HistoryResponse> {
      const query = new URLSearchParams();
      if (page.limit !== undefined) query.set("limit", String(page.limit));
      if (page.cursor !== undefined) query.set("cursor", page.cursor);
      const r = await request(
        "GET",
        `${lockPath(key)}/history${query.size ? `?${query}` : ""}`,
        undefined,
        page.signal,
      );
      return r.status === 200
        ? parsed(r, (p) => p.HistoryResponse, `history of ${key}`)
        : fail(r, `history of ${key}`);
    },

    /** A page of the namespace's keys with their state (prefix: only keys that start with it). */
    async list(
      page: { prefix?: string; limit?: number; cursor?: string } & CallOptions = {},
    ): Promise<ListResponse> {
      const query = new URLSearchParams();
      if (page.prefix) query.set("prefix", page.prefix);
      if (page.limit !== undefined) query.set("limit", String(page.limit));
      if (page.cursor !== undefined) query.set("cursor", page.cursor);
      const r = await request("GET", `/infra/locks${query.size ? `?${query}` : ""}`, undefined, page.signal);
      return r.status === 200 ? parsed(r, (p) => p.ListResponse, "list locks") : fail(r, "list locks");
    },

    /** POST /locks: a new /locks lock (`e` seconds locked; `k` your own key). */
    async createStateLock(
      p: { locked: boolean; e?: string; k?: string } & CallOptions,
    ): Promise<CreatedResponse> {
      const query = new URLSearchParams();
      if (p.locked) query.set("l", "true");
      if (p.e !== undefined) query.set("e", p.e);
      if (p.k !== undefined) query.set("k", p.k);
      // Not idempotent: each POST makes a lock, so a retry after a lost answer would make two.
      const r = await request(
        "POST",
        `/locks${query.size ? `?${query}` : ""}`,
        undefined,
        p.signal,
        0,
        false,
      );
      return r.status === 200 ? parsed(r, (s) => s.CreatedResponse, "create lock") : fail(r, "create lock");
    },

    /** PATCH /locks/{id}/lock|unlock with the lock's key (`e`: seconds it stays locked). */
    async changeStateLock(
      id: string,
      change: { action: "lock" | "unlock"; k: string; e?: string } & CallOptions,
    ): Promise<void> {
      const query = new URLSearchParams({ k: change.k });
      if (change.e !== undefined) query.set("e", change.e);
      const r = await request(
        "PATCH",
        `/locks/${encodeURIComponent(id)}/${change.action}?${query}`,
        undefined,
        change.signal,
      );
      if (r.status !== 204) fail(r, `${change.action} ${id}`);
    },

    /** A /locks API lock: 204 unlocked, 423 locked, 404 unknown. */
    async stateLock(
      id: string,
      opts: CallOptions = {},
    ): Promise<{ state: StateLockState; expires_at: string | null }> {
      const r = await request("GET", `/locks/${encodeURIComponent(id)}`, undefined, opts.signal);
      if (r.status === 204) return { state: "unlocked", expires_at: null };
      if (r.status === 423)
        return { state: "locked", expires_at: (r.body?.expires_at as string | null) ?? null };
      if (r.status === 404) return { state: "unknown", expires_at: null };
      return fail(r, `state of lock ${id}`);
    },
  };
}

export type LssClient = ReturnType<typeof createClient>;

function describeNetworkError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  if (err.name === "TimeoutError") return "no answer in time";
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? err.message;
}

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
