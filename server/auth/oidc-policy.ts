/**
 * The operator's OIDC policy: which workflows (by the claims of their GitHub Actions ID token) get
 * which namespace, scopes and keys. Validated once, at start; every mistake names its rule.
 */
import { z } from "zod";
import { NAMESPACE_PATTERN, type Scope } from "./types.js";

/** The claims a rule may match on (GitHub's names). */
export const MATCHABLE_CLAIMS = [
  "repository",
  "repository_id",
  "repository_owner",
  "repository_owner_id",
  "environment",
  "ref",
  "ref_type",
  "workflow_ref",
  "job_workflow_ref",
  "event_name",
  "actor",
  "actor_id",
  "sub",
] as const;
export type MatchableClaim = (typeof MATCHABLE_CLAIMS)[number];

/** Scopes a workflow may be given: never admin (that mints tokens). locks:force: force releases. */
export const OIDC_SCOPES = ["locks:read", "locks:write", "locks:force"] as const satisfies readonly Scope[];

/** A name may be taken again after a rename or deletion; the number behind it never is. */
const IDS_FOR_NAMES: Partial<Record<MatchableClaim, MatchableClaim>> = {
  repository: "repository_id",
  repository_owner: "repository_owner_id",
  actor: "actor_id",
};

const Rule = z
  .object({
    name: z.string({ error: "name must be a string" }).min(1, "name must not be empty").max(100),
    match: z
      .partialRecord(
        z.enum(MATCHABLE_CLAIMS, {
          error: `match may name only these claims: ${MATCHABLE_CLAIMS.join(", ")}`,
        }),
        z.string({ error: 'match values must be strings (ids too: "900001")' }).min(1),
      )
      .refine((m) => Object.keys(m).length > 0, "match must name at least one claim"),
    namespace: z
      .string()
      .regex(NAMESPACE_PATTERN, "namespace must be 1–63 lowercase letters, digits, '_' or '-'"),
    scopes: z
      .array(z.enum(OIDC_SCOPES, { error: `scopes must be some of ${OIDC_SCOPES.join(", ")}` }))
      .min(1, "scopes must name at least one scope"),
    /** Key patterns ("webapp/*", "qa-*", "deploy"): the rule's scopes hold for these keys only. */
    keys: z.array(z.string().min(1, "keys must not be empty strings").max(512)).min(1).optional(),
  })
  .strict();

export type OidcRule = z.infer<typeof Rule>;

const Policy = z.union([z.object({ rules: z.array(z.unknown()) }).strict(), z.array(z.unknown())]);

export class PolicyError extends Error {
  override name = "PolicyError";
}

/** The policy's JSON text → its rules; throws PolicyError naming the rule (its number and name). */
export function parsePolicy(text: string, source: string): OidcRule[] {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new PolicyError(`${source} is not JSON: ${(err as Error).message}`);
  }
  const top = Policy.safeParse(raw);
  if (!top.success) throw new PolicyError(`${source} must be {"rules": [...]} or an array of rules`);
  const list = Array.isArray(top.data) ? top.data : top.data.rules;
  if (list.length === 0) throw new PolicyError(`${source} has no rules`);
  return list.map((candidate, i) => {
    const label = (candidate as { name?: unknown })?.name;
    const which = `${source} rule ${i + 1}${typeof label === "string" ? ` ("${label}")` : ""}`;
    const parsed = Rule.safeParse(candidate);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const where = issue?.path.length ? ` (${issue.path.join(".")})` : "";
      let message = issue?.message ?? "invalid";
      if (issue?.code === "unrecognized_keys") {
        message =
          issue.path.at(-1) === "match"
            ? `match may name only these claims: ${MATCHABLE_CLAIMS.join(", ")} (not ${issue.keys.join(", ")})`
            : `unknown field ${issue.keys.join(", ")}: a rule has name, match, namespace, scopes and keys`;
      }
      throw new PolicyError(`${which}${where}: ${message}`);
    }
    const rule = parsed.data;
    for (const [name, id] of Object.entries(IDS_FOR_NAMES) as Array<[MatchableClaim, MatchableClaim]>) {
      if (rule.match[name] !== undefined && rule.match[id] === undefined) {
        throw new PolicyError(
          `${which}: match names ${name} "${rule.match[name]}" without ${id}: a name can be taken again ` +
            `after a rename or deletion, its id cannot; add "${id}"`,
        );
      }
    }
    if (!rule.match.repository_id && !rule.match.repository_owner_id) {
      throw new PolicyError(
        `${which}: match must name repository_id or repository_owner_id, so that it holds for ` +
          "that repository or owner only, whatever it is called later",
      );
    }
    for (const id of ["repository_id", "repository_owner_id", "actor_id"] as const) {
      const value = rule.match[id];
      if (value !== undefined && !/^\d+$/.test(value)) {
        throw new PolicyError(
          `${which}: ${id} must be a number as GitHub sends it ("900001"), not "${value}"`,
        );
      }
    }
    return rule;
  });
}

/** "qa-*" matches "qa-1"; "*" stands for any characters; everything else matches itself. */
export function keyMatches(pattern: string, key: string): boolean {
  const parts = pattern.split("*");
  if (parts.length === 1) return pattern === key;
  const [first = "", ...rest] = parts;
  const last = rest.pop() ?? "";
  if (!key.startsWith(first) || !key.endsWith(last) || key.length < first.length + last.length) return false;
  let at = first.length;
  const end = key.length - last.length;
  for (const part of rest) {
    const found = key.indexOf(part, at);
    if (found < 0 || found + part.length > end) return false;
    at = found + part.length;
  }
  return true;
}

/**
 * The key ranges a listing must look at for keys matching one of `patterns` that start with
 * `prefix`: the prefixes the patterns' keys all start with (what comes before their first `*`),
 * narrowed to `prefix`, none inside another, in order. A listing of these ranges never reads a
 * key outside them, so it can page by the last key it shows.
 */
export function literalRanges(patterns: readonly string[], prefix: string): string[] {
  const ranges = new Set<string>();
  for (const pattern of patterns) {
    const literal = pattern.split("*")[0] ?? "";
    if (literal.startsWith(prefix)) ranges.add(literal);
    else if (prefix.startsWith(literal)) ranges.add(prefix);
  }
  const sorted = [...ranges].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return sorted.filter((r, i) => !sorted.slice(0, i).some((shorter) => r.startsWith(shorter)));
}
