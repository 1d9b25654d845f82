/**
 * The dashboard's session. The cookie holds a random session id and nothing else; the store keeps
 * the session under the id's sha256 for as long as the cookie lives (12 h): which token signed in
 * (its id and secret hash, so that revoking the token ends the session) and the secret the
 * session's holds are derived from. Sign-out deletes it, so a copied cookie opens nothing after.
 * Over https the cookie is `__Host-lss_ui` (Secure, Path=/, no Domain: no other host or path can
 * set or shadow it); over plain http (trying it out locally) `lss_ui` for /ui. It is HttpOnly and
 * SameSite=Strict either way. Derived, never stored:
 * - the CSRF token of every form (a hash of the session id with a fixed label);
 * - the lease token of a hold taken from the dashboard (a hash of the hold secret, namespace and
 *   key): the same in every session of one API token, so any browser signed in with it releases it.
 */
import type { Context } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import { INVISIBLE_FORMATTING } from "../../src/protocol/lease.js";
import type { Principal, StoredCredential, UiSession } from "../auth/types.js";
import { constantTimeEqual, randomBase64Url, sha256Hex } from "../crypto.js";

/** The cookie's name (over https with the __Host- prefix) and its path over plain http. */
export const COOKIE = "lss_ui";
export const COOKIE_PATH = "/ui";
/** How long a browser keeps the cookie, and the store the session (the token's revocation ends it sooner). */
export const SESSION_TTL_MS = 12 * 3600 * 1000;

/** A request over https: by its URL, or by the header a trusted proxy sets. */
export function isHttps(c: Context, trustProxy: number): boolean {
  if (new URL(c.req.url).protocol === "https:") return true;
  return trustProxy > 0 && c.req.header("X-Forwarded-Proto")?.split(",")[0]?.trim() === "https";
}

/**
 * Over https a __Host- cookie (Secure, Path=/, no Domain); over plain http one for /ui. HttpOnly
 * and SameSite=Strict either way: the session's cookie and the namespace switch's alike.
 */
const cookieOptions = (secure: boolean) => ({
  ...(secure ? { prefix: "host" as const } : { path: COOKIE_PATH, secure: false }),
  httpOnly: true,
  sameSite: "Strict" as const,
});

/** The session id the browser sent (the cookie of this kind of connection), if any. */
export const readSessionId = (c: Context, secure: boolean): string | undefined =>
  getCookie(c, COOKIE, secure ? "host" : undefined) || undefined;

/** The store's name for a session: the sha256 of its id, so that a store dump opens nothing. */
export const sessionKey = (sessionId: string) => sha256Hex(`lss-ui-session\0${sessionId}`);

/** A session id: "<token id>.<43 random characters>" (the token id says where the store keeps it). */
const SESSION_ID = /^(admin|[0-9a-f]{16})\.[\w-]{43}$/;

/** The token a session id belongs to, or null for what is no session id. */
export const tokenIdOf = (sessionId: string) => SESSION_ID.exec(sessionId)?.[1] ?? null;

/** A new session for an API token that has just been verified, and its id for the cookie. */
export function newSession(
  apiToken: string,
  credential: StoredCredential,
): { id: string; session: UiSession } {
  return {
    id: `${credential.tokenId}.${randomBase64Url(32)}`,
    session: { ...credential, holdSecret: sha256Hex(`lss-ui-hold\0${apiToken}`) },
  };
}

export function startSession(c: Context, sessionId: string, secure: boolean) {
  setCookie(c, COOKIE, sessionId, { ...cookieOptions(secure), maxAge: SESSION_TTL_MS / 1000 });
  // A new session starts in the token's own namespace, whatever an earlier one chose.
  if (readNamespace(c, secure) !== undefined) deleteCookie(c, NAMESPACE_COOKIE, cookieOptions(secure));
}

export function endSession(c: Context, secure: boolean) {
  deleteCookie(c, COOKIE, cookieOptions(secure));
  deleteCookie(c, NAMESPACE_COOKIE, cookieOptions(secure));
}

/**
 * The namespace an admin's dashboard acts in, chosen with the namespace switch: a cookie beside the
 * session's, of the same kind (so no other host or path can set it over https). Only a token with
 * the admin scope is moved by it (auth/namespace.ts); it ends with the session.
 */
export const NAMESPACE_COOKIE = "lss_ui_ns";

export const readNamespace = (c: Context, secure: boolean): string | undefined =>
  getCookie(c, NAMESPACE_COOKIE, secure ? "host" : undefined) || undefined;

export function chooseNamespace(c: Context, namespace: string, secure: boolean) {
  setCookie(c, NAMESPACE_COOKIE, namespace, { ...cookieOptions(secure), maxAge: SESSION_TTL_MS / 1000 });
}

/** The form token of a session: fixed for a session, useless without its cookie. */
export const csrfToken = (sessionId: string) => sha256Hex(`lss-ui-csrf\0${sessionId}`);

export const csrfMatches = (sessionId: string, sent: unknown) =>
  typeof sent === "string" && constantTimeEqual(sent, csrfToken(sessionId));

/**
 * A POST from another site: its Origin (browsers send one with every form POST) names another
 * host, or `null` (an opaque origin), or Sec-Fetch-Site says cross-site.
 */
export function crossSite(c: Context): boolean {
  const site = c.req.header("Sec-Fetch-Site");
  if (site === "cross-site" || site === "same-site") return true;
  const origin = c.req.header("Origin");
  if (origin === undefined) return false;
  const host = c.req.header("X-Forwarded-Host")?.split(",")[0]?.trim() || c.req.header("Host");
  try {
    return new URL(origin).host !== (host ?? new URL(c.req.url).host);
  } catch {
    return true; // "null" or garbage
  }
}

/** The lease token of the dashboard's hold of a key: the same for the same API token, never stored. */
export const holdToken = (holdSecret: string, namespace: string, key: string) =>
  `ui-${sha256Hex(`${holdSecret}\0${namespace}\0${key}`)}`;

/** Who holds a key through the dashboard: the token's name (its id when unnamed). */
export const dashboardHolder = (p: Principal) =>
  `dashboard:${(p.name ?? p.id).replace(new RegExp(INVISIBLE_FORMATTING, "g"), "")}`.slice(0, 256);
