/**
 * A local OpenID Connect issuer that signs tokens as GitHub Actions does (RS256, GitHub's claim
 * set), on loopback: its OpenID configuration and JWKS, key rotation, and the runner's ID-token
 * endpoint (ACTIONS_ID_TOKEN_REQUEST_URL / _TOKEN: GET with &audience=, bearer, → {"value": jwt}).
 * A key pair is generated per run.
 */
import { randomBytes } from "node:crypto";
import { createServer, type Server } from "node:http";
import { type CryptoKey, exportJWK, generateKeyPair, type JWK, SignJWT } from "jose";

/** The claims of a GitHub Actions ID token (names as GitHub sends them; ids are strings). */
export interface GitHubClaims {
  repository: string;
  repository_id: string;
  repository_owner: string;
  repository_owner_id: string;
  ref: string;
  environment?: string;
  workflow_ref: string;
  job_workflow_ref: string;
  run_id: string;
  run_attempt: string;
  actor: string;
  event_name: string;
  sub: string;
}

/** acme/webapp on main, run 4242 by octocat: override what a test needs. */
export const githubClaims = (over: Partial<GitHubClaims> = {}): GitHubClaims => {
  const repository = over.repository ?? "acme/webapp";
  const ref = over.ref ?? "refs/heads/main";
  return {
    repository,
    repository_id: "700001",
    repository_owner: repository.split("/")[0] ?? "acme",
    repository_owner_id: "900001",
    ref,
    workflow_ref: `${repository}/.github/workflows/deploy.yml@${ref}`,
    job_workflow_ref: `${repository}/.github/workflows/deploy.yml@${ref}`,
    run_id: "4242",
    run_attempt: "1",
    actor: "octocat",
    event_name: "push",
    sub: over.environment
      ? `repo:${repository}:environment:${over.environment}`
      : `repo:${repository}:ref:${ref}`,
    ...over,
  };
};

interface SigningKey {
  kid: string;
  privateKey: CryptoKey;
  jwk: JWK;
}

const newKey = async (): Promise<SigningKey> => {
  const { privateKey, publicKey } = await generateKeyPair("RS256", { extractable: true });
  const kid = randomBytes(8).toString("hex");
  const jwk = { ...(await exportJWK(publicKey)), kid, alg: "RS256", use: "sig" };
  return { kid, privateKey, jwk };
};

export interface TokenOptions {
  audience?: string;
  claims?: Partial<GitHubClaims>;
  /** Seconds from now (negative: already expired). Default 300. */
  expiresIn?: number;
  /** Seconds from now the token becomes valid (nbf). Default: now. */
  notBefore?: number;
  /** Another issuer than this one (a token from elsewhere). */
  issuer?: string;
  /** Sign with a key the JWKS does not publish. */
  unknownKey?: boolean;
}

export interface OidcIssuer {
  /** The issuer URL (iss), e.g. http://127.0.0.1:PORT */
  url: string;
  /** ACTIONS_ID_TOKEN_REQUEST_URL / ACTIONS_ID_TOKEN_REQUEST_TOKEN for a runner emulation. */
  runnerEnv(claims?: Partial<GitHubClaims>, opts?: { expiresIn?: number }): Record<string, string>;
  token(opts?: TokenOptions): Promise<string>;
  /** Publish a new signing key (the old one stays in the JWKS unless `dropOld`); new tokens use it. */
  rotate(opts?: { dropOld?: boolean }): Promise<void>;
  /** How many ID tokens the runner endpoint handed out, and how often the JWKS was read. */
  readonly counts: { idTokens: number; jwksReads: number; configReads: number };
  /** The public key of the current signing key (to forge HS256 tokens with it as the secret). */
  publicJwk(): JWK;
  close(): Promise<void>;
}

export async function startOidcIssuer(): Promise<OidcIssuer> {
  let keys: SigningKey[] = [await newKey()];
  const counts = { idTokens: 0, jwksReads: 0, configReads: 0 };
  const runnerTokens = new Map<string, { claims: Partial<GitHubClaims>; expiresIn: number }>();
  let url = "";

  const sign = async (opts: TokenOptions = {}) => {
    const key = opts.unknownKey ? await newKey() : (keys.at(-1) as SigningKey);
    const now = Math.floor(Date.now() / 1000);
    const jwt = new SignJWT({ ...githubClaims(opts.claims) })
      .setProtectedHeader({ alg: "RS256", kid: key.kid, typ: "JWT" })
      .setIssuer(opts.issuer ?? url)
      .setAudience(opts.audience ?? "http://lss.test")
      .setIssuedAt(now)
      .setNotBefore(now + (opts.notBefore ?? 0))
      .setExpirationTime(now + (opts.expiresIn ?? 300))
      .setJti(randomBytes(8).toString("hex"));
    return jwt.sign(key.privateKey);
  };

  const server: Server = createServer((req, res) => {
    const u = new URL(req.url ?? "/", url);
    const json = (status: number, body: unknown) => {
      res.writeHead(status, { "Content-Type": "application/json" });
      res.end(JSON.stringify(body));
    };
    if (u.pathname === "/.well-known/openid-configuration") {
      counts.configReads++;
      return json(200, {
        issuer: url,
        jwks_uri: `${url}/.well-known/jwks`,
        subject_types_supported: ["public", "pairwise"],
        response_types_supported: ["id_token"],
        id_token_signing_alg_values_supported: ["RS256"],
        claims_supported: Object.keys(githubClaims()),
      });
    }
    if (u.pathname === "/.well-known/jwks") {
      counts.jwksReads++;
      return json(200, { keys: keys.map((k) => k.jwk) });
    }
    if (u.pathname === "/runner/id-token") {
      // As the runner: the request token as bearer, the audience as a query parameter.
      const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? "")?.[1] ?? "";
      const grant = runnerTokens.get(bearer);
      if (!grant) return json(401, { message: "bad request token" });
      counts.idTokens++;
      const audience = u.searchParams.get("audience") ?? undefined;
      void sign({ audience, claims: grant.claims, expiresIn: grant.expiresIn }).then((value) =>
        json(200, { value }),
      );
      return;
    }
    json(404, { message: "not found" });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  url = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`;

  return {
    url,
    counts,
    runnerEnv(claims = {}, opts = {}) {
      const requestToken = randomBytes(16).toString("hex");
      runnerTokens.set(requestToken, { claims, expiresIn: opts.expiresIn ?? 300 });
      return {
        ACTIONS_ID_TOKEN_REQUEST_URL: `${url}/runner/id-token?api-version=2.0`,
        ACTIONS_ID_TOKEN_REQUEST_TOKEN: requestToken,
      };
    },
    token: sign,
    async rotate(opts = {}) {
      const next = await newKey();
      keys = opts.dropOld ? [next] : [...keys, next];
    },
    publicJwk: () => (keys.at(-1) as SigningKey).jwk,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
