/**
 * Serverless entries build the app on the first request, from that request's environment: a
 * configuration mistake then answers every request with one clear JSON error (and one log line
 * naming the variable), instead of a module that fails to load and a stack trace.
 */
import type { ExecutionContext } from "hono";
import { errorBody } from "./errors.js";

type Fetch<E> = (request: Request, env: E, ctx?: ExecutionContext) => Response | Promise<Response>;

export function lazyFetch<E>(build: (env: E) => { fetch: Fetch<E> }): Fetch<E> {
  let built: { fetch: Fetch<E> } | { error: string } | undefined;
  return (request, env, ctx) => {
    if (!built) {
      try {
        built = build(env);
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        console.error(`lss: configuration error: ${message}`);
        built = { error: message };
      }
    }
    if ("error" in built) {
      return Response.json(errorBody("misconfigured", `LSS is misconfigured: ${built.error}`), {
        status: 500,
      });
    }
    return built.fetch(request, env, ctx);
  };
}

/** A Worker's bindings hold strings (vars, secrets) and objects (KV, …); config reads the strings. */
export const stringBindings = (env: Record<string, unknown>): Record<string, string> =>
  Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => typeof e[1] === "string"));
