/** Operators mint and revoke scoped API tokens; each token belongs to one namespace. */
import { createRoute, z } from "@hono/zod-openapi";
import { printable, strictBody } from "../../src/protocol/common.js";
import { PATHS } from "../../src/protocol/paths.js";
import { requireScope } from "../auth/middleware.js";
import { mintToken } from "../auth/tokens.js";
import {
  NAMESPACE_PATTERN,
  SCOPES,
  type TokenRecord,
  type TokenStore,
  type TokenVerifier,
} from "../auth/types.js";
import { ApiError } from "../errors.js";
import { errorResponse, jsonBody, type Router } from "./router.js";

const MintRequest = strictBody({
  namespace: z
    .string({ error: "namespace must be a string" })
    .regex(
      NAMESPACE_PATTERN,
      "namespace must be 1–63 lowercase letters, digits, '_' or '-', starting with a letter or digit",
    ),
  scopes: z
    .array(z.enum(SCOPES, { error: `scopes must be some of ${SCOPES.join(", ")}` }), {
      error: "scopes must be an array",
    })
    .min(1, "scopes must name at least one scope"),
  name: printable("name", 128).optional(),
});

const TokenInfo = z.object({
  id: z.string(),
  namespace: z.string(),
  scopes: z.array(z.enum(SCOPES)),
  name: z.string().nullable(),
  created_at: z.string(),
});

const info = (r: TokenRecord) => ({
  id: r.id,
  namespace: r.namespace,
  scopes: r.scopes,
  name: r.name,
  created_at: r.createdAt,
});
const json = <T extends z.ZodType>(schema: T, description: string) => ({
  description,
  content: { "application/json": { schema } },
});

export function registerAdminRoutes(app: Router, tokens: TokenStore, verifier: TokenVerifier) {
  const admin = [requireScope("admin")];

  const mint = createRoute({
    method: "post",
    path: PATHS.tokens,
    tags: ["Admin"],
    summary: "Mint a token for a namespace (the secret is shown once)",
    middleware: [...admin, jsonBody],
    request: { body: { required: true, content: { "application/json": { schema: MintRequest } } } },
    responses: {
      201: json(TokenInfo.extend({ status: z.literal("ok"), token: z.string() }), "Minted"),
      400: errorResponse("Invalid request"),
      403: errorResponse("Not an admin"),
    },
  });

  const list = createRoute({
    method: "get",
    path: PATHS.tokens,
    tags: ["Admin"],
    summary: "List tokens (never their secrets)",
    middleware: admin,
    responses: { 200: json(z.object({ status: z.literal("ok"), tokens: z.array(TokenInfo) }), "Tokens") },
  });

  const revoke = createRoute({
    method: "delete",
    path: PATHS.token,
    tags: ["Admin"],
    summary: "Revoke a token (other server instances stop accepting it within LSS_TOKEN_CACHE_MS)",
    middleware: admin,
    request: {
      params: z.object({ id: z.string().regex(/^[0-9a-f]{16}$/, "token id must be 16 hex digits") }),
    },
    responses: {
      200: json(z.object({ status: z.literal("ok"), id: z.string(), revoked: z.literal(true) }), "Revoked"),
      404: errorResponse("No such token"),
    },
  });

  return app
    .openapi(mint, async (c) => {
      const req = c.req.valid("json");
      const { secret, record } = mintToken(req.namespace, req.scopes, req.name ?? null);
      await tokens.put(record);
      return c.json({ status: "ok" as const, token: secret, ...info(record) }, 201);
    })
    .openapi(list, async (c) => {
      const all = await tokens.list();
      all.sort((a, b) => a.createdAt.localeCompare(b.createdAt));
      return c.json({ status: "ok" as const, tokens: all.map(info) }, 200);
    })
    .openapi(revoke, async (c) => {
      const { id } = c.req.valid("param");
      if (!(await tokens.delete(id))) throw new ApiError("not_found", `no token with id ${id}`);
      verifier.forget(id);
      return c.json({ status: "ok" as const, id, revoked: true as const }, 200);
    });
}
