/**
 * Prometheus metrics of one app (GET /metrics): a registry of its own per app, never prom-client's
 * global one (tests build many apps in one process, and each instance counts only its own work).
 * Everything is counted from outside the lock code: an HTTP middleware, a store decorator
 * (instrumentStore) and the app's onError. No label ever carries a key, a token or a holder id.
 */

import type { Context, MiddlewareHandler } from "hono";
import { matchedRoutes } from "hono/route";
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { RateLimiter } from "./auth/rate-limit.js";
import {
  type AcquireOutcome,
  type LockEvent,
  type LockMode,
  type LockRef,
  type LockStore,
  StoreUnavailableError,
  type Watch,
} from "./stores/types.js";

export type StoreErrorKind = "unavailable" | "timeout" | "outcome_unknown";
export type RateLimitReason = "requests" | "failed_auth" | "waits" | "other";

const METHODS = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);

/** Seconds: lock operations take milliseconds, waiting requests up to LSS_MAX_WAIT_MS (55 s). */
const DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
const HANDOFF_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

export interface Metrics {
  readonly registry: Registry;
  /** The Prometheus text exposition of every metric of this app. */
  render(): Promise<string>;
  readonly contentType: string;
  request(route: string, method: string, status: number, seconds: number): void;
  granted(mode: LockMode): void;
  /** byHolder false: an operator's forced release (a release without the lease's token). */
  released(byHolder: boolean): void;
  /** Leases this instance found expired (see docs/metrics.md: counted where the store reports them). */
  expired(count?: number): void;
  waiting(delta: 1 | -1): void;
  handoff(seconds: number): void;
  storeError(operation: string, kind: StoreErrorKind): void;
  storeTimeout(operation: string): void;
  rateLimited(reason: RateLimitReason): void;
  /** The GitHub App: a webhook delivery (by event and what was done with it). */
  githubWebhook(event: string, outcome: string): void;
  /** A call to GitHub sent from the outbox: by what it carried, and how it ended. */
  githubCall(
    kind: "approve" | "reject" | "status" | "check",
    outcome: "done" | "retry" | "dropped" | "expired",
  ): void;
  /** A webhook delivery (notifications): by event, and how it ended (or that it is retried). */
  webhookDelivery(event: string, outcome: "done" | "retry" | "dropped" | "expired" | "overflow"): void;
  /** From an event to its receiver's 2xx, for deliveries taken at the first attempt. */
  webhookLatency(seconds: number): void;
}

/**
 * processMetrics: prom-client's default metrics of the process (CPU, memory, event loop, GC), for
 * Node processes only (never in a Worker, which has no process of its own to describe).
 */
export function createMetrics(opts: { processMetrics?: boolean } = {}): Metrics {
  const registry = new Registry();
  const registers = [registry];
  const requests = new Counter({
    name: "lss_http_requests_total",
    help: "HTTP requests answered by this instance, by route pattern, method and status",
    labelNames: ["route", "method", "status"] as const,
    registers,
  });
  const duration = new Histogram({
    name: "lss_http_request_duration_seconds",
    help: "Time to answer an HTTP request (a waiting request counts the whole wait), by route pattern and method",
    labelNames: ["route", "method"] as const,
    buckets: DURATION_BUCKETS,
    registers,
  });
  const grants = new Counter({
    name: "lss_lock_grants_total",
    help: "Leases granted by this instance's store calls (not retried acquires), by mode",
    labelNames: ["mode"] as const,
    registers,
  });
  const releases = new Counter({
    name: "lss_lock_releases_total",
    help: "Leases released by their holder through this instance (forced releases are apart)",
    registers,
  });
  const forced = new Counter({
    name: "lss_lock_forced_releases_total",
    help: "Leases released by an operator without their token (force) through this instance",
    registers,
  });
  const expiries = new Counter({
    name: "lss_lock_expiries_total",
    help: "Leases that ended by expiry, as this instance's store calls found them",
    registers,
  });
  const waiters = new Gauge({
    name: "lss_lock_waiting_requests",
    help: "Requests of this instance waiting on a key now (acquire or status with wait_ms)",
    registers,
  });
  const handoffs = new Histogram({
    name: "lss_lock_handoff_seconds",
    help: "From the first wake of a waiting request of this instance by a release of a key to the grant of that key to a waiter of this instance",
    buckets: HANDOFF_BUCKETS,
    registers,
  });
  const storeErrors = new Counter({
    name: "lss_store_errors_total",
    help: "Store calls of this instance that failed (503), by operation and kind: timeout, outcome_unknown (sent, no answer: it may have been applied), unavailable (never applied)",
    labelNames: ["operation", "kind"] as const,
    registers,
  });
  const storeTimeouts = new Counter({
    name: "lss_store_timeouts_total",
    help: "Store calls of this instance that got no answer within LSS_STORE_TIMEOUT_MS, by operation",
    labelNames: ["operation"] as const,
    registers,
  });
  const rateLimited = new Counter({
    name: "lss_rate_limited_total",
    help: "Requests refused with 429 by this instance, by reason: requests (LSS_RATE_LIMIT), failed_auth (too many failed authentications), waits (LSS_MAX_WAITS)",
    labelNames: ["reason"] as const,
    registers,
  });
  const githubWebhooks = new Counter({
    name: "lss_github_webhooks_total",
    help: "GitHub App webhook deliveries this instance answered, by event and outcome (unsigned, duplicate, queued, approved, rejected, no_rule, ended, released, posted, forgotten, no_freeze, ignored, bad_request)",
    labelNames: ["event", "outcome"] as const,
    registers,
  });
  const githubCalls = new Counter({
    name: "lss_github_calls_total",
    help: "Calls to GitHub's API from the outbox, by kind (approve, reject, status, check) and outcome: done, retry (GitHub or the network failed; sent again later), dropped (refused for good), expired (not taken while it mattered)",
    labelNames: ["kind", "outcome"] as const,
    registers,
  });
  const webhookDeliveries = new Counter({
    name: "lss_webhook_deliveries_total",
    help: "Webhook deliveries (notifications), by event and outcome: done (the receiver answered 2xx), retry (it failed; sent again later), dropped (refused for good: 4xx, a redirect, a private address, a deleted subscription), expired (not taken within an hour), overflow (the namespace had too many pending)",
    labelNames: ["event", "outcome"] as const,
    registers,
  });
  const webhookLatency = new Histogram({
    name: "lss_webhook_delivery_seconds",
    help: "From a lock event to its receiver's 2xx, for deliveries taken at the first attempt",
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers,
  });
  // Each request's series, looked up once per route, method and status: prom-client would hash the
  // labels of every call (a few percent of the server's CPU in the benchmark). Routes are patterns
  // and methods a fixed set, so the map stays small.
  const series = new Map<string, { count: Counter.Internal; time: Histogram.Internal<"route" | "method"> }>();
  const perRequest = (route: string, method: string, status: number) => {
    const id = `${route} ${method} ${status}`;
    let s = series.get(id);
    if (!s) {
      s = { count: requests.labels(route, method, String(status)), time: duration.labels(route, method) };
      series.set(id, s);
    }
    return s;
  };
  // Labels that are known in advance read 0 before their first event, so that rate() sees the start.
  for (const mode of ["exclusive", "shared"] as const) grants.inc({ mode }, 0);
  for (const reason of ["requests", "failed_auth", "waits"] as const) rateLimited.inc({ reason }, 0);

  if (opts.processMetrics) collectDefaultMetrics({ register: registry, prefix: "lss_" });

  return {
    registry,
    render: () => registry.metrics(),
    contentType: registry.contentType,
    request(route, method, status, seconds) {
      const m = METHODS.has(method) ? method : "other";
      const s = perRequest(route, m, status);
      s.count.inc();
      s.time.observe(seconds);
    },
    granted: (mode) => grants.inc({ mode }),
    released: (byHolder) => (byHolder ? releases : forced).inc(),
    expired: (count = 1) => expiries.inc(count),
    waiting: (delta) => waiters.inc(delta),
    handoff: (seconds) => handoffs.observe(seconds),
    storeError: (operation, kind) => storeErrors.inc({ operation, kind }),
    storeTimeout: (operation) => storeTimeouts.inc({ operation }),
    rateLimited: (reason) => rateLimited.inc({ reason }),
    githubWebhook: (event, outcome) =>
      githubWebhooks.inc({ event: EVENTS.has(event) ? event : "other", outcome }),
    githubCall: (kind, outcome) => githubCalls.inc({ kind, outcome }),
    webhookDelivery: (event, outcome) => webhookDeliveries.inc({ event, outcome }),
    webhookLatency: (seconds) => webhookLatency.observe(seconds),
  };
}

/** The webhook events counted by name; any other is "other" (the header is the sender's to write). */
const EVENTS = new Set(["ping", "deployment_protection_rule", "workflow_job", "pull_request", "merge_group"]);

/**
 * The route a request was for, as a pattern (`/infra/locks/:key/acquire`, never the key itself):
 * the last route matched that is not a middleware (`app.use` registers its routes for every
 * method); "unmatched" when no route matched (a 404).
 */
export function routeOf(c: Context): string {
  const routes = matchedRoutes(c);
  for (let i = routes.length - 1; i >= 0; i--) {
    const r = routes[i];
    if (r && r.method !== "ALL") return r.path;
  }
  return "unmatched";
}

/**
 * Counts and times every request. It runs once per request even where an app is mounted twice
 * (Vercel serves the app at / and /api: a path under /api that no route matches passes the `*`
 * middleware of both mounts).
 */
export function metricsMiddleware(metrics: Metrics): MiddlewareHandler {
  const seen = new WeakSet<object>();
  return async (c, next) => {
    if (seen.has(c)) return next();
    seen.add(c);
    const started = performance.now();
    try {
      await next();
    } finally {
      // An error thrown past onError (none should be) answers 500.
      const status = c.finalized ? c.res.status : 500;
      metrics.request(routeOf(c), c.req.method, status, (performance.now() - started) / 1000);
    }
  };
}

/** Which limit a 429 `rate_limited` is about, from its message (see auth/middleware.ts, routes/lease.ts). */
export function rateLimitReason(message: string): RateLimitReason {
  if (/failed authentications/i.test(message)) return "failed_auth";
  if (/LSS_MAX_WAITS|waiting requests/i.test(message)) return "waits";
  if (/rate limit/i.test(message)) return "requests";
  return "other";
}

const TIMEOUT = /timed? ?out|timeout|within \d+ ?ms/i;

/** Whether a store failure is a timeout: the error, or one of its causes, says so. */
function isTimeout(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if (e.name === "TimeoutError" || (e !== err && TIMEOUT.test(e.message))) return true;
  }
  return false;
}

/** Counts a store failure (and rethrows it): only StoreUnavailableError is the store's. */
function countFailure(metrics: Metrics, operation: string, err: unknown): never {
  if (err instanceof StoreUnavailableError) {
    const timeout = isTimeout(err);
    if (timeout) metrics.storeTimeout(operation);
    metrics.storeError(operation, err.maybeApplied ? "outcome_unknown" : timeout ? "timeout" : "unavailable");
  }
  throw err;
}

/** A function whose failures are counted under `operation`; its result is unchanged. */
function counted<F extends (...args: never[]) => unknown>(metrics: Metrics, operation: string, fn: F): F {
  return ((...args: Parameters<F>) => {
    let result: unknown;
    try {
      result = fn(...args);
    } catch (err) {
      countFailure(metrics, operation, err);
    }
    if (result instanceof Promise) return result.catch((err) => countFailure(metrics, operation, err));
    return result;
  }) as F;
}

/**
 * Forward every property of `target`, with `overrides` in place of some; functions are called on
 * the target and, when `operation` names them, their store failures are counted. Methods added to
 * the interface later are forwarded (and counted) without a change here.
 */
function forward<T extends object>(
  target: T,
  overrides: Partial<T>,
  wrap: (name: string, fn: (...args: never[]) => unknown) => unknown,
): T {
  const cache = new Map<PropertyKey, unknown>();
  return new Proxy(target, {
    get(t, prop) {
      if (Object.hasOwn(overrides, prop)) return overrides[prop as keyof T];
      const value = Reflect.get(t, prop, t);
      if (typeof value !== "function" || typeof prop !== "string") return value;
      let wrapped = cache.get(prop);
      if (!wrapped) {
        wrapped = wrap(prop, (value as (...args: never[]) => unknown).bind(t));
        cache.set(prop, wrapped);
      }
      return wrapped;
    },
  });
}

const refId = (ref: LockRef) => `${ref.namespace}\u0000${ref.key}`;

/**
 * The store, counting what its calls answer: grants (acquire, acquireAny, register with a lock),
 * releases and forced releases, store failures by operation (every method, also the token
 * records'), waiting requests (open watches of a request) and handoffs (see below).
 *
 * Handoff: from the moment a waiting request of this instance is woken by a key's release event
 * (the first of them to wake) to the grant of that key to a waiter of this instance. A release
 * that went to someone else (the next expiry event names a lease that is not the waiter's), a
 * waiter told "held" after it, or the last watch of the key closing ends the measurement without
 * an observation.
 */
export function instrumentStore(store: LockStore, metrics: Metrics): LockStore {
  const wrap = (name: string, fn: (...args: never[]) => unknown) => counted(metrics, name, fn);

  /**
   * Keys that requests of this instance watch: how many watches; when one of them saw the key
   * released; and the expiry of the grant that followed, as an expiry event told it (undefined:
   * none yet). The event may come before the grant's own answer: a grant with that expiry is ours.
   */
  type Watched = { watches: number; releasedAt: number | null; grantedUntil?: number | null };
  const watched = new Map<string, Watched>();
  const answered = (ref: LockRef, outcome: AcquireOutcome, waiter: boolean) => {
    if (outcome.outcome === "granted") {
      metrics.granted(outcome.lease.mode);
      if (outcome.expired) metrics.expired(outcome.expired);
    }
    const w = watched.get(refId(ref));
    if (!waiter || !w || w.releasedAt == null) return;
    // Held: the release event did not free the key for us (another waiter left the queue, or a
    // shared holder of several went): no handoff pending. Queued: still someone else's turn.
    if (outcome.outcome === "granted") {
      if (w.grantedUntil === undefined || w.grantedUntil === outcome.lease.expiresAt)
        metrics.handoff((performance.now() - w.releasedAt) / 1000);
    } else if (outcome.outcome !== "held") return;
    w.releasedAt = null;
    w.grantedUntil = undefined;
  };
  const seen = (w: Watched, event: LockEvent | null) => {
    if (event?.kind === "released" && (w.releasedAt == null || w.grantedUntil !== undefined)) {
      w.releasedAt = performance.now();
      w.grantedUntil = undefined;
    } else if (event?.kind === "expiry" && w.releasedAt != null && w.grantedUntil === undefined) {
      w.grantedUntil = event.expiresAt;
    }
    return event;
  };

  /** One waiting request watches all its keys with one signal (its request's): it counts once. */
  const requests = new Map<object, number>();
  const open = (group: object) => {
    const n = requests.get(group) ?? 0;
    requests.set(group, n + 1);
    if (n === 0) metrics.waiting(1);
  };
  const close = (group: object) => {
    const n = (requests.get(group) ?? 1) - 1;
    if (n > 0) requests.set(group, n);
    else {
      requests.delete(group);
      metrics.waiting(-1);
    }
  };

  const watchStore = counted(metrics, "watch", store.events.watch.bind(store.events));
  const watch = async (ref: LockRef, signal?: AbortSignal): Promise<Watch> => {
    const inner = await watchStore(ref, signal);
    const id = refId(ref);
    const group = signal ?? {};
    const w: Watched = watched.get(id) ?? { watches: 0, releasedAt: null };
    w.watches++;
    watched.set(id, w);
    open(group);
    let closed = false;
    return {
      get live() {
        return inner.live;
      },
      next: (timeoutMs, sig) => inner.next(timeoutMs, sig).then((event) => seen(w, event)),
      close() {
        if (!closed) {
          closed = true;
          close(group);
          if (--w.watches === 0) watched.delete(id);
        }
        inner.close();
      },
    };
  };
  const events = forward(store.events, { watch }, wrap);

  const overrides: Partial<LockStore> = {
    events,
    tokens: forward(store.tokens, {}, (name, fn) => counted(metrics, `tokens.${name}`, fn)),
    sessions: forward(store.sessions, {}, (name, fn) => counted(metrics, `sessions.${name}`, fn)),
    acquire: wrap("acquire", async (ref: LockRef, params: Parameters<LockStore["acquire"]>[1]) => {
      const outcome = await store.acquire(ref, params);
      answered(ref, outcome, params.queueWindowMs !== null);
      return outcome;
    }) as LockStore["acquire"],
    acquireAny: wrap(
      "acquireAny",
      async (refs: LockRef[], params: Parameters<LockStore["acquireAny"]>[1]) => {
        const outcome = await store.acquireAny(refs, params);
        const ref = refs[outcome.index];
        if (ref) answered(ref, outcome, params.queueWindowMs !== null);
        return outcome;
      },
    ) as LockStore["acquireAny"],
    release: wrap("release", async (ref: LockRef, params: Parameters<LockStore["release"]>[1]) => {
      const outcome = await store.release(ref, params);
      if (outcome.outcome === "released") {
        // A retried release (released already) is not counted again.
        if (!outcome.again) metrics.released(params.tokenHash !== null);
        if (outcome.expired) metrics.expired(outcome.expired);
      }
      return outcome;
    }) as LockStore["release"],
    register: wrap("register", async (ref: LockRef, params: Parameters<LockStore["register"]>[1]) => {
      const outcome = await store.register(ref, params);
      if (outcome.outcome === "created" && outcome.lease) metrics.granted(outcome.lease.mode);
      return outcome;
    }) as LockStore["register"],
  };
  return forward(store, overrides, wrap);
}

/** The rate limiter, counting its store failures (it keeps its counts on the lock store). */
export function instrumentRateLimiter(limiter: RateLimiter, metrics: Metrics): RateLimiter {
  return { perMinute: limiter.perMinute, limit: counted(metrics, "rate_limit", limiter.limit.bind(limiter)) };
}
