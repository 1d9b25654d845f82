/**
 * The dashboard at /ui: server-rendered pages over the same lease functions as the API, signed in
 * with an API token (see session.ts). Routes:
 * - GET /ui/login, POST /ui/login, POST /ui/logout
 * - GET /ui (the namespace's locks; ?prefix, ?cursor), GET /ui/fragment/locks (its rows, for the
 *   live update)
 * - GET /ui/locks/{key} (holders, queue, history; ?history=<cursor>, ?confirm=force),
 *   GET /ui/fragment/key/{key} (holders and queue, for the live update),
 *   POST /ui/locks/{key} (action=hold|release|force, with the form's CSRF token)
 * - GET /ui/assets/… (the stylesheet and the script)
 */
import { type Context, Hono } from "hono";
import { createMiddleware } from "hono/factory";
import { formatDuration, parseDuration } from "../../src/protocol/durations.js";
import { LockKey, Reason } from "../../src/protocol/lease.js";
import type { FailedAuthGuard } from "../auth/middleware.js";
import { actorOf } from "../auth/principal.js";
import type { RateLimiter } from "../auth/rate-limit.js";
import { credentialOf, mayForce } from "../auth/tokens.js";
import type { Principal, SessionStore, TokenVerifier, UiSession } from "../auth/types.js";
import { ApiError } from "../errors.js";
import type { Leases } from "../locks/leases.js";
import { StoreUnavailableError } from "../stores/types.js";
import { CSS, CSS_PATH, JS, JS_PATH } from "./assets.js";
import { keyHref, type Session } from "./layout.js";
import { ErrorPage, KeyNow, KeyPage, type KeyPageProps, ListPage, LockRows, LoginPage } from "./pages.js";
import {
  crossSite,
  csrfMatches,
  csrfToken,
  dashboardHolder,
  endSession,
  holdToken,
  isHttps,
  newSession,
  readSessionId,
  SESSION_TTL_MS,
  sessionKey,
  startSession,
  tokenIdOf,
} from "./session.js";

export interface UiDeps {
  verifier: TokenVerifier;
  /** Where sessions are kept (the store's), and the admin token they may have signed in with. */
  sessions: SessionStore;
  adminToken: string | null;
  /** How long a session read is trusted on this instance (LSS_TOKEN_CACHE_MS, as tokens). */
  cacheMs: number;
  leases: Leases;
  maxTtlMs: number;
  trustProxy: number;
  clientAddress: (c: Context) => string;
  /** Counts failed sign-ins as failed authentications of the API (when rate limiting is on). */
  failures?: FailedAuthGuard;
  rateLimiter?: RateLimiter | null;
}

type UiEnv = {
  Variables: { principal: Principal; sessionId: string; holdSecret: string; session: Session };
};
type Ctx = Context<UiEnv>;

/** A form's fields, or null when the body is no readable form (a broken multipart body, say). */
async function readForm(c: Context) {
  try {
    return await c.req.parseBody();
  } catch {
    return null;
  }
}

const NOT_A_FORM = "This request's body is not a form this page sent: reload the page and try again.";

const PAGE_SIZE = 50;
const HISTORY_PAGE_SIZE = 20;
const KEY_PARAM = ":key{.+}";

/**
 * Pages: no caching (they carry the form token), no framing (a framed force release could be
 * clicked by a user who cannot see it), scripts and styles from this app only.
 */
const pageHeaders = createMiddleware(async (c, next) => {
  await next();
  c.header("Cache-Control", "no-store");
  c.header("X-Frame-Options", "DENY");
  c.header("X-Content-Type-Options", "nosniff");
  c.header("Referrer-Policy", "same-origin");
  c.header(
    "Content-Security-Policy",
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
      "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  );
});

/** Where to go after signing in: a dashboard page of this site, nothing else. */
const safeNext = (next: unknown) =>
  typeof next === "string" && /^\/ui(\/[^/\\]|\/?$|\?)/.test(next) && !next.includes("\\") ? next : "/ui";

/** The protocol's durations ("30m", "4h", "1d", a bare number of seconds), within the server's bounds. */
function holdDuration(text: string, maxMs: number): number | string {
  const ms = parseDuration(text);
  if (ms === null)
    return "Duration must be a number of seconds, or a number with s, m, h or d, such as 30m, 4h or 1d.";
  if (ms < 1000) return "Duration must be at least 1 second.";
  if (ms > maxMs) return `Duration must be at most ${formatDuration(maxMs)} (the server's LSS_MAX_TTL_MS).`;
  return ms;
}

const DONE: Record<string, string> = {
  held: "You hold this key now.",
  released: "Your hold is released.",
  forced: "The key was force released.",
};

const field = (body: Record<string, unknown>, name: string) =>
  typeof body[name] === "string" ? (body[name] as string) : "";

export function uiRoutes(deps: UiDeps) {
  const { verifier, leases } = deps;
  const secure = (c: Context) => isHttps(c, deps.trustProxy);
  const ui = new Hono<UiEnv>();

  ui.get(CSS_PATH, (c) =>
    c.body(CSS, 200, {
      "Content-Type": "text/css; charset=utf-8",
      "Cache-Control": "public, max-age=31536000, immutable",
    }),
  );
  ui.get(JS_PATH, (c) =>
    c.body(JS, 200, {
      "Content-Type": "text/javascript; charset=utf-8",
      "Cache-Control": "public, max-age=31536000, immutable",
    }),
  );

  ui.use("/ui", pageHeaders);
  ui.use("/ui/login", pageHeaders);
  ui.use("/ui/logout", pageHeaders);
  ui.use("/ui/locks/*", pageHeaders);
  ui.use("/ui/fragment/*", pageHeaders);

  /**
   * A person's principal at sign-in: an LSS API token (LSS_ADMIN_TOKEN or lss_…), verified as the
   * API does. A workflow's OIDC token (verified claims, minutes long) is not for people.
   */
  const personOf = async (token: string, lookup = true) => {
    const credential = credentialOf(token, deps.adminToken);
    const principal = credential ? await verifier.verify(token, { lookup }).catch(() => null) : null;
    return credential && principal && !principal.holder ? { principal, credential } : null;
  };

  /**
   * The session behind a cookie, and whose it is: null once signed out, expired or revoked. Read
   * at most once per cacheMs per instance (a tab's live update asks every 3 s), as tokens are.
   */
  const recent = new Map<string, { session: UiSession | null; until: number }>();
  const sessionOf = async (sessionId: string) => {
    const tokenId = tokenIdOf(sessionId);
    if (!tokenId) return null;
    const key = sessionKey(sessionId);
    const cached = recent.get(key);
    let session = cached && cached.until > Date.now() ? cached.session : undefined;
    if (session === undefined) {
      session = await deps.sessions.get(tokenId, key);
      if (deps.cacheMs > 0) {
        // The oldest entry goes first: a Map keeps insertion order.
        if (recent.size >= 10_000) recent.delete(recent.keys().next().value as string);
        recent.set(key, { session, until: Date.now() + deps.cacheMs });
      }
    }
    const principal = session ? await verifier.verifyStored(session) : null;
    return session && principal ? { session, principal } : null;
  };

  /**
   * The session of a request: the cookie's session, whose token is verified as the API verifies
   * it. Without one, a page sends the browser to sign in, a live update answers 401.
   */
  const signedIn = (kind: "page" | "fragment" | "action") =>
    createMiddleware<UiEnv>(async (c, next) => {
      const sessionId = readSessionId(c, secure(c));
      const found = sessionId ? await sessionOf(sessionId) : null;
      if (!sessionId || !found) {
        if (sessionId) endSession(c, secure(c));
        if (kind === "fragment") return c.text("signed out", 401);
        if (kind === "page") {
          const url = new URL(c.req.url);
          const next =
            url.pathname === "/ui" && !url.search
              ? ""
              : `?next=${encodeURIComponent(url.pathname + url.search)}`;
          return c.redirect(`/ui/login${next}`, 303);
        }
        return c.html(
          <ErrorPage
            title="Signed out"
            message="Your session has ended (no token, or the token is unknown or revoked): sign in again. Nothing was changed."
          />,
          401,
        );
      }
      const { principal, session } = found;
      if (deps.rateLimiter) {
        const decision = await deps.rateLimiter.limit(principal.id);
        if (!decision.allowed) {
          const seconds = Math.max(1, Math.ceil(decision.retryAfterMs / 1000));
          c.header("Retry-After", String(seconds));
          if (kind === "fragment") return c.text("rate limited", 429);
          return c.html(
            <ErrorPage
              title="Too many requests"
              message={`This token made more than ${decision.limit} requests this minute; retry in ${seconds} s.`}
            />,
            429,
          );
        }
      }
      c.set("principal", principal);
      c.set("sessionId", sessionId);
      c.set("holdSecret", session.holdSecret);
      c.set("session", { principal, csrf: csrfToken(sessionId) });
      // Listings, holders and histories are what locks:read reads, and what every page (and a
      // form's answer) shows: the dashboard is for tokens that may read.
      if (!principal.scopes.has("locks:read"))
        return noReadScope(c, kind === "fragment" ? "fragment" : "page");
      return next();
    });

  const noReadScope = (c: Ctx, kind: "page" | "fragment") =>
    kind === "fragment"
      ? c.text("this token lacks the locks:read scope", 403)
      : c.html(
          <ErrorPage
            title="Cannot show this"
            message="This token lacks the locks:read scope: it may not see the locks, their holders or their history, and the dashboard needs it for everything (a token with locks:force alone force-releases through the API). Nothing was changed."
            session={c.var.session}
          />,
          403,
        );

  /** A form's POST: from this site's pages (Origin), with this session's form token. */
  const checkForm = (c: Ctx, body: Record<string, unknown>): string | null => {
    if (crossSite(c)) return "This form was sent from another site: refused. Nothing was changed.";
    if (!csrfMatches(c.var.sessionId, body.csrf)) {
      return "This form lacks this session's form token (CSRF): reload the page and try again. Nothing was changed.";
    }
    return null;
  };

  // Sign in and out.
  ui.get("/ui/login", async (c) => {
    const sessionId = readSessionId(c, secure(c));
    if (sessionId && (await sessionOf(sessionId))) return c.redirect(safeNext(c.req.query("next")), 303);
    const next = c.req.query("next");
    return c.html(<LoginPage next={next ? safeNext(next) : undefined} />);
  });

  ui.post("/ui/login", async (c) => {
    const body = await readForm(c);
    if (!body) return c.html(<LoginPage error={NOT_A_FORM} />, 400);
    const next = body.next ? safeNext(body.next) : undefined;
    if (crossSite(c)) {
      return c.html(<LoginPage error="This sign-in was sent from another site: refused." next={next} />, 403);
    }
    const address = deps.failures ? deps.clientAddress(c) : "";
    const wait = deps.failures?.blockedFor(address) ?? 0;
    const token = field(body, "token").trim();
    // Past its failed sign-ins, an address gets no lookup in the store (as the API's guard).
    const person = token ? await personOf(token, wait === 0) : null;
    if (!person && wait > 0) {
      c.header("Retry-After", String(wait));
      return c.html(
        <LoginPage error={`Too many failed sign-ins from this address; retry in ${wait} s.`} next={next} />,
        429,
      );
    }
    if (!person) {
      if (token) deps.failures?.failed(address);
      return c.html(
        <LoginPage
          error={
            token
              ? "That token is unknown or revoked: check that you pasted the whole token (LSS_ADMIN_TOKEN or lss_…)."
              : "Enter an API token."
          }
          next={next}
        />,
        401,
      );
    }
    // Sign-ins count against the token's rate limit, and the store keeps a token's newest
    // SESSIONS_PER_TOKEN sessions only: signing in over and over cannot fill it.
    if (deps.rateLimiter) {
      const decision = await deps.rateLimiter.limit(person.principal.id);
      if (!decision.allowed) {
        const seconds = Math.max(1, Math.ceil(decision.retryAfterMs / 1000));
        c.header("Retry-After", String(seconds));
        return c.html(
          <LoginPage error={`Too many requests with this token; retry in ${seconds} s.`} next={next} />,
          429,
        );
      }
    }
    const { id, session } = newSession(token, person.credential);
    await deps.sessions.put(person.credential.tokenId, sessionKey(id), session, SESSION_TTL_MS);
    startSession(c, id, secure(c));
    return c.redirect(next ?? "/ui", 303);
  });

  ui.post("/ui/logout", async (c) => {
    const sessionId = readSessionId(c, secure(c));
    if (sessionId) {
      const body = await readForm(c);
      if (!body) return c.html(<ErrorPage title="Not signed out" message={NOT_A_FORM} />, 400);
      if (crossSite(c) || !csrfMatches(sessionId, body.csrf)) {
        return c.html(
          <ErrorPage
            title="Not signed out"
            message="This form lacks this session's form token: reload the page and try again."
          />,
          403,
        );
      }
    }
    // Deleted in the store: the cookie, wherever it was copied, opens nothing any more.
    const tokenId = sessionId ? tokenIdOf(sessionId) : null;
    if (sessionId && tokenId) {
      recent.delete(sessionKey(sessionId));
      await deps.sessions.delete(tokenId, sessionKey(sessionId));
    }
    endSession(c, secure(c));
    return c.redirect("/ui/login", 303);
  });

  // The namespace's locks.
  const listOf = async (c: Ctx) => {
    const prefix = c.req.query("prefix") ?? "";
    const cursor = c.req.query("cursor") || null;
    const list = await leases.list(c.var.principal.namespace, {
      prefix,
      cursor,
      limit: PAGE_SIZE,
    });
    return { prefix, cursor, list };
  };

  ui.get("/ui", signedIn("page"), async (c) => {
    const { prefix, cursor, list } = await listOf(c);
    return c.html(
      <ListPage
        session={c.var.session}
        locks={list.locks}
        prefix={prefix}
        cursor={cursor}
        nextCursor={list.next_cursor}
      />,
    );
  });

  ui.get("/ui/fragment/locks", signedIn("fragment"), async (c) => {
    const { prefix, list } = await listOf(c);
    return c.html(<LockRows locks={list.locks} prefix={prefix} />);
  });

  // One key.
  const keyOf = (c: Ctx): string => {
    const parsed = LockKey.safeParse(c.req.param("key"));
    if (!parsed.success) throw new ApiError("bad_request", parsed.error.issues[0]?.message ?? "invalid key");
    return parsed.data;
  };
  const refOf = (c: Ctx, key: string) => ({ namespace: c.var.principal.namespace, key });

  const renderKey = async (
    c: Ctx,
    key: string,
    extra: Partial<KeyPageProps> = {},
    httpStatus: 200 | 400 | 403 | 409 | 503 = 200,
  ) => {
    const p = c.var.principal;
    const ref = refOf(c, key);
    const historyCursor = c.req.query("history") || null;
    const [status, history] = await Promise.all([
      leases.status(ref),
      leases.history(ref, { cursor: historyCursor, limit: HISTORY_PAGE_SIZE }),
    ]);
    const holder = dashboardHolder(p);
    const canForce = mayForce(p, key);
    return c.html(
      <KeyPage
        session={c.var.session}
        status={status}
        history={history}
        historyCursor={historyCursor}
        canWrite={p.scopes.has("locks:write")}
        canForce={canForce}
        mine={(status.holders ?? []).some((h) => h.holder_id === holder)}
        holder={holder}
        done={DONE[c.req.query("done") ?? ""] ?? null}
        confirmForce={canForce && status.locked && c.req.query("confirm") === "force"}
        {...extra}
      />,
      httpStatus,
    );
  };

  ui.get(`/ui/locks/${KEY_PARAM}`, signedIn("page"), async (c) => renderKey(c, keyOf(c)));

  ui.get(`/ui/fragment/key/${KEY_PARAM}`, signedIn("fragment"), async (c) => {
    const status = await leases.status(refOf(c, keyOf(c)));
    return c.html(<KeyNow status={status} />);
  });

  ui.post(`/ui/locks/${KEY_PARAM}`, signedIn("action"), async (c) => {
    const key = keyOf(c);
    const body = await readForm(c);
    if (!body) {
      return c.html(<ErrorPage title="Refused" message={NOT_A_FORM} session={c.var.session} />, 400);
    }
    const refused = checkForm(c, body);
    if (refused) return c.html(<ErrorPage title="Refused" message={refused} session={c.var.session} />, 403);
    const p = c.var.principal;
    const ref = refOf(c, key);
    const actor = actorOf(p);
    const action = field(body, "action");
    const form = { duration: field(body, "duration"), reason: field(body, "reason") };
    const fail = (error: string, httpStatus: 400 | 403 | 409 | 503) =>
      renderKey(c, key, { error, form }, httpStatus);
    const done = (what: keyof typeof DONE) => c.redirect(`${keyHref(key)}?done=${what}`, 303);
    try {
      switch (action) {
        case "hold": {
          if (!p.scopes.has("locks:write")) {
            return fail(
              "This token lacks the locks:write scope: it cannot hold keys. Nothing was changed.",
              403,
            );
          }
          const ttl = holdDuration(form.duration, deps.maxTtlMs);
          if (typeof ttl === "string") return fail(ttl, 400);
          const reason = Reason.safeParse(form.reason.trim());
          if (!reason.success) return fail(reason.error.issues[0]?.message ?? "invalid reason", 400);
          await leases.acquire(
            [ref],
            {
              ttl_ms: ttl,
              token: holdToken(c.var.holdSecret, p.namespace, key),
              holder_id: dashboardHolder(p),
              reason: reason.data || undefined,
            },
            { actor },
          );
          return done("held");
        }
        case "release": {
          if (!p.scopes.has("locks:write")) {
            return fail(
              "This token lacks the locks:write scope: it cannot release holds. Nothing was changed.",
              403,
            );
          }
          await leases.release(ref, { token: holdToken(c.var.holdSecret, p.namespace, key) }, actor);
          return done("released");
        }
        case "force": {
          if (!mayForce(p, key)) {
            return fail(
              "Force release needs a token with the admin or locks:force scope. Nothing was changed.",
              403,
            );
          }
          if (field(body, "confirm") !== "yes") return renderKey(c, key, { confirmForce: true });
          await leases.release(ref, { force: true }, actor);
          return done("forced");
        }
        default:
          return fail(`Unknown action "${action}".`, 400);
      }
    } catch (err) {
      if (err instanceof ApiError && (err.status === 400 || err.status === 403 || err.status === 409)) {
        const message =
          action === "release" && err.code === "not_held"
            ? "You hold no lease on this key from the dashboard with this token (it may have expired, or been released or force released)."
            : err.message;
        return fail(message, err.status);
      }
      throw err;
    }
  });

  ui.all("/ui/*", (c) =>
    c.html(<ErrorPage title="Not found" message={`There is no dashboard page at ${c.req.path}.`} />, 404),
  );

  /** Failures as pages (or a plain status for the live update), never the API's JSON. */
  ui.onError((err, c) => {
    const fragment = c.req.path.startsWith("/ui/fragment/");
    if (err instanceof StoreUnavailableError) {
      c.header("Retry-After", "1");
      if (fragment) return c.text("store unavailable", 503);
      return c.html(
        <ErrorPage
          title="Store unreachable"
          message="The lock store is unreachable: nothing was changed or granted. Try again in a moment."
        />,
        503,
      );
    }
    if (err instanceof ApiError && err.status < 500) {
      if (fragment) return c.text(err.message, err.status);
      return c.html(<ErrorPage title="Cannot show this" message={err.message} />, err.status);
    }
    console.error("unexpected error", err);
    if (fragment) return c.text("internal error", 500);
    return c.html(<ErrorPage title="Internal error" message="Something went wrong on the server." />, 500);
  });

  return ui;
}
