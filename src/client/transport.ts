/**
 * How the client talks to a server: one request with its bearer (a fixed token or a provider's),
 * retried with exponential backoff and jitter on transient failures (network errors, 429, 5xx),
 * never repeating what may have been done for a request that is not idempotent; and the answers
 * read as errors or by the protocol's schemas. The API methods are in client.ts.
 */
import { NAMESPACE_HEADER, NAMESPACE_PATTERN, NAMESPACE_RULE } from "../protocol/namespace.js";
import { VERSION } from "../version.js";
import { codeOf, LssError } from "./errors.js";

/**
 * A bearer token that may change: asked before every request (so it can hand out a fresh one when
 * the last is about to expire), and once more with `refresh: true` when the server answers 401.
 */
export type TokenProvider = (ask: { refresh: boolean; signal?: AbortSignal }) => Promise<string>;

export interface TransportOptions {
  url: string;
  /** Bearer token, or a provider of one (e.g. a CI job's OIDC ID token); the /locks API may not need one. */
  token?: string | TokenProvider;
  /**
   * The namespace to act in, for a token with the admin scope (sent as LSS-Namespace); absent: the
   * token's own. The server refuses any other token naming a namespace not its own.
   */
  namespace?: string;
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
  /**
   * The product on whose behalf the client calls (e.g. `lss-action/1.2.0`): it goes before the
   * client's own `lss-client/<version>` in User-Agent, which the server logs.
   */
  userAgent?: string;
}

export interface RequestOptions {
  body?: unknown;
  signal?: AbortSignal;
  /** For requests the server holds (long-polls): added to the per-attempt timeout. */
  holdMs?: number;
  /**
   * Whether asking again may repeat what an earlier attempt did: false for a request that is not
   * idempotent (POST /locks makes a new lock each time), retried only when the server certainly
   * did nothing (see answeredUndone).
   */
  idempotent?: boolean;
}

export interface Answer {
  status: number;
  body: Record<string, unknown> | null;
  headers: Headers;
}

/** What every request's User-Agent names: the client and its version. */
export const CLIENT_PRODUCT = `lss-client/${VERSION}`;

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

/** Whether a bearer token can go in a header as it is: visible ASCII, no spaces. */
export const isHeaderToken = (token: string) => /^[\x21-\x7e]+$/.test(token);

const badToken = () =>
  new LssError("bad_token", "token is not a valid header value (a line break or space in it?)");

function describeNetworkError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  if (err.name === "TimeoutError") return "no answer in time";
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? err.message;
}

/** The bearer for one attempt: the fixed token, or the provider's (checked as the fixed one is). */
function bearerOf(token: TransportOptions["token"]) {
  // fetch would reject it with a message that quotes the whole header, secret included.
  if (typeof token === "string" && token && !isHeaderToken(token)) throw badToken();
  return async (refresh: boolean, signal?: AbortSignal): Promise<string | undefined> => {
    if (typeof token !== "function") return token || undefined;
    let given: string;
    try {
      given = await token({ refresh, signal });
    } catch (err) {
      if (signal?.aborted) throw signal.reason ?? err;
      if (err instanceof LssError) throw err;
      throw new LssError(
        "token_unavailable",
        `could not get a token: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
    if (!isHeaderToken(given)) throw badToken();
    return given;
  };
}

/** A body as JSON; null when there is none; undefined when it is not JSON. */
function jsonOf(text: string): Record<string, unknown> | null | undefined {
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/**
 * What one attempt came to: an answer to return (`json`: whether its body was JSON, or empty), or
 * a reason to retry, and how soon at the earliest.
 */
type Attempt = { answer: Answer; json: boolean } | { retry: string; afterMs: number | null; answer?: Answer };

export function createTransport(opts: TransportOptions) {
  const bearer = bearerOf(opts.token);
  const base = opts.url.replace(/\/+$/, "");
  const retries = opts.retries ?? 4;
  const baseDelay = opts.baseDelayMs ?? 250;
  const maxDelay = opts.maxDelayMs ?? 5000;
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const doFetch = opts.fetch ?? fetch;
  const sleep = opts.sleep ?? abortableSleep;
  const refreshes = typeof opts.token === "function";
  const userAgent = opts.userAgent ? `${opts.userAgent} ${CLIENT_PRODUCT}` : CLIENT_PRODUCT;
  if (opts.namespace !== undefined && !NAMESPACE_PATTERN.test(opts.namespace))
    throw new LssError("bad_request", `namespace must be ${NAMESPACE_RULE}: '${opts.namespace}'`);

  /** One attempt: the answer, or why it is worth another. Network errors are the caller's. */
  async function attempt(method: string, path: string, o: RequestOptions, token?: string): Promise<Attempt> {
    const headers: Record<string, string> = { "User-Agent": userAgent };
    if (o.body !== undefined) headers["Content-Type"] = "application/json";
    if (token) headers.Authorization = `Bearer ${token}`;
    if (opts.namespace) headers[NAMESPACE_HEADER] = opts.namespace;
    const timeout = AbortSignal.timeout(timeoutMs + (o.holdMs ?? 0));
    const res = await doFetch(`${base}${path}`, {
      method,
      headers,
      body: o.body === undefined ? undefined : JSON.stringify(o.body),
      signal: o.signal ? AbortSignal.any([o.signal, timeout]) : timeout,
    });
    const body = jsonOf(await res.text());
    const answer = { status: res.status, body: body ?? null, headers: res.headers };
    if (!RETRYABLE.has(res.status)) return { answer, json: body !== undefined };
    const message = (body?.error as { message?: string } | undefined)?.message;
    const retryAfter = Number(res.headers.get("Retry-After"));
    return {
      retry: `server answered ${res.status}${message ? ` (${message})` : ""}`,
      afterMs: Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter * 1000 : null,
      answer,
    };
  }

  /** One request with retries: its answer, or LssError (unreachable, or the last retryable answer). */
  async function request(method: string, path: string, o: RequestOptions = {}): Promise<Answer> {
    const idempotent = o.idempotent ?? true;
    /** A provided token is refreshed once when the server refuses it (it may have just expired). */
    let refresh = false;
    let refreshed = false;
    for (let tries = 0; ; tries++) {
      let outcome: Attempt;
      try {
        outcome = await attempt(method, path, o, await bearer(refresh, o.signal));
        refresh = false;
      } catch (err) {
        if (err instanceof LssError) throw err;
        if (o.signal?.aborted) throw o.signal.reason ?? err;
        outcome = { retry: unsent(method, path, err, tries, idempotent), afterMs: null };
      }
      if ("json" in outcome) {
        if (outcome.answer.status === 401 && refreshes && !refreshed) {
          refresh = refreshed = true;
          tries--; // not a retry of a transient failure: no backoff, no count
          continue;
        }
        if (!outcome.json) {
          const { status } = outcome.answer;
          throw new LssError(
            "bad_response",
            `${method} ${path}: ${status} with a body that is not JSON`,
            status,
          );
        }
        return outcome.answer;
      }
      const { answer, retry } = outcome;
      if (answer && (tries >= retries || (!idempotent && !answeredUndone(answer.status, answer.body)))) {
        throw new LssError(
          codeOf(answer.body, "unavailable"),
          `${method} ${path}: ${retry}`,
          answer.status,
          answer.body,
        );
      }
      const backoff = Math.min(maxDelay, baseDelay * 2 ** tries) * (0.5 + Math.random() / 2);
      const delayMs = Math.min(maxDelay, Math.max(backoff, outcome.afterMs ?? 0));
      opts.onRetry?.({ attempt: tries + 1, delayMs, reason: retry });
      await sleep(delayMs, o.signal);
    }
  }

  /** A network failure's reason, when it is worth another attempt; else the LssError to throw. */
  function unsent(method: string, path: string, err: unknown, tries: number, idempotent: boolean): string {
    const reason = describeNetworkError(err);
    if (tries >= retries) throw new LssError("unreachable", `cannot reach LSS at ${base}: ${reason}`);
    if (!idempotent && !NEVER_SENT.test(reason)) {
      throw new LssError(
        "unreachable",
        `${method} ${path}: ${reason}; it may have reached the server, so it is not sent again`,
      );
    }
    return reason;
  }

  return { url: base, request };
}

export type Transport = ReturnType<typeof createTransport>;
