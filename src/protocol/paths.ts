/**
 * Every path of both APIs, written once: the routes declare these patterns (OpenAPI's `{name}`
 * form), and the client, the action and the tests' harness build their URLs from them with
 * `pathTo`. test/paths.test.ts holds the table to the app's OpenAPI document, both ways.
 */
export const PATHS = {
  // The lease API.
  acquire: "/infra/locks/{key}/acquire",
  acquirePool: "/infra/pools/acquire",
  renew: "/infra/locks/{key}/renew",
  release: "/infra/locks/{key}/release",
  leave: "/infra/locks/{key}/leave",
  status: "/infra/locks/{key}",
  history: "/infra/locks/{key}/history",
  list: "/infra/locks",
  // The Lock State Service API.
  createStateLock: "/locks",
  stateLock: "/locks/{id}",
  lockStateLock: "/locks/{id}/lock",
  unlockStateLock: "/locks/{id}/unlock",
  // Notifications (admin).
  webhooks: "/infra/webhooks",
  webhook: "/infra/webhooks/{id}",
  // Operating the server.
  tokens: "/admin/tokens",
  token: "/admin/tokens/{id}",
  health: "/health",
  metrics: "/metrics",
} as const;

export type PathName = keyof typeof PATHS;

/** `{ key: string }` for "/infra/locks/{key}": the parameters a pattern names. */
type ParamsOf<P extends string> = P extends `${string}{${infer Name}}${infer Rest}`
  ? { [K in Name]: string } & ParamsOf<Rest>
  : unknown;

/** Query parameters: those left undefined are left out. */
export type Query = Record<string, string | number | boolean | undefined>;

/**
 * The path of `name` with its parameters filled in (each one URL-encoded: a key may hold `/`) and
 * the query that is given: pathTo("acquire", { key: "qa/eu" }) → "/infra/locks/qa%2Feu/acquire".
 */
export function pathTo<N extends PathName>(
  name: N,
  ...[params, query]: ParamsOf<(typeof PATHS)[N]> extends infer P
    ? unknown extends P
      ? [params?: Record<string, never>, query?: Query]
      : [params: P, query?: Query]
    : never
): string {
  const values = (params ?? {}) as Record<string, string>;
  const path = PATHS[name].replace(/{(\w+)}/g, (_, param: string) => {
    const value = values[param];
    if (value === undefined) throw new Error(`pathTo(${name}): no ${param}`);
    return encodeURIComponent(value);
  });
  const search = new URLSearchParams();
  for (const [param, value] of Object.entries(query ?? {})) {
    if (value !== undefined) search.set(param, String(value));
  }
  return search.size ? `${path}?${search}` : path;
}
