/**
 * Who calls, and what they may: the vocabulary of authentication, shared by the verifiers, the
 * routes, the dashboard and the stores that keep token records and sessions.
 */

/** locks:force: force releases (admin may too); admin: also minting and revoking tokens. */
export type Scope = "locks:read" | "locks:write" | "locks:force" | "admin";

/** An API token as stored: the secret itself is never stored, only its sha256. */
export interface TokenRecord {
  id: string;
  secretHash: string;
  namespace: string;
  scopes: Scope[];
  name: string | null;
  createdAt: string;
}

export interface TokenStore {
  put(record: TokenRecord): Promise<void>;
  get(id: string): Promise<TokenRecord | null>;
  list(): Promise<TokenRecord[]>;
  /** false when there was no such token. */
  delete(id: string): Promise<boolean>;
}

/**
 * A dashboard session, kept by the store under the sha256 of its id (the cookie holds the id only):
 * which credential signed in, as its record's id and secret hash (so that revoking the token ends
 * the session), and the secret its holds' lease tokens are derived from. Never the token itself.
 */
export interface UiSession {
  /** "admin" for LSS_ADMIN_TOKEN, else the token record's id. */
  tokenId: string;
  /** sha256 of the token's secret (of LSS_ADMIN_TOKEN for admin), as at sign-in. */
  secretHash: string;
  /** Derived from the API token at sign-in: the same for every session of that token. */
  holdSecret: string;
}

/** Sessions one token may have at once; a sign-in past it ends that token's oldest session. */
export const SESSIONS_PER_TOKEN = 20;

/**
 * Dashboard sessions, kept per token (at most SESSIONS_PER_TOKEN each, the oldest going first), so
 * that signing in over and over cannot fill the store.
 */
export interface SessionStore {
  /** Kept for ttlMs (the cookie's lifetime), then gone by itself. */
  put(tokenId: string, idHash: string, session: UiSession, ttlMs: number): Promise<void>;
  get(tokenId: string, idHash: string): Promise<UiSession | null>;
  /** Sign-out: the cookie, wherever it was copied, opens nothing any more. */
  delete(tokenId: string, idHash: string): Promise<void>;
}

export const SCOPES = [
  "locks:read",
  "locks:write",
  "locks:force",
  "admin",
] as const satisfies readonly Scope[];
export { NAMESPACE_PATTERN } from "../../src/protocol/namespace.js";
/** Where the admin token acts (and tokens minted without a namespace). */
export const DEFAULT_NAMESPACE = "default";
/**
 * Where the open /locks API's anonymous callers act: a namespace of their own, with a cap of its
 * own (LSS_OPEN_MAX_LOCKS), so that anyone filling it leaves every other namespace untouched.
 */
export const OPEN_NAMESPACE = "open";

export interface Principal {
  /** "admin" for LSS_ADMIN_TOKEN, else the token record's id. */
  id: string;
  /** The token record's name (for history and the dashboard); "admin" for LSS_ADMIN_TOKEN. */
  name: string | null;
  namespace: string;
  scopes: ReadonlySet<Scope>;
  /** A caller of the open /locks API, who sent no token. */
  anonymous?: true;
  /** Who holds what this principal takes, as verified (an OIDC token's workflow); the client's holder_id is ignored. */
  holder?: string;
  /** Whether a scope holds for a key; absent: for every key of the namespace. */
  allows?: (scope: Scope, key: string) => boolean;
  /** With `allows`: the key patterns a scope holds for ("*": every key). */
  patterns?: (scope: Scope) => string[];
}

export interface TokenVerifier {
  /**
   * The principal of a bearer token, or null when it is unknown or revoked. An OIDC token (a JWT,
   * when a policy is configured) is verified against the configured audience, and a refusal throws
   * an ApiError that says why. `lookup: false`: null for a token whose record is not cached here,
   * rather than reading the store (for an address past its failed authentications).
   */
  verify(bearer: string, opts?: { lookup?: boolean }): Promise<Principal | null>;
  /**
   * The principal of a credential kept without its secret (a dashboard session): its token id and
   * secret hash, as `credentialOf` gave them; null once the token is revoked or replaced.
   */
  verifyStored(credential: StoredCredential): Promise<Principal | null>;
  /** Forget a token at once on this instance (others forget it within the cache time). */
  forget(id: string): void;
}

/** A token as a session keeps it: its id, and the sha256 of its secret. */
export interface StoredCredential {
  tokenId: string;
  secretHash: string;
}

export interface OidcVerifier {
  /** Whether a bearer token is one for this verifier (a JWT: LSS's own tokens never look like one). */
  accepts(bearer: string): boolean;
  /** The principal of a verified token; throws ApiError 401 (bad token), 403 (no rule), 503 (issuer down). */
  verify(jwt: string): Promise<Principal>;
}
