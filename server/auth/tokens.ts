/**
 * API tokens: `lss_<id>_<secret>`. The id finds the record; the secret is stored only as its sha256
 * and compared in constant time. LSS_ADMIN_TOKEN bootstraps an operator without any record.
 */
import { NO_OIDC_POLICY } from "../../src/protocol/error-codes.js";
import { constantTimeEqual, randomBase64Url, randomHex, sha256Hex } from "../crypto.js";
import { ApiError } from "../errors.js";
import { looksLikeJwt } from "./oidc.js";
import type { OidcVerifier, Scope, TokenRecord, TokenStore } from "./types.js";
import {
  DEFAULT_NAMESPACE,
  type Principal,
  SCOPES,
  type StoredCredential,
  type TokenVerifier,
} from "./types.js";

/** Force releases: admin tokens, and tokens with locks:force for the key. */
export const mayForce = (p: Principal, key: string) => p.scopes.has("admin") || may(p, "locks:force", key);

/** Whether the principal has the scope for this key (an OIDC rule may limit its keys). */
export const may = (p: Principal, scope: Scope, key: string) =>
  p.scopes.has(scope) && (p.allows ? p.allows(scope, key) : true);

const TOKEN_FORMAT = /^lss_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;

export function mintToken(
  namespace: string,
  scopes: Scope[],
  name: string | null,
): { secret: string; record: TokenRecord } {
  const id = randomHex(8);
  const secretPart = randomBase64Url(32);
  return {
    secret: `lss_${id}_${secretPart}`,
    record: {
      id,
      secretHash: sha256Hex(secretPart),
      namespace,
      scopes: [...new Set(scopes)],
      name,
      createdAt: new Date().toISOString(),
    },
  };
}

/** The stored form of an API token (LSS_ADMIN_TOKEN or lss_…); null for any other bearer. */
export function credentialOf(bearer: string, adminToken: string | null): StoredCredential | null {
  if (adminToken && constantTimeEqual(sha256Hex(bearer), sha256Hex(adminToken)))
    return { tokenId: "admin", secretHash: sha256Hex(bearer) };
  const match = TOKEN_FORMAT.exec(bearer);
  return match ? { tokenId: match[1] as string, secretHash: sha256Hex(match[2] as string) } : null;
}

export function createTokenVerifier(
  tokens: TokenStore,
  adminToken: string | null,
  cacheMs: number,
  oidc: OidcVerifier | null = null,
): TokenVerifier {
  const adminHash = adminToken ? sha256Hex(adminToken) : null;
  const admin: Principal = {
    id: "admin",
    name: "admin",
    namespace: DEFAULT_NAMESPACE,
    scopes: new Set(SCOPES),
  };
  // Looked-up records, so that a request costs no extra store round trip (bounded by cacheMs), and
  // ids found to be no token's, so that a stream of made-up tokens costs none either. Apart, so
  // that made-up ids never push out a real token's record (which an address past its failed
  // authentications still accepts from here); each forgets its oldest entry when full.
  const found = new Map<string, { record: TokenRecord; until: number }>();
  const unknown = new Map<string, { record: null; until: number }>();
  const remember = <T>(map: Map<string, T>, id: string, entry: T) => {
    map.delete(id);
    if (map.size >= 10_000) map.delete(map.keys().next().value as string);
    map.set(id, entry);
  };

  /** The token record of an id, looked up at most once per cacheMs (`lookup: false`: not at all). */
  const recordOf = async (id: string, lookup = true) => {
    const now = Date.now();
    const cached = found.get(id) ?? unknown.get(id);
    if (cached && cached.until > now) return cached.record;
    if (!lookup) return null;
    const record = await tokens.get(id);
    if (cacheMs > 0) {
      // An id is in one of the two at most: a revoked token's record goes as it is found missing.
      found.delete(id);
      unknown.delete(id);
      if (record) remember(found, id, { record, until: now + cacheMs });
      else remember(unknown, id, { record: null, until: now + cacheMs });
    }
    return record;
  };
  const principalOf = (record: TokenRecord): Principal => ({
    id: record.id,
    name: record.name,
    namespace: record.namespace,
    scopes: new Set(record.scopes),
  });

  return {
    async verify(bearer, opts) {
      if (adminHash && constantTimeEqual(sha256Hex(bearer), adminHash)) return admin;
      if (oidc?.accepts(bearer)) return oidc.verify(bearer);
      if (!oidc && looksLikeJwt(bearer))
        throw new ApiError(
          "unauthorized",
          `${NO_OIDC_POLICY}: its operator sets LSS_OIDC_POLICY to accept workflows' ID tokens; or pass an API token`,
          { headers: { "WWW-Authenticate": 'Bearer realm="lss", error="invalid_token"' } },
        );
      const match = TOKEN_FORMAT.exec(bearer);
      if (!match) return null;
      const [, id = "", secretPart = ""] = match;
      const record = await recordOf(id, opts?.lookup ?? true);
      if (!record || !constantTimeEqual(sha256Hex(secretPart), record.secretHash)) return null;
      return principalOf(record);
    },
    async verifyStored({ tokenId, secretHash }) {
      if (tokenId === "admin") return adminHash && constantTimeEqual(secretHash, adminHash) ? admin : null;
      const record = await recordOf(tokenId);
      return record && constantTimeEqual(secretHash, record.secretHash) ? principalOf(record) : null;
    },
    forget(id) {
      found.delete(id);
      unknown.delete(id);
    },
  };
}
