/**
 * The job's GitHub Actions OIDC ID tokens, as @actions/core's getIDToken fetches them (GET
 * `<ACTIONS_ID_TOKEN_REQUEST_URL>&audience=<aud>` with `Authorization: Bearer <request token>`,
 * answer `{"value": "<jwt>"}`), without @actions/core: main, post and the detached renewer share it.
 * A token is reused until shortly before it expires, then a fresh one is fetched. No token (ID or
 * request token) ever goes into a message.
 */
import type { TokenProvider } from "../client/client.js";
import { abortableSleep } from "../client/client.js";

/** Where the job's ID tokens come from: the runner's endpoint, asked for tokens for one audience. */
export interface IdTokenSource {
  /** ACTIONS_ID_TOKEN_REQUEST_URL */
  requestUrl: string;
  /** ACTIONS_ID_TOKEN_REQUEST_TOKEN: a secret of the runner, valid for the whole job. */
  requestToken: string;
  audience: string;
}

/** The runner's ID-token endpoint, when the job may use it (`permissions: id-token: write`). */
export function idTokenRequestFrom(
  env: Record<string, string | undefined>,
): { requestUrl: string; requestToken: string } | null {
  const requestUrl = env.ACTIONS_ID_TOKEN_REQUEST_URL ?? "";
  const requestToken = env.ACTIONS_ID_TOKEN_REQUEST_TOKEN ?? "";
  return requestUrl && requestToken ? { requestUrl, requestToken } : null;
}

export class IdTokenError extends Error {
  override name = "IdTokenError";
}

const RETRYABLE = new Set([408, 429, 500, 502, 503, 504]);

export interface FetchIdTokenOptions {
  signal?: AbortSignal;
  fetch?: typeof fetch;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Attempts after the first for network errors and 408/429/5xx. */
  retries?: number;
  /** Per attempt. */
  timeoutMs?: number;
}

/** One ID token from the runner (retrying transient failures); throws IdTokenError. */
export async function fetchIdToken(source: IdTokenSource, opts: FetchIdTokenOptions = {}): Promise<string> {
  const doFetch = opts.fetch ?? fetch;
  const sleep = opts.sleep ?? abortableSleep;
  const retries = opts.retries ?? 4;
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const url = `${source.requestUrl}&audience=${encodeURIComponent(source.audience)}`;
  for (let attempt = 0; ; attempt++) {
    let reason: string;
    try {
      const timeout = AbortSignal.timeout(timeoutMs);
      const res = await doFetch(url, {
        headers: { Authorization: `Bearer ${source.requestToken}`, Accept: "application/json" },
        signal: opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout,
      });
      const text = await res.text();
      if (res.ok) {
        let value: unknown;
        try {
          value = (JSON.parse(text) as { value?: unknown }).value;
        } catch {
          // below
        }
        if (typeof value !== "string" || !value) {
          throw new IdTokenError("the runner's ID-token endpoint answered without a token");
        }
        return value;
      }
      reason = `the runner's ID-token endpoint answered ${res.status}`;
      if (!RETRYABLE.has(res.status)) throw new IdTokenError(reason);
    } catch (err) {
      if (err instanceof IdTokenError) throw err;
      if (opts.signal?.aborted) throw opts.signal.reason ?? err;
      const e = err as { name?: string; cause?: { code?: string } };
      reason = `cannot reach the runner's ID-token endpoint: ${e.name === "TimeoutError" ? "no answer in time" : (e.cause?.code ?? (err as Error).message)}`;
    }
    if (attempt >= retries) throw new IdTokenError(reason);
    await sleep(Math.min(5000, 250 * 2 ** attempt), opts.signal);
  }
}

/** A JWT's payload claims `exp` and `iat` (seconds), read without verifying: the server verifies. */
export function jwtTimes(jwt: string): { exp: number; iat: number | null } | null {
  const payload = jwt.split(".")[1];
  if (!payload) return null;
  try {
    const claims = JSON.parse(Buffer.from(payload, "base64url").toString("utf8")) as {
      exp?: unknown;
      iat?: unknown;
    };
    if (typeof claims.exp !== "number" || !Number.isFinite(claims.exp)) return null;
    return { exp: claims.exp, iat: typeof claims.iat === "number" ? claims.iat : null };
  } catch {
    return null;
  }
}

/** How long before its expiry an ID token is replaced (a quarter of its life when that is shorter). */
export const REFRESH_BEFORE_EXPIRY_MS = 60_000;

export interface IdTokenProviderOptions {
  /** Fetches a new token (fetchIdToken with the job's source). */
  fetchToken(signal?: AbortSignal): Promise<string>;
  /** Told of every new token, e.g. to mask it in the log. */
  onToken?(token: string): void;
  now?: () => number;
}

/**
 * A TokenProvider for the LSS client: one ID token, reused until it is within a minute of its
 * expiry (or within a quarter of its lifetime, for tokens that live less than four minutes), then a
 * fresh one; a fresh one too when asked to refresh (the server refused the last). Concurrent asks
 * share one fetch. A token whose expiry cannot be read is used once.
 */
export function idTokenProvider(opts: IdTokenProviderOptions): TokenProvider {
  const now = opts.now ?? Date.now;
  let cached: { token: string; refreshAt: number } | null = null;
  let pending: Promise<string> | null = null;

  const fetchNew = (signal?: AbortSignal) => {
    pending ??= opts
      .fetchToken(signal)
      .then((token) => {
        opts.onToken?.(token);
        const times = jwtTimes(token);
        if (times) {
          const expMs = times.exp * 1000;
          const lifeMs = times.iat === null ? Number.POSITIVE_INFINITY : expMs - times.iat * 1000;
          const margin = Math.min(REFRESH_BEFORE_EXPIRY_MS, Math.max(0, lifeMs / 4));
          cached = { token, refreshAt: expMs - margin };
        } else cached = null;
        return token;
      })
      .finally(() => {
        pending = null;
      });
    return pending;
  };

  return async ({ refresh, signal }) => {
    if (!refresh && cached && now() < cached.refreshAt) return cached.token;
    if (refresh) cached = null;
    return fetchNew(signal);
  };
}

/** The provider of a job's ID tokens from its source, fetched as the runner toolkit does. */
export const jobIdTokens = (
  source: IdTokenSource,
  opts: { onToken?: (token: string) => void; fetch?: typeof fetch; now?: () => number } = {},
): TokenProvider =>
  idTokenProvider({
    fetchToken: (signal) => fetchIdToken(source, { signal, fetch: opts.fetch }),
    onToken: opts.onToken,
    now: opts.now,
  });
