/**
 * Which clients call, in the server's log: each instance names every client version the first time
 * it calls (its User-Agent, e.g. `lss-action/1.2.0 lss-client/1.2.0`), so an operator sees when old
 * actions are still in use; and with LSS_ACCESS_LOG=on, one JSON line per request. Only an
 * authenticated caller's LSS client is named: anyone else could fill the list with made-up agents.
 */
import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "./auth/middleware.js";

/** How many distinct clients an instance names; past it, new ones go unnamed. */
export const NAMED_CLIENTS = 100;
/** A User-Agent that names an LSS client with its version. */
const LSS_CLIENT = /\blss-client\/\d+\.\d+\.\d+/;
/** A User-Agent is logged up to this long, with control characters replaced: a log line is one line. */
const AGENT_CHARS = 200;

export const printableAgent = (agent: string | undefined) =>
  agent ? agent.slice(0, AGENT_CHARS).replace(/[^\x20-\x7e]/g, "?") : "-";

export interface AccessLogOptions {
  /** One JSON line per request (LSS_ACCESS_LOG). */
  everyRequest: boolean;
  log: (line: string) => void;
  now?: () => number;
}

export function accessLog(opts: AccessLogOptions): MiddlewareHandler<AppEnv> {
  const { log } = opts;
  const now = opts.now ?? (() => performance.now());
  const named = new Set<string>();
  return async (c, next) => {
    const started = now();
    const agent = printableAgent(c.req.header("User-Agent"));
    await next();
    const principal = c.get("principal")?.id ?? null;
    const authenticated = principal !== null && !principal.startsWith("addr:");
    if (authenticated && LSS_CLIENT.test(agent) && !named.has(agent) && named.size < NAMED_CLIENTS) {
      named.add(agent);
      log(`lss: first request from client ${agent}`);
    }
    if (!opts.everyRequest) return;
    log(
      JSON.stringify({
        at: new Date().toISOString(),
        method: c.req.method,
        path: c.req.path,
        status: c.res.status,
        ms: Math.round((now() - started) * 10) / 10,
        principal,
        user_agent: agent,
      }),
    );
  };
}
