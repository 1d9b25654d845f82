/**
 * The job's OIDC ID tokens on the action's side: fetched from the runner's endpoint as the toolkit
 * does (against the local issuer), reused until shortly before they expire, and handed to the LSS
 * client as a token provider that is asked per request and refreshed once on a 401.
 */
import { decodeJwt } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  fetchIdToken,
  IdTokenError,
  idTokenProvider,
  idTokenRequestFrom,
  jobIdTokens,
  jwtTimes,
} from "../src/action/id-token.js";
import { createClient, type TokenProvider } from "../src/client/client.js";
import { LssError } from "../src/client/errors.js";
import { FREE } from "./support/fakes.js";
import { githubClaims, type OidcIssuer, startOidcIssuer } from "./support/oidc-issuer.js";

let issuer: OidcIssuer;
beforeAll(async () => {
  issuer = await startOidcIssuer();
});
afterAll(() => issuer.close());

/** A JWT-shaped string with these claims (unsigned: the action never verifies). */
const jwt = (claims: Record<string, unknown>) =>
  `eyJhbGciOiJSUzI1NiJ9.${Buffer.from(JSON.stringify(claims)).toString("base64url")}.c2ln`;

const sourceOf = (env: Record<string, string>, audience = "https://lss.example.com") => {
  const request = idTokenRequestFrom(env);
  if (!request) throw new Error("no request in the runner env");
  return { ...request, audience };
};

describe("fetchIdToken: the runner's ID-token endpoint", () => {
  it("GETs <url>&audience=… with the request token and returns the JWT, with the job's claims", async () => {
    const source = sourceOf(issuer.runnerEnv({ repository: "acme/webapp" }), "https://lss.example.com/x y");
    const token = await fetchIdToken(source);
    const claims = decodeJwt(token);
    expect(claims.aud).toBe("https://lss.example.com/x y");
    expect(claims.iss).toBe(issuer.url);
    expect(claims).toMatchObject({ repository: "acme/webapp", run_id: githubClaims().run_id });
  });

  it("a refused request token fails at once, saying the status and never the token", async () => {
    const source = { ...sourceOf(issuer.runnerEnv()), requestToken: "not-a-request-token" };
    const err = await fetchIdToken(source, { sleep: async () => {} }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IdTokenError);
    expect((err as Error).message).toBe("the runner's ID-token endpoint answered 401");
  });

  it("retries 5xx and network errors, then fails with the last reason", async () => {
    const calls: string[] = [];
    const answers = [
      new Response("", { status: 503 }),
      new Error("fetch failed"),
      Response.json({ value: "a.b.c" }),
    ];
    const fake = (async (url: string, init: RequestInit) => {
      calls.push(`${url} ${(init.headers as Record<string, string>).Authorization}`);
      const next = answers.shift();
      if (next instanceof Error) throw next;
      return next as Response;
    }) as typeof fetch;
    const source = { requestUrl: "http://runner/t?v=2", requestToken: "rt", audience: "aud" };
    expect(await fetchIdToken(source, { fetch: fake, sleep: async () => {} })).toBe("a.b.c");
    expect(calls).toEqual(Array(3).fill("http://runner/t?v=2&audience=aud Bearer rt"));

    const down = (async () => new Response("", { status: 502 })) as unknown as typeof fetch;
    await expect(fetchIdToken(source, { fetch: down, sleep: async () => {}, retries: 2 })).rejects.toThrow(
      "the runner's ID-token endpoint answered 502",
    );
  });

  it("an answer without a value is an error", async () => {
    const fake = (async () => Response.json({ count: 1 })) as unknown as typeof fetch;
    await expect(
      fetchIdToken({ requestUrl: "http://r/?a=1", requestToken: "rt", audience: "x" }, { fetch: fake }),
    ).rejects.toThrow("answered without a token");
  });

  it("idTokenRequestFrom needs both variables", () => {
    expect(idTokenRequestFrom({})).toBeNull();
    expect(idTokenRequestFrom({ ACTIONS_ID_TOKEN_REQUEST_URL: "u" })).toBeNull();
    expect(
      idTokenRequestFrom({ ACTIONS_ID_TOKEN_REQUEST_URL: "u", ACTIONS_ID_TOKEN_REQUEST_TOKEN: "t" }),
    ).toEqual({
      requestUrl: "u",
      requestToken: "t",
    });
  });
});

describe("jwtTimes: exp and iat, read without verifying", () => {
  it.each([
    [jwt({ exp: 2000, iat: 1700 }), { exp: 2000, iat: 1700 }],
    [jwt({ exp: 2000 }), { exp: 2000, iat: null }],
    [jwt({ iat: 1 }), null],
    [jwt({ exp: "2000" }), null],
    ["not-a-jwt", null],
    ["a.!!!.c", null],
  ])("%s → %j", (token, times) => {
    expect(jwtTimes(token)).toEqual(times);
  });
});

describe("idTokenProvider: one token until shortly before it expires", () => {
  function harness(lifeS: number, opts: { iat?: boolean } = {}) {
    let t = 1_000_000_000_000;
    const fetched: string[] = [];
    const masked: string[] = [];
    const provider = idTokenProvider({
      fetchToken: async () => {
        const now = Math.floor(t / 1000);
        const token = jwt({
          n: fetched.length,
          exp: now + lifeS,
          ...(opts.iat === false ? {} : { iat: now }),
        });
        fetched.push(token);
        return token;
      },
      onToken: (token) => masked.push(token),
      now: () => t,
    });
    return {
      fetched,
      masked,
      ask: (refresh = false) => provider({ refresh }),
      advance: (ms: number) => {
        t += ms;
      },
    };
  }

  it("reuses a GitHub-length token (5 min) until 60 s before its exp, then fetches a fresh one", async () => {
    const h = harness(300);
    const first = await h.ask();
    h.advance(239_000);
    expect(await h.ask()).toBe(first);
    h.advance(1000); // 60 s left
    const second = await h.ask();
    expect(second).not.toBe(first);
    expect(h.fetched).toEqual([first, second]);
    expect(h.masked).toEqual(h.fetched);
  });

  it("a short-lived token (8 s) is replaced a quarter of its life before its exp", async () => {
    const h = harness(8);
    const first = await h.ask();
    h.advance(5900);
    expect(await h.ask()).toBe(first);
    h.advance(100);
    expect(await h.ask()).not.toBe(first);
    expect(h.fetched).toHaveLength(2);
  });

  it("without iat, 60 s before exp", async () => {
    const h = harness(300, { iat: false });
    await h.ask();
    h.advance(241_000);
    await h.ask();
    expect(h.fetched).toHaveLength(2);
  });

  it("refresh: a fresh one at once, which is then reused", async () => {
    const h = harness(300);
    const first = await h.ask();
    const fresh = await h.ask(true);
    expect(fresh).not.toBe(first);
    expect(await h.ask()).toBe(fresh);
    expect(h.fetched).toHaveLength(2);
  });

  it("concurrent asks share one fetch", async () => {
    const h = harness(300);
    const tokens = await Promise.all([h.ask(), h.ask(), h.ask()]);
    expect(new Set(tokens).size).toBe(1);
    expect(h.fetched).toHaveLength(1);
  });

  it("a token whose exp cannot be read is used once", async () => {
    let n = 0;
    const provider = idTokenProvider({ fetchToken: async () => `opaque-${n++}` });
    expect(await provider({ refresh: false })).toBe("opaque-0");
    expect(await provider({ refresh: false })).toBe("opaque-1");
  });

  it("jobIdTokens: from the runner, one per life", async () => {
    const before = issuer.counts.idTokens;
    const provider = jobIdTokens(sourceOf(issuer.runnerEnv()));
    const a = await provider({ refresh: false });
    expect(await provider({ refresh: false })).toBe(a);
    expect(issuer.counts.idTokens - before).toBe(1);
  });
});

describe("createClient with a token provider", () => {
  /** A free key's status, as the server answers it. */
  const OK = { ...FREE, key: "k" };
  function server(statuses: number[]) {
    const seen: string[] = [];
    const fake = (async (_url: string, init: RequestInit) => {
      seen.push((init.headers as Record<string, string>).Authorization ?? "");
      const status = statuses.shift() ?? 200;
      return status === 200
        ? Response.json(OK)
        : Response.json(
            { error: { code: status === 401 ? "unauthorized" : "unavailable", message: "no" } },
            { status },
          );
    }) as typeof fetch;
    return { seen, fake };
  }
  const counting = () => {
    const asks: boolean[] = [];
    const provider: TokenProvider = async ({ refresh }) => {
      asks.push(refresh);
      return `tok-${asks.length}`;
    };
    return { asks, provider };
  };

  it("asks the provider before every request", async () => {
    const s = server([]);
    const p = counting();
    const client = createClient({ url: "http://lss", token: p.provider, fetch: s.fake });
    await client.status("k");
    await client.status("k");
    expect(s.seen).toEqual(["Bearer tok-1", "Bearer tok-2"]);
    expect(p.asks).toEqual([false, false]);
  });

  it("on a 401, refreshes once and retries at once; a second 401 is the answer", async () => {
    const s = server([401]);
    const p = counting();
    const sleeps: number[] = [];
    const client = createClient({
      url: "http://lss",
      token: p.provider,
      fetch: s.fake,
      sleep: async (ms) => void sleeps.push(ms),
    });
    expect(await client.status("k")).toEqual(OK);
    expect(s.seen).toEqual(["Bearer tok-1", "Bearer tok-2"]);
    expect(p.asks).toEqual([false, true]);
    expect(sleeps).toEqual([]);

    const refused = server([401, 401, 401]);
    const again = createClient({ url: "http://lss", token: counting().provider, fetch: refused.fake });
    const err = await again.status("k").catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "unauthorized", status: 401 });
    expect(refused.seen).toHaveLength(2);
  });

  it("a fixed token is not retried on a 401", async () => {
    const s = server([401]);
    const client = createClient({ url: "http://lss", token: "fixed", fetch: s.fake });
    await expect(client.status("k")).rejects.toMatchObject({ code: "unauthorized" });
    expect(s.seen).toEqual(["Bearer fixed"]);
  });

  it("retries of a 503 ask the provider again (each attempt gets a current token)", async () => {
    const s = server([503]);
    const p = counting();
    const client = createClient({
      url: "http://lss",
      token: p.provider,
      fetch: s.fake,
      sleep: async () => {},
    });
    await client.status("k");
    expect(s.seen).toEqual(["Bearer tok-1", "Bearer tok-2"]);
  });

  it("a provided token that cannot be a header is refused without echoing it, and nothing is sent", async () => {
    const s = server([]);
    const client = createClient({ url: "http://lss", token: async () => "eyJ secret\nvalue", fetch: s.fake });
    const err = (await client.status("k").catch((e: unknown) => e)) as LssError;
    expect(err).toBeInstanceOf(LssError);
    expect(err.code).toBe("bad_token");
    expect(err.message).not.toContain("secret");
    expect(s.seen).toEqual([]);
  });

  it("a provider that fails is token_unavailable, with its reason, and LSS is not asked", async () => {
    const s = server([]);
    const client = createClient({
      url: "http://lss",
      token: async () => {
        throw new IdTokenError("the runner's ID-token endpoint answered 500");
      },
      fetch: s.fake,
    });
    await expect(client.status("k")).rejects.toMatchObject({
      code: "token_unavailable",
      message: "could not get a token: the runner's ID-token endpoint answered 500",
    });
    expect(s.seen).toEqual([]);
  });
});
