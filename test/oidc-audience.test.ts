/**
 * An ID token names the service it was minted for. A job may mint tokens for Vault or another
 * vendor; none of them may be replayed here, however the request names its origin: through its
 * Host header or through an absolute-form target (`POST https://vault.acme.example/… HTTP/1.1`).
 * Tested against `npm start`'s entry as its own process, where both reach the server as a client
 * wrote them, with the audience left to its default (LSS_PUBLIC_URL's origin).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pathTo } from "../src/protocol/paths.js";
import { ADMIN_TOKEN } from "./support/app.js";
import { type OidcIssuer, startOidcIssuer } from "./support/oidc-issuer.js";
import { rawRequest } from "./support/raw-http.js";
import { type ServerProcess, startServerProcess } from "./support/server-process.js";

const POLICY = [
  {
    name: "acme may force",
    match: { repository_owner_id: "900001" },
    namespace: "acme",
    scopes: ["locks:read", "locks:write", "locks:force"],
  },
];
const VAULT = "https://vault.acme.example";

let issuer: OidcIssuer;
let server: ServerProcess;
beforeAll(async () => {
  issuer = await startOidcIssuer();
  server = await startServerProcess((url) => ({
    LSS_ADMIN_TOKEN: ADMIN_TOKEN,
    LSS_PUBLIC_URL: url,
    LSS_OIDC_ISSUER: issuer.url,
    LSS_OIDC_POLICY: JSON.stringify(POLICY),
    LSS_RATE_LIMIT: "off",
  }));
}, 60_000);
afterAll(async () => {
  await server?.kill();
  await issuer?.close();
});

const acquireBody = JSON.stringify({ ttl_ms: 60_000 });
const send = (target: string, jwt: string, host: string) =>
  rawRequest(server.url, {
    method: "POST",
    target,
    headers: { Host: host, Authorization: `Bearer ${jwt}`, "Content-Type": "application/json" },
    body: acquireBody,
  });
const ourHost = () => new URL(server.url).host;

describe("an ID token minted for another service", () => {
  it("is refused when the request's Host names that service", async () => {
    // Node builds a request's URL from its Host: http://vault.acme.example, a service's origin too.
    const jwt = await issuer.token({ audience: "http://vault.acme.example" });
    const res = await send(pathTo("acquire", { key: "deploy" }), jwt, "vault.acme.example");
    expect(res.status, res.body).toBe(401);
    expect(JSON.parse(res.body).error.message).toMatch(/audience is not this server's/);
  });

  it("is refused when the request line names that service in absolute form", async () => {
    const jwt = await issuer.token({ audience: VAULT });
    for (const host of ["vault.acme.example", ourHost()]) {
      const res = await send(`${VAULT}${pathTo("acquire", { key: "deploy" })}`, jwt, host);
      expect(res.status, res.body).toBe(400);
      expect(JSON.parse(res.body).error).toMatchObject({
        code: "bad_request",
        message: expect.stringContaining(`names ${VAULT}, which is not this server (${server.url})`),
      });
    }
  });

  it("left the key free (as a token minted for this server, in the rule's namespace, sees it)", async () => {
    const res = await fetch(`${server.url}${pathTo("status", { key: "deploy" })}`, {
      headers: { Authorization: `Bearer ${await issuer.token({ audience: server.url })}` },
    });
    expect(await res.json()).toMatchObject({ status: "ok", locked: false });
  });
});

describe("a token minted for this server", () => {
  it("is accepted, with a path or an absolute-form target naming this server", async () => {
    const jwt = await issuer.token({ audience: server.url });
    const byPath = await send(pathTo("acquire", { key: "ours-1" }), jwt, ourHost());
    expect(byPath.status, byPath.body).toBe(200);
    const absolute = await send(`${server.url}${pathTo("acquire", { key: "ours-2" })}`, jwt, ourHost());
    expect(absolute.status, absolute.body).toBe(200);
  });
});
