/**
 * createApp({ store, … }) → the Hono app serving both APIs. Request flow: body limit → route group
 * auth → rate limit → schema validation (src/protocol) → scope → one function of locks/ → one store
 * operation. One onError turns every failure into the one JSON error shape.
 */

import type { Context, ErrorHandler, MiddlewareHandler, NotFoundHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { NAMESPACE_HEADER } from "../src/protocol/namespace.js";
import { VERSION } from "../src/version.js";
import { accessLog } from "./access-log.js";
import { type AppEnv, authenticate, failedAuthGuard, rateLimit } from "./auth/middleware.js";
import { namedNamespace } from "./auth/namespace.js";
import { createOidcVerifier, githubServerOf } from "./auth/oidc.js";
import { memoryRateLimiter, type RateLimiter } from "./auth/rate-limit.js";
import { createTokenVerifier } from "./auth/tokens.js";
import type { TokenVerifier } from "./auth/types.js";
import { type ChangeListener, noticingChanges } from "./changes.js";
import { type Config, DEFAULT_CONFIG } from "./config.js";
import { ApiError, codeOfStatus, errorBody } from "./errors.js";
import type { GitHubApp } from "./github/app.js";
import { gatesOnKey } from "./github/gates.js";
import {
  registerGateStatus,
  registerGitHubRoutes,
  registerTick,
  WEBHOOK_MAX_BYTES,
} from "./github/routes.js";
import { createLeases } from "./locks/leases.js";
import { createStateLocks } from "./locks/state-locks.js";
import {
  createMetrics,
  instrumentRateLimiter,
  instrumentStore,
  type Metrics,
  metricsMiddleware,
  rateLimitReason,
} from "./metrics.js";
import { type Notifier, notifierOf } from "./notify/notifier.js";
import { registerWebhookRoutes } from "./notify/routes.js";
import { registerAdminRoutes } from "./routes/admin.js";
import { docsRoutes } from "./routes/docs.js";
import { registerHealth } from "./routes/health.js";
import { registerLeaseRoutes } from "./routes/leases/index.js";
import { registerMetrics } from "./routes/metrics.js";
import { newRouter, type Router, type Validation } from "./routes/router.js";
import { registerStateLockRoutes } from "./routes/state-locks.js";
import { RUNTIMES, type Runtime } from "./runtime.js";
import { type LockStore, StoreUnavailableError } from "./stores/types.js";
import { uiRoutes } from "./ui/routes.js";

type AppSetting =
  | "maxTtlMs"
  | "maxWaitMs"
  | "maxWaitsPerCaller"
  | "adminToken"
  | "locksApiAuth"
  | "tokenCacheMs"
  | "trustProxy"
  | "maxBodyBytes"
  | "rateLimitPerMinute"
  | "metricsEnabled"
  | "metricsToken"
  | "accessLog"
  | "oidc"
  | "publicOrigin"
  | "githubServerUrl"
  | "github"
  | "cronSecret"
  | "webhooks";

export interface AppDeps {
  store: LockStore;
  rateLimiter: RateLimiter | null;
  /** Where the app runs (default: Node); decides where a client's address comes from. */
  runtime?: Runtime;
  /** The metrics /metrics serves (default: a registry of this app's own, without process metrics). */
  metrics?: Metrics;
  /**
   * The GitHub App (with config.github): POST /github/webhook, GET /github/tick and /infra/gates
   * are served when given, and this instance's lock changes reach its gates and freezes at once.
   */
  github?: GitHubApp;
  /**
   * Webhook notifications (default: one of this app's own, on its store). Its tick, like the
   * App's, is the scheduler's: GET /tick, Node's loop, a Workers Cron Trigger.
   */
  notifier?: Notifier;
  /**
   * Where the server names its clients (see access-log.ts): the entry points pass console.log;
   * without it (tests in-process), nothing is logged.
   */
  log?: (line: string) => void;
  /** How routes validate requests (default "merged"; see routes/router.ts). */
  validation?: Validation;
  /** What the app reads of the configuration; what is left out is DEFAULT_CONFIG's. */
  config: Partial<Pick<Config, AppSetting>>;
}

/**
 * Hono's bodyLimit reads `c.req.raw`, which makes the Node adapter build a full web Request for
 * every call (a third of the server's CPU in the benchmark). Judge by the headers first; only a
 * streamed body without Content-Length goes through bodyLimit's counting reader.
 */
const BODYLESS = new Set(["GET", "HEAD", "DELETE", "OPTIONS"]);

function limitBody(maxBytes: number): MiddlewareHandler {
  const tooLarge = () => {
    throw new ApiError("payload_too_large", `request body exceeds ${maxBytes} bytes`);
  };
  const streamed = bodyLimit({ maxSize: maxBytes, onError: tooLarge });
  return async (c, next) => {
    const length = c.req.header("Content-Length");
    const chunked = c.req.header("Transfer-Encoding") !== undefined;
    // Over HTTP/1.1 a body comes with one of the two headers; elsewhere (in-process, some
    // serverless runtimes) a body may come with neither, so only body-less methods skip the count.
    if (!chunked && length === undefined && BODYLESS.has(c.req.method)) return next();
    if (!chunked && /^\d+$/.test(length ?? "")) return Number(length) > maxBytes ? tooLarge() : next();
    return streamed(c, next);
  };
}

/** A request line naming another server's origin is not ours to answer (see Runtime.foreignTarget). */
function refuseForeignTargets(runtime: Runtime, publicOrigin: string | null): MiddlewareHandler {
  return async (c, next) => {
    const foreign = runtime.foreignTarget(c, publicOrigin);
    if (foreign === null) return next();
    throw new ApiError(
      "bad_request",
      `the request target names ${foreign}, which is not this server${publicOrigin ? ` (${publicOrigin})` : ""}: send the path only`,
    );
  };
}

/** The 404 of an unknown route, in the one error shape (also for apps that mount this one). */
export const noRoute: NotFoundHandler = (c) =>
  c.json(
    errorBody("not_found", `no route for ${c.req.method} ${new URL(c.req.url).pathname}; see /docs`),
    404,
  );

/** The one error shape for whatever a route throws; a store that cannot answer fails closed. */
function errorHandler(metrics: Metrics | null): ErrorHandler<AppEnv> {
  return (err, c) => {
    if (err instanceof ApiError) {
      if (err.code === "rate_limited") metrics?.rateLimited(rateLimitReason(err.message));
      for (const [name, value] of Object.entries(err.headers)) c.header(name, value);
      return c.json(errorBody(err.code, err.message, err.extra), err.status);
    }
    if (err instanceof StoreUnavailableError) {
      // Fail closed: nothing reads as unlocked or granted when the store cannot say.
      c.header("Retry-After", "1");
      const hint = err.hint ? ` (${err.hint.message})` : "";
      const what = err.hint?.kind === "quota" ? "refuses commands" : "is unreachable";
      return c.json(
        errorBody("store_unavailable", `the lock store ${what}${hint}; nothing was changed or granted`),
        503,
      );
    }
    if (err instanceof HTTPException && err.status < 500) {
      const status = err.status as ContentfulStatusCode;
      return c.json(errorBody(codeOfStatus(status), err.message || "bad request"), status);
    }
    console.error("unexpected error", err);
    return c.json(errorBody("internal", "internal error"), 500);
  };
}

type Settings = typeof DEFAULT_CONFIG;

/** Who may call what: authentication per route group, the rate limit, the failed-auth guard. */
function guards(
  config: Settings,
  runtime: Runtime,
  verifier: TokenVerifier,
  rateLimiter: RateLimiter | null,
) {
  const clientAddress = (c: Context) => runtime.clientAddress(c, config.trustProxy);
  const limited = rateLimiter ? [rateLimit(rateLimiter, memoryRateLimiter(rateLimiter.perMinute))] : [];
  // With rate limiting on, an address gets as many failed authentications a minute as requests.
  const failures =
    rateLimiter && config.rateLimitPerMinute ? failedAuthGuard(config.rateLimitPerMinute) : undefined;
  const as = (optional: boolean) => [
    authenticate(verifier, { optional, clientAddress, failures }),
    ...limited,
    namedNamespace,
  ];
  return {
    clientAddress,
    limited,
    failures,
    authed: as(false),
    locksAuth: as(config.locksApiAuth === "open"),
  };
}

/** The OpenAPI document of the app's routes, built once, on first use (it takes milliseconds of CPU). */
function openApiOf(app: Router) {
  app.openAPIRegistry.registerComponent("securitySchemes", "bearer", {
    type: "http",
    scheme: "bearer",
    description: `An API token, or a workflow's GitHub OIDC token. A token with the admin scope may act in another namespace by naming it in the ${NAMESPACE_HEADER} header.`,
  });
  let document: ReturnType<typeof app.getOpenAPIDocument> | undefined;
  return () =>
    (document ??= app.getOpenAPIDocument({
      openapi: "3.0.3",
      info: {
        title: "LSS — Lock State Service",
        version: VERSION,
        description:
          "Leases with fencing tokens (/infra/locks) and status locks (/locks) on one lock engine. " +
          "A status lock `abc` is the lease key `locks/abc`.",
      },
      security: [{ bearer: [] }],
    }));
}

const INDEX = {
  status: "ok",
  service: "lss",
  version: VERSION,
  docs: "/docs",
  openapi: "/openapi.json",
  health: "/health",
  dashboard: "/ui",
};

/** What a lock change sets off: the GitHub App's gates and freezes (not for a supersede), and notifications. */
function listenerOf(github: GitHubApp | undefined, notifier: Notifier): ChangeListener {
  return (ref, change) => {
    const work = [
      github && change.kind !== "superseded" ? github.changed(ref) : null,
      notifier.changed(ref, change),
    ].filter((w): w is Promise<void> => w !== null);
    return work.length === 0 ? null : Promise.all(work).then(() => {});
  };
}

/** The scheduler's one tick: the App's, then the notifier's; when either's outbox is next due. */
export function tickOf(github: GitHubApp | undefined, notifier: Notifier) {
  return async (): Promise<number | null> => {
    const dues = [github ? await github.tick() : null, await notifier.tick().catch(() => null)];
    const due = dues.filter((d): d is number => d !== null);
    return due.length ? Math.min(...due) : null;
  };
}

export function createApp(deps: AppDeps) {
  const { runtime = RUNTIMES.node } = deps;
  // A setting given as undefined is a setting not given: the default stands.
  const given = Object.entries(deps.config).filter(([, value]) => value !== undefined);
  const config: Settings = { ...DEFAULT_CONFIG, ...Object.fromEntries(given) };
  // Metrics count from outside: the store and the rate limiter wrapped, a middleware, onError.
  const metrics = config.metricsEnabled === false ? null : (deps.metrics ?? createMetrics());
  const notifier = deps.notifier ?? notifierOf(config, deps.store, metrics ?? undefined);
  const changes = noticingChanges(deps.store, listenerOf(deps.github, notifier), {
    background: runtime.name === "node",
  });
  const observed = changes.store;
  const store = metrics ? instrumentStore(observed, metrics) : observed;
  const rateLimiter =
    metrics && deps.rateLimiter ? instrumentRateLimiter(deps.rateLimiter, metrics) : deps.rateLimiter;
  const oidc = config.oidc ? createOidcVerifier(config.oidc) : null;
  const verifier = createTokenVerifier(store.tokens, config.adminToken, config.tokenCacheMs, oidc);
  const { clientAddress, limited, failures, authed, locksAuth } = guards(
    config,
    runtime,
    verifier,
    rateLimiter,
  );
  // Run links go to the GitHub the OIDC tokens come from, unless told otherwise.
  const githubUrl =
    deps.config.githubServerUrl ??
    (config.oidc ? githubServerOf(config.oidc.issuer) : config.githubServerUrl);
  const leases = createLeases(store, githubUrl);
  const app = newRouter(deps.validation);

  if (deps.log) app.use("*", accessLog({ everyRequest: config.accessLog, log: deps.log }));
  if (metrics) app.use("*", metricsMiddleware(metrics));
  app.use("*", refuseForeignTargets(runtime, config.publicOrigin ?? null));
  const bodyLimits = { usual: limitBody(config.maxBodyBytes), webhook: limitBody(WEBHOOK_MAX_BYTES) };
  app.use("*", (c, next) =>
    (c.req.path === "/github/webhook" ? bodyLimits.webhook : bodyLimits.usual)(c, next),
  );
  app.use("*", changes.settle);
  app.use("/infra/*", ...authed);
  app.use("/admin/*", ...authed);
  app.use("/locks/*", ...locksAuth); // also matches "/locks" itself

  registerHealth(app, store, runtime.name);
  if (metrics) {
    const metricsToken = config.metricsToken ?? null;
    registerMetrics(app, metrics, { verifier, metricsToken, clientAddress, failures, limited });
  }
  registerLeaseRoutes(app, leases, config);
  registerStateLockRoutes(app, createStateLocks(store));
  registerAdminRoutes(app, store.tokens, verifier);
  if (deps.github && config.github) {
    const { github } = deps;
    registerGateStatus(app, github.gates);
    registerGitHubRoutes(app, { store, github, webhookSecret: config.github.webhookSecret, metrics });
  }
  registerWebhookRoutes(app, notifier, { allowPrivate: config.webhooks.allowPrivate });
  const tick = tickOf(deps.github, notifier);
  registerTick(app, { tick, cronSecret: config.github?.cronSecret ?? config.cronSecret, adminAuth: authed });

  const openApi = openApiOf(app);
  app.get("/openapi.json", (c) => c.json(openApi()));
  // The reference as a page of its own (no script, no CDN), and the dashboard.
  app.route("/", docsRoutes(openApi));
  const { adminToken, tokenCacheMs: cacheMs, maxTtlMs, trustProxy } = config;
  const ui = { verifier, sessions: store.sessions, adminToken, cacheMs, leases, maxTtlMs, trustProxy };
  const gatesOn = deps.github ? gatesOnKey(deps.github.gates) : undefined;
  const webhooksAllowPrivate = config.webhooks.allowPrivate;
  app.route(
    "/",
    uiRoutes({ ...ui, clientAddress, failures, rateLimiter, gatesOn, notifier, webhooksAllowPrivate }),
  );
  app.get("/", (c) => c.json(INDEX));
  app.notFound(noRoute);
  app.onError(errorHandler(metrics));
  return app;
}
