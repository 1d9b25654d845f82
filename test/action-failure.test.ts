/** The one line a failed step logs names what to fix: the input, or the server's setting. */
import { describe, expect, it } from "vitest";
import { createApp } from "../server/app.js";
import { createMemoryStore } from "../server/stores/memory.js";
import { describeFailure } from "../src/action/failure.js";
import type { Auth } from "../src/action/inputs.js";
import { createClient } from "../src/client/client.js";
import { LssError } from "../src/client/errors.js";
import { NO_OIDC_POLICY } from "../src/protocol/error-codes.js";
import { testConfig } from "./support/app.js";

const url = "https://lss.example.com";
const oidc: Auth = {
  kind: "oidc",
  requestUrl: "https://runner.example/idtoken",
  requestToken: "request-token",
  audience: url,
};
const refused = (message: string) => new LssError("unauthorized", message, 401);

describe("an OIDC token refused", () => {
  it("by a server with no OIDC policy: names the server's setting and the token input, not the audience", async () => {
    // The server's answer as the client reads it (its message begins with the operation).
    const app = createApp({ store: createMemoryStore(), rateLimiter: null, config: testConfig() });
    const jwt = "eyJhbGciOiJSUzI1NiIsImtpZCI6IngifQ.eyJzdWIiOiJyZXBvOmFjbWUvd2ViIn0.c2lnbmF0dXJl";
    const client = createClient({
      url,
      token: jwt,
      fetch: ((input: string, init?: RequestInit) => app.request(input, init)) as typeof fetch,
    });
    const err = await client.acquire("qa-env", { ttlMs: 60_000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LssError);
    expect((err as LssError).message).toContain(NO_OIDC_POLICY);
    const line = describeFailure(err, { url, auth: oidc });
    expect(line).toContain("LSS_OIDC_POLICY");
    expect(line).toContain("input 'token'");
    expect(line).not.toContain("audience");
  });

  it("for another reason: points at the issuer and the audience", () => {
    const line = describeFailure(refused("the token's audience is not this server"), { url, auth: oidc });
    expect(line).toContain("input 'audience'");
  });
});

describe("a lease longer than the server allows", () => {
  it("names the inputs that ask for it and the server's setting", () => {
    const err = new LssError(
      "bad_request",
      "invalid body: ttl_ms must be at most 86400000 (1d: this server's LSS_MAX_TTL_MS)",
      400,
    );
    const line = describeFailure(err, { url, auth: { kind: "token", token: "t" } });
    expect(line).toContain("input 'hold' or 'ttl'");
    expect(line).toContain("raise LSS_MAX_TTL_MS");
  });
});
