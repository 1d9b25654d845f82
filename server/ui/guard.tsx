/**
 * Who is signed in: the session behind a request's cookie, whose token is verified as the API
 * verifies it, read at most once per cacheMs per instance; and the middleware every page, live
 * update and form goes through (signed in, within the rate limit, with locks:read).
 */
import type { Context } from "hono";
import { createMiddleware } from "hono/factory";
import { actingIn } from "../auth/namespace.js";
import { credentialOf } from "../auth/tokens.js";
import { NAMESPACE_PATTERN, type Principal, type UiSession } from "../auth/types.js";
import { type Ctx, limitedFor, type UiDeps, type UiEnv } from "./context.js";
import { ErrorPage } from "./pages.js";
import {
  csrfToken,
  endSession,
  isHttps,
  readNamespace,
  readSessionId,
  sessionKey,
  tokenIdOf,
} from "./session.js";

/** The namespace a page showed, sent by its live updates (the dashboard's script). */
const SHOWN_NAMESPACE_HEADER = "LSS-Shown-Namespace";

/** How many sessions an instance remembers; past it, the oldest is forgotten. */
const REMEMBERED_SESSIONS = 10_000;

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

/** A request without a live session: a page sends the browser to sign in, a live update answers 401. */
function signedOut(c: Ctx, kind: "page" | "fragment" | "action") {
  if (kind === "fragment") return c.text("signed out", 401);
  if (kind === "page") {
    const url = new URL(c.req.url);
    const next =
      url.pathname === "/ui" && !url.search ? "" : `?next=${encodeURIComponent(url.pathname + url.search)}`;
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

/** The namespace the switch chose, for an admin (a malformed cookie is no choice). */
function chosenNamespace(c: Context, secure: boolean, principal: Principal): string | undefined {
  const chosen = readNamespace(c, secure);
  return principal.scopes.has("admin") && chosen && NAMESPACE_PATTERN.test(chosen) ? chosen : undefined;
}

export function createGuard(deps: UiDeps) {
  const secure = (c: Context) => isHttps(c, deps.trustProxy);
  const recent = new Map<string, { session: UiSession | null; until: number }>();

  /**
   * A person's principal at sign-in: an LSS API token (LSS_ADMIN_TOKEN or lss_…), verified as the
   * API does. A workflow's OIDC token (verified claims, minutes long) is not for people.
   */
  const personOf = async (token: string, lookup = true) => {
    const credential = credentialOf(token, deps.adminToken);
    const principal = credential ? await deps.verifier.verify(token, { lookup }).catch(() => null) : null;
    return credential && principal && !principal.holder ? { principal, credential } : null;
  };

  /** The session behind a cookie, and whose it is: null once signed out, expired or revoked. */
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
        if (recent.size >= REMEMBERED_SESSIONS) recent.delete(recent.keys().next().value as string);
        recent.set(key, { session, until: Date.now() + deps.cacheMs });
      }
    }
    const principal = session ? await deps.verifier.verifyStored(session) : null;
    return session && principal ? { session, principal } : null;
  };

  /** The request's session, within its token's rate limit, for a token that may read. */
  const signedIn = (kind: "page" | "fragment" | "action") =>
    createMiddleware<UiEnv>(async (c, next) => {
      const sessionId = readSessionId(c, secure(c));
      const found = sessionId ? await sessionOf(sessionId) : null;
      if (!sessionId || !found) {
        if (sessionId) endSession(c, secure(c));
        return signedOut(c, kind);
      }
      const { session } = found;
      const principal = actingIn(found.principal, chosenNamespace(c, secure(c), found.principal));
      const { seconds, limit } = await limitedFor(deps, principal.id);
      if (seconds > 0) {
        c.header("Retry-After", String(seconds));
        if (kind === "fragment") return c.text("rate limited", 429);
        const message = `This token made more than ${limit} requests this minute; retry in ${seconds} s.`;
        return c.html(<ErrorPage title="Too many requests" message={message} />, 429);
      }
      c.set("principal", principal);
      c.set("sessionId", sessionId);
      c.set("holdSecret", session.holdSecret);
      c.set("session", { principal, csrf: csrfToken(sessionId) });
      // A live update of a page that showed another namespace (an admin switched in another tab)
      // would show this one's rows under that one's heading.
      const shown = c.req.header(SHOWN_NAMESPACE_HEADER);
      if (kind === "fragment" && shown && shown !== principal.namespace)
        return c.text(
          `This page showed namespace ${shown}; the dashboard now acts in ${principal.namespace}: reload the page.`,
          409,
        );
      // Listings, holders and histories are what locks:read reads, and what every page (and a
      // form's answer) shows: the dashboard is for tokens that may read.
      if (!principal.scopes.has("locks:read"))
        return noReadScope(c, kind === "fragment" ? "fragment" : "page");
      return next();
    });

  /** Forgets a session this instance remembers (at sign-out). */
  const forget = (sessionId: string) => recent.delete(sessionKey(sessionId));

  return { secure, personOf, sessionOf, signedIn, forget };
}

export type Guard = ReturnType<typeof createGuard>;
