/**
 * GitHub's REST API as the App: an App JWT (RS256, issued 60 s in the past, 9 minutes long), an
 * installation token per installation (cached until 5 minutes before it expires), and requests
 * that wait out a secondary rate limit (403/429 with retry-after) or a 5xx a few times. Neither
 * token ever reaches a log, a metric or an error message.
 */
import { importPKCS8, type KeyInput, SignJWT } from "jose";

export interface GitHubAnswer {
  status: number;
  body: unknown;
}

export interface GitHubApi {
  /** One call as the installation; the answer as GitHub gave it (after the retries). */
  request(installationId: number, method: string, path: string, body?: unknown): Promise<GitHubAnswer>;
}

export class GitHubApiError extends Error {
  override name = "GitHubApiError";
  /** GitHub's answer, when it gave one (a refused installation token: 404 once uninstalled). */
  constructor(
    message: string,
    readonly status: number | null = null,
  ) {
    super(message);
  }
}

const ATTEMPTS = 3;
const TOKEN_MARGIN_MS = 5 * 60_000;

/** The App's private key: PKCS#8 anywhere; PKCS#1 (GitHub's download) where node:crypto reads it. */
async function signingKey(pem: string): Promise<KeyInput> {
  if (pem.includes("BEGIN PRIVATE KEY")) return importPKCS8(pem, "RS256");
  const nodeCrypto = (
    globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }
  ).process?.getBuiltinModule?.("node:crypto") as
    | { createPrivateKey?: (pem: string) => KeyInput }
    | undefined;
  if (!nodeCrypto?.createPrivateKey)
    throw new GitHubApiError(
      "this runtime reads PKCS#8 keys only: convert the App's key with `openssl pkcs8 -topk8 -nocrypt -in key.pem`",
    );
  return nodeCrypto.createPrivateKey(pem);
}

const retryable = (status: number, headers: Headers) =>
  status >= 500 || status === 429 || (status === 403 && headers.has("retry-after"));

/** How long GitHub asks us to wait (retry-after, or the rate limit's reset), capped for a request. */
function waitOf(headers: Headers, attempt: number): number {
  const after = Number(headers.get("retry-after"));
  if (Number.isFinite(after) && after > 0) return Math.min(after * 1000, 5_000);
  return Math.min(250 * 2 ** attempt, 5_000);
}

export function createGitHubApi(opts: {
  appId: string;
  privateKeyPem: string;
  apiUrl: string;
  fetch?: typeof fetch;
  sleep?: (ms: number) => Promise<void>;
}): GitHubApi {
  const fetcher = opts.fetch ?? fetch;
  const sleep = opts.sleep ?? ((ms: number) => new Promise((r) => setTimeout(r, ms)));
  let key: Promise<KeyInput> | null = null;
  const tokens = new Map<number, { token: string; expiresAt: number }>();

  const appJwt = async () => {
    key ??= signingKey(opts.privateKeyPem);
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({})
      .setProtectedHeader({ alg: "RS256" })
      .setIssuer(opts.appId)
      .setIssuedAt(now - 60)
      .setExpirationTime(now + 9 * 60)
      .sign(await key);
  };

  const send = async (method: string, path: string, bearer: string, body?: unknown) => {
    for (let attempt = 0; ; attempt++) {
      let res: Response;
      try {
        res = await fetcher(`${opts.apiUrl}${path}`, {
          method,
          headers: {
            Authorization: `Bearer ${bearer}`,
            Accept: "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
            "User-Agent": "lss-github-app",
            ...(body === undefined ? {} : { "Content-Type": "application/json" }),
          },
          body: body === undefined ? undefined : JSON.stringify(body),
          signal: AbortSignal.timeout(10_000),
        });
      } catch (err) {
        if (attempt + 1 >= ATTEMPTS)
          throw new GitHubApiError(`GitHub did not answer ${method} ${path}: ${(err as Error).message}`);
        await sleep(waitOf(new Headers(), attempt));
        continue;
      }
      const text = await res.text();
      if (!retryable(res.status, res.headers) || attempt + 1 >= ATTEMPTS) {
        let parsed: unknown = text;
        try {
          parsed = text ? JSON.parse(text) : null;
        } catch {}
        return { status: res.status, body: parsed };
      }
      await sleep(waitOf(res.headers, attempt));
    }
  };

  const installationToken = async (installationId: number) => {
    const cached = tokens.get(installationId);
    if (cached && cached.expiresAt - TOKEN_MARGIN_MS > Date.now()) return cached.token;
    const answer = await send(
      "POST",
      `/app/installations/${installationId}/access_tokens`,
      await appJwt(),
      {},
    );
    const body = answer.body as { token?: string; expires_at?: string } | null;
    if (answer.status !== 201 || !body?.token)
      throw new GitHubApiError(
        `GitHub refused a token for installation ${installationId} (${answer.status})`,
        answer.status,
      );
    tokens.set(installationId, {
      token: body.token,
      expiresAt: Date.parse(body.expires_at ?? "") || Date.now(),
    });
    return body.token;
  };

  return {
    async request(installationId, method, path, body) {
      const answer = await send(method, path, await installationToken(installationId), body);
      // A token revoked before its time: forget it, so that the next call gets a new one.
      if (answer.status === 401) tokens.delete(installationId);
      return answer;
    },
  };
}
