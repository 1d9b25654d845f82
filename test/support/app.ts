/**
 * The in-process app harness, one for every test file: the config a test app starts from, the app on
 * a store, one request helper, and the one assertion of the error shape.
 */
import { expect } from "vitest";
import { type AppDeps, createApp } from "../../server/app.js";
import type { RateLimiter } from "../../server/auth/rate-limit.js";
import { createMemoryStore } from "../../server/stores/memory.js";
import type { LockStore } from "../../server/stores/types.js";

export const ADMIN_TOKEN = "admin-token-for-tests-0123456789";

export type AppConfig = AppDeps["config"];
export type App = ReturnType<typeof createApp>;

const TEST_CONFIG = {
  maxTtlMs: 86_400_000,
  adminToken: ADMIN_TOKEN,
  locksApiAuth: "open",
  tokenCacheMs: 10_000,
  trustProxy: 0,
  maxBodyBytes: 16 * 1024,
} satisfies AppConfig;

export const testConfig = (overrides: Partial<AppConfig> = {}) => ({ ...TEST_CONFIG, ...overrides });

/** An app on `store` (a new memory store when none is given), with no rate limiter unless given one. */
export function testApp(
  opts: { store?: LockStore; rateLimiter?: RateLimiter | null; config?: Partial<AppConfig> } = {},
): { app: App; store: LockStore } {
  const store = opts.store ?? createMemoryStore();
  const app = createApp({ store, rateLimiter: opts.rateLimiter ?? null, config: testConfig(opts.config) });
  return { app, store };
}

// biome-ignore lint/suspicious/noExplicitAny: response bodies are inspected field by field
export type Body = any;

export interface Res {
  status: number;
  headers: Headers;
  /** The JSON body; null when there is none. */
  body: Body;
  text: string;
}

export interface RequestOptions {
  /** A value to send as JSON. */
  json?: unknown;
  /** A body sent as is. */
  raw?: string;
  /** The Authorization header as sent; null: none. Defaults to the admin token as a bearer token. */
  auth?: string | null;
  /** Content-Type; null: none. Defaults to application/json when there is a body. */
  type?: string | null;
  headers?: Record<string, string>;
  /** Fail the test on a 5xx answer (for suites in which no request may ever be a server error). */
  never5xx?: boolean;
}

/** One in-process request; the answer must be JSON (or empty). */
export async function request(
  app: App,
  method: string,
  path: string,
  opts: RequestOptions = {},
): Promise<Res> {
  const headers: Record<string, string> = { ...opts.headers };
  const auth = opts.auth === undefined ? `Bearer ${ADMIN_TOKEN}` : opts.auth;
  if (auth !== null) headers.Authorization = auth;
  const body = opts.raw ?? (opts.json === undefined ? undefined : JSON.stringify(opts.json));
  const type = opts.type === undefined ? (body === undefined ? null : "application/json") : opts.type;
  if (type !== null) headers["Content-Type"] = type;
  const res = await app.request(path, { method, headers, body });
  const text = await res.text();
  if (opts.never5xx) {
    expect(res.status, `${method} ${path} must never be a server error: ${text}`).toBeLessThan(500);
  }
  let parsed: Body = null;
  if (text) {
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new Error(`${method} ${path} answered ${res.status} with a body that is not JSON: ${text}`);
    }
  }
  return { status: res.status, headers: res.headers, body: parsed, text };
}

/**
 * The one error shape, with its status and code; `mentions`: what its message must name (each of
 * them, when a list).
 */
export function expectError(
  res: Res,
  status: number,
  code: string,
  mentions?: RegExp | string | Array<RegExp | string>,
) {
  expect(res.status, res.text).toBe(status);
  expect(res.body).toMatchObject({ status: "error", error: { code, message: expect.any(String) } });
  expect(typeof res.body.error.code).toBe("string");
  for (const m of mentions === undefined ? [] : Array.isArray(mentions) ? mentions : [mentions]) {
    expect(res.body.error.message).toMatch(m);
  }
}

/**
 * An in-process app on a store, with a short JSON helper: `call(method, path, body?, token?)`,
 * token the admin's by default, null (or "") for none.
 */
export function appOn(store: LockStore, config = testConfig()) {
  const app = createApp({ store, rateLimiter: null, config });
  const call = (method: string, path: string, body?: unknown, token: string | null = ADMIN_TOKEN) =>
    request(app, method, path, { json: body, auth: token ? `Bearer ${token}` : null });
  return { app, call };
}
