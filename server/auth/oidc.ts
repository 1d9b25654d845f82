/**
 * GitHub Actions OIDC tokens as bearer tokens: verified with jose against the issuer's keys (its
 * OpenID configuration names its JWKS; keys are cached, and a token signed by a key not seen yet
 * makes it read them again, so a rotation is followed), then mapped by the operator's policy to a
 * principal: a namespace, scopes, and the keys they hold for. Who holds a lock is taken from the
 * verified claims (repository, workflow, run, actor), never from what the client says.
 */
import { createRemoteJWKSet, errors, type JWTPayload, jwtVerify } from "jose";
import { INVISIBLE_FORMATTING } from "../../src/protocol/lease.js";
import { ApiError } from "../errors.js";
import { keyMatches, type OidcRule } from "./oidc-policy.js";
import type { OidcVerifier, Scope } from "./types.js";

export const GITHUB_ISSUER = "https://token.actions.githubusercontent.com";

export interface OidcConfig {
  issuer: string;
  /**
   * The audience tokens must name: LSS_OIDC_AUDIENCE, else the origin of LSS_PUBLIC_URL. Never taken
   * from a request (its Host header or target), which the caller chooses.
   */
  audience: string;
  rules: OidcRule[];
  /** How soon a token with an unknown key may make the JWKS be read again (jose's cooldown). */
  jwksCooldownMs?: number;
  /** How long a failed discovery (the issuer's OpenID configuration) is answered from memory. */
  discoveryRetryMs?: number;
}

/** A GitHub ID token: JWT-shaped (three base64url parts, the first a JSON header). */
export const looksLikeJwt = (bearer: string) => /^eyJ[\w-]*\.[\w-]+\.[\w-]+$/.test(bearer);

/** Clock skew tolerated on exp, nbf and iat; and the oldest token accepted (GitHub's live minutes). */
const CLOCK_SKEW_S = 60;
const MAX_TOKEN_AGE_S = 3600;

type Claims = JWTPayload & Record<string, unknown>;

const text = (v: unknown) => (typeof v === "string" || typeof v === "number" ? String(v) : "");

// biome-ignore lint/suspicious/noControlCharactersInRegex: removing control characters is the point
const CONTROL = /[\x00-\x1f\x7f]/g;
const INVISIBLE = new RegExp(INVISIBLE_FORMATTING, "g");

/** Readable and safe to show: no control or invisible characters, bounded. */
const shown = (v: string, max: number) => v.replace(CONTROL, "").replace(INVISIBLE, "").slice(0, max);

/** Where an issuer's workflow runs are: github.com for GitHub's issuer, the GHES host for its own. */
export const githubServerOf = (issuer: string) =>
  issuer.replace(/\/+$/, "") === GITHUB_ISSUER ? "https://github.com" : new URL(issuer).origin;

/** "acme/webapp · deploy.yml · <run url> · octocat": the holder id of a workflow, from its claims. */
export function workflowHolder(claims: Claims, issuer: string): string {
  const repository = text(claims.repository);
  const workflow = text(claims.workflow_ref).split("@")[0]?.split("/").pop() ?? "";
  const attempt = text(claims.run_attempt);
  const run = `${githubServerOf(issuer)}/${repository}/actions/runs/${text(claims.run_id)}${attempt ? `/attempts/${attempt}` : ""}`;
  const parts = [shown(repository, 100), shown(workflow, 60), shown(run, 200), shown(text(claims.actor), 40)];
  return parts.filter(Boolean).join(" · ").slice(0, 256);
}

/** Why a token was refused, in words (jose's codes → a sentence; never the token). */
function refusal(err: unknown): string {
  if (err instanceof errors.JWTExpired) return "it has expired";
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.claim === "aud") return "its audience is not this server's";
    if (err.claim === "iss") return "it was not issued by the configured issuer";
    if (err.claim === "nbf") return "it is not valid yet";
    if (err.claim === "iat") return "its issue time is in the future or too long ago";
    return `its ${err.claim} claim is missing or wrong`;
  }
  if (err instanceof errors.JOSEAlgNotAllowed) return "it is not signed with RS256";
  if (err instanceof errors.JWKSNoMatchingKey) return "it is signed by a key the issuer does not publish";
  if (err instanceof errors.JWSSignatureVerificationFailed) return "its signature does not verify";
  if (err instanceof errors.JWSInvalid || err instanceof errors.JWTInvalid) return "it is malformed";
  return "it cannot be verified";
}

type KeySet = ReturnType<typeof createRemoteJWKSet>;

/** The issuer's key set through its OpenID configuration; a failure as issuer_unavailable. */
async function discover(issuer: string, config: OidcConfig, fetchImpl: typeof fetch): Promise<KeySet> {
  let jwksUri: string;
  try {
    const res = await fetchImpl(`${issuer}/.well-known/openid-configuration`, {
      signal: AbortSignal.timeout(5000),
    });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    const doc = (await res.json()) as { issuer?: string; jwks_uri?: string };
    if (!doc.jwks_uri) throw new Error("no jwks_uri in its OpenID configuration");
    if (doc.issuer && doc.issuer.replace(/\/+$/, "") !== issuer)
      throw new Error(`its OpenID configuration names another issuer (${doc.issuer})`);
    jwksUri = doc.jwks_uri;
  } catch (err) {
    throw new ApiError(
      "issuer_unavailable",
      `cannot verify the OIDC token now: the issuer ${issuer} did not answer (${(err as Error).message}); nothing was changed`,
      { headers: { "Retry-After": "5" } },
    );
  }
  return createRemoteJWKSet(new URL(jwksUri), {
    cooldownDuration: config.jwksCooldownMs ?? 30_000,
    timeoutDuration: 5000,
  });
}

/**
 * The issuer's key set, found through its OpenID configuration: read once, by one request for all
 * that wait on it. A failure is answered from memory for discoveryRetryMs, so that a stream of
 * JWT-shaped bearers does not cost an outbound request each.
 */
function issuerKeys(issuer: string, config: OidcConfig, fetchImpl: typeof fetch) {
  let keys: KeySet | null = null;
  /** The discovery under way (one for every request that waits on it), and the last failure's. */
  let discovering: Promise<KeySet> | null = null;
  let failed: { until: number; error: ApiError } | null = null;
  return async () => {
    if (keys) return keys;
    if (failed && Date.now() < failed.until) throw failed.error;
    discovering ??= discover(issuer, config, fetchImpl).then(
      (found) => {
        keys = found;
        return found;
      },
      (err: ApiError) => {
        failed = { until: Date.now() + (config.discoveryRetryMs ?? 10_000), error: err };
        discovering = null;
        throw err;
      },
    );
    return discovering;
  };
}

const unauthorized = (why: string) =>
  new ApiError("unauthorized", `invalid OIDC token: ${why}`, {
    headers: { "WWW-Authenticate": 'Bearer realm="lss", error="invalid_token"' },
  });

/** The token's claims, verified: signature, issuer, audience, times and the claims a rule needs. */
async function verifiedClaims(jwt: string, jwks: KeySet, issuer: string, audience: string): Promise<Claims> {
  try {
    const verified = await jwtVerify(jwt, jwks, {
      issuer,
      audience,
      algorithms: ["RS256"],
      clockTolerance: CLOCK_SKEW_S,
      maxTokenAge: MAX_TOKEN_AGE_S,
      requiredClaims: ["exp", "iat", "repository", "repository_id", "repository_owner_id", "run_id"],
    });
    return verified.payload as Claims;
  } catch (err) {
    if (err instanceof errors.JWKSTimeout || (err instanceof TypeError && /fetch/i.test(err.message))) {
      throw new ApiError(
        "issuer_unavailable",
        "cannot verify the OIDC token now: the issuer's keys did not load",
        {
          headers: { "Retry-After": "5" },
        },
      );
    }
    throw unauthorized(refusal(err));
  }
}

/** Who verified claims are by the operator's rules: the first matching rule's namespace, and what the rules for it grant. */
function principalOf(claims: Claims, rules: OidcConfig["rules"], issuer: string) {
  const matching = rules.filter((rule) =>
    Object.entries(rule.match).every(([claim, value]) => text(claims[claim]) === value),
  );
  const first = matching[0];
  if (!first) {
    throw new ApiError(
      "forbidden",
      `no OIDC rule of this server admits repository ${text(claims.repository)} (id ${text(claims.repository_id)})` +
        `${claims.environment ? `, environment ${text(claims.environment)}` : ""}: ask the operator to add one`,
    );
  }
  // The first matching rule names the namespace; the rules for it that match add up.
  const grants = matching.filter((r) => r.namespace === first.namespace);
  const restricted = grants.some((r) => r.keys);
  const covers = (scope: Scope) => grants.filter((r) => r.scopes.includes(scope as never));
  return {
    id: `oidc:${text(claims.repository_id)}`,
    name: text(claims.repository),
    namespace: first.namespace,
    scopes: new Set<Scope>(grants.flatMap((r) => r.scopes)),
    holder: workflowHolder(claims, issuer),
    allows: restricted
      ? (scope: Scope, key: string) =>
          covers(scope).some((r) => !r.keys || r.keys.some((p) => keyMatches(p, key)))
      : undefined,
    patterns: restricted ? (scope: Scope) => covers(scope).flatMap((r) => r.keys ?? ["*"]) : undefined,
  };
}

export function createOidcVerifier(config: OidcConfig, fetchImpl: typeof fetch = fetch): OidcVerifier {
  const issuer = config.issuer.replace(/\/+$/, "");
  const keySet = issuerKeys(issuer, config, fetchImpl);
  return {
    accepts: looksLikeJwt,
    async verify(jwt) {
      const claims = await verifiedClaims(jwt, await keySet(), issuer, config.audience);
      return principalOf(claims, config.rules, issuer);
    },
  };
}
