/** GET and POST /ui/login, POST /ui/logout: a person signs in with an API token, and out. */
import type { Context, Hono } from "hono";
import { field, limitedFor, NOT_A_FORM, readForm, type UiDeps, type UiEnv } from "../context.js";
import type { Guard } from "../guard.js";
import { ErrorPage, LoginPage } from "../pages.js";
import {
  crossSite,
  csrfMatches,
  endSession,
  newSession,
  readSessionId,
  SESSION_TTL_MS,
  sessionKey,
  startSession,
  tokenIdOf,
} from "../session.js";

/** Where to go after signing in: a dashboard page of this site, nothing else. */
export const safeNext = (next: unknown) =>
  typeof next === "string" && /^\/ui(\/[^/\\]|\/?$|\?)/.test(next) && !next.includes("\\") ? next : "/ui";

const UNKNOWN_TOKEN =
  "That token is unknown or revoked: check that you pasted the whole token (LSS_ADMIN_TOKEN or lss_…).";

export function registerSignIn(ui: Hono<UiEnv>, deps: UiDeps, guard: Guard) {
  ui.get("/ui/login", async (c) => {
    const sessionId = readSessionId(c, guard.secure(c));
    if (sessionId && (await guard.sessionOf(sessionId)))
      return c.redirect(safeNext(c.req.query("next")), 303);
    const next = c.req.query("next");
    return c.html(<LoginPage next={next ? safeNext(next) : undefined} />);
  });

  ui.post("/ui/login", async (c) => {
    const body = await readForm(c);
    if (!body) return c.html(<LoginPage error={NOT_A_FORM} />, 400);
    const next = body.next ? safeNext(body.next) : undefined;
    const refuse = (error: string, status: 401 | 403 | 429) =>
      c.html(<LoginPage error={error} next={next} />, status);
    if (crossSite(c)) return refuse("This sign-in was sent from another site: refused.", 403);
    const address = deps.failures ? deps.clientAddress(c) : "";
    const wait = deps.failures?.blockedFor(address) ?? 0;
    const token = field(body, "token").trim();
    // Past its failed sign-ins, an address gets no lookup in the store (as the API's guard).
    const person = token ? await guard.personOf(token, wait === 0) : null;
    if (!person && wait > 0) {
      c.header("Retry-After", String(wait));
      return refuse(`Too many failed sign-ins from this address; retry in ${wait} s.`, 429);
    }
    if (!person) {
      if (token) deps.failures?.failed(address);
      return refuse(token ? UNKNOWN_TOKEN : "Enter an API token.", 401);
    }
    // Sign-ins count against the token's rate limit, and the store keeps a token's newest
    // SESSIONS_PER_TOKEN sessions only: signing in over and over cannot fill it.
    const { seconds } = await limitedFor(deps, person.principal.id);
    if (seconds > 0) {
      c.header("Retry-After", String(seconds));
      return refuse(`Too many requests with this token; retry in ${seconds} s.`, 429);
    }
    const { id, session } = newSession(token, person.credential);
    await deps.sessions.put(person.credential.tokenId, sessionKey(id), session, SESSION_TTL_MS);
    startSession(c, id, guard.secure(c));
    return c.redirect(next ?? "/ui", 303);
  });

  ui.post("/ui/logout", async (c) => signOut(c, deps, guard));
}

async function signOut(c: Context, deps: UiDeps, guard: Guard) {
  const sessionId = readSessionId(c, guard.secure(c));
  if (sessionId) {
    const body = await readForm(c);
    if (!body) return c.html(<ErrorPage title="Not signed out" message={NOT_A_FORM} />, 400);
    if (crossSite(c) || !csrfMatches(sessionId, body.csrf)) {
      const message = "This form lacks this session's form token: reload the page and try again.";
      return c.html(<ErrorPage title="Not signed out" message={message} />, 403);
    }
  }
  // Deleted in the store: the cookie, wherever it was copied, opens nothing any more.
  const tokenId = sessionId ? tokenIdOf(sessionId) : null;
  if (sessionId && tokenId) {
    guard.forget(sessionId);
    await deps.sessions.delete(tokenId, sessionKey(sessionId));
  }
  endSession(c, guard.secure(c));
  return c.redirect("/ui/login", 303);
}
