/**
 * The GitHub App's configuration: who it is (LSS_GITHUB_APP_ID, LSS_GITHUB_APP_PRIVATE_KEY), how
 * its webhooks are signed (LSS_GITHUB_WEBHOOK_SECRET), where GitHub's API is (LSS_GITHUB_API_URL),
 * and the gate rules (LSS_GATE_RULES): which repository's environment holds which key, how.
 * Checked at start; a mistake names its variable, and a rule's mistake names the rule.
 */
import { z } from "zod";
import { KEY_PATTERN, MAX_HOLDERS, MAX_POOL_KEYS } from "../../src/protocol/lease.js";
import { NAMESPACE_PATTERN } from "../auth/types.js";

export class GitHubConfigError extends Error {
  override name = "GitHubConfigError";
}

/** A job's longest run on GitHub-hosted runners (6 h), and the margin a gate's lease outlives it by. */
export const DEFAULT_MAX_HOLD_MINUTES = 6 * 60 + 15;

export interface GateRule {
  repositoryId: number;
  environment: string;
  namespace: string;
  /** One key, or a pool: the first free of them. */
  keys: string[];
  mode: "exclusive" | "shared";
  limit: number;
  /** A gate's lease ends when GitHub says the job ended, or after this, whichever comes first. */
  maxHoldMs: number;
}

/** A merge freeze: while the key is held, pull requests to the branch fail the check lss/freeze. */
export interface FreezeRule {
  repositoryId: number;
  branch: string;
  namespace: string;
  key: string;
}

export interface GitHubAppConfig {
  appId: string;
  privateKeyPem: string;
  webhookSecret: string;
  apiUrl: string;
  rules: GateRule[];
  freezes: FreezeRule[];
  /**
   * The bearer a scheduler's tick (GET /github/tick) may present besides an admin token: Vercel
   * Cron sends CRON_SECRET.
   */
  cronSecret: string | null;
  /** How often each Node instance ticks (expiries, the outbox) besides acting on lock events. */
  tickMs: number;
}

export const githubSchema = {
  LSS_GITHUB_APP_ID: z
    .string()
    .regex(/^\d{1,12}$/, "LSS_GITHUB_APP_ID must be the App's numeric id")
    .optional(),
  LSS_GITHUB_APP_PRIVATE_KEY: z.string().optional(),
  LSS_GITHUB_WEBHOOK_SECRET: z
    .string()
    .min(16, "LSS_GITHUB_WEBHOOK_SECRET must be at least 16 characters")
    .optional(),
  LSS_GITHUB_API_URL: z
    .url({
      protocol: /^https?$/,
      error: "LSS_GITHUB_API_URL must be an http(s) URL, e.g. https://api.github.com",
    })
    .optional(),
  LSS_GATE_RULES: z.string().optional(),
  LSS_FREEZE_RULES: z.string().optional(),
  CRON_SECRET: z.string().min(16, "CRON_SECRET must be at least 16 characters").optional(),
  LSS_GITHUB_TICK_MS: z
    .string()
    .regex(/^\d+$/, "LSS_GITHUB_TICK_MS must be a whole number")
    .transform(Number)
    .pipe(
      z
        .number()
        .min(200, "LSS_GITHUB_TICK_MS must be at least 200")
        .max(600_000, "LSS_GITHUB_TICK_MS must be at most 600000"),
    )
    .optional(),
};

const githubObject = z.object(githubSchema);
type GitHubEnv = z.infer<typeof githubObject>;

const namespace = z
  .string()
  .regex(NAMESPACE_PATTERN, "namespace must be lower-case letters, digits, '_' or '-'");
const key = z.string().min(1).max(512).regex(KEY_PATTERN, 'must not contain control characters or ".."');
const ruleSchema = z
  .object({
    repository_id: z.number().int().positive(),
    /** A label for people (acme/webapp); GitHub identifies the repository by its id. */
    repository: z.string().max(256).optional(),
    environment: z.string().min(1).max(255),
    namespace,
    key: key.optional(),
    keys: z.array(key).min(2).max(MAX_POOL_KEYS).optional(),
    mode: z.enum(["exclusive", "shared"]).default("exclusive"),
    limit: z.number().int().min(1).max(MAX_HOLDERS).optional(),
    max_hold_minutes: z
      .number()
      .int()
      .min(1)
      .max(7 * 24 * 60)
      .default(DEFAULT_MAX_HOLD_MINUTES),
  })
  .strict();

const PEM = /^-----BEGIN (RSA )?PRIVATE KEY-----[\s\S]+-----END (RSA )?PRIVATE KEY-----\s*$/;

function ruleOf(raw: unknown, index: number): GateRule {
  const parsed = ruleSchema.safeParse(raw);
  const name = (r: unknown) => {
    const o = (r ?? {}) as { repository?: unknown; repository_id?: unknown; environment?: unknown };
    return `rule ${index + 1} (${String(o.repository ?? o.repository_id ?? "?")}, environment ${String(o.environment ?? "?")})`;
  };
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new GitHubConfigError(
      `LSS_GATE_RULES ${name(raw)}: ${issue?.path.join(".") || "rule"} ${issue?.message}`,
    );
  }
  const r = parsed.data;
  if (!!r.key === !!r.keys)
    throw new GitHubConfigError(`LSS_GATE_RULES ${name(raw)}: give key or keys (a pool), one of them`);
  if (r.limit !== undefined && r.mode !== "shared")
    throw new GitHubConfigError(`LSS_GATE_RULES ${name(raw)}: limit is for mode "shared"`);
  return {
    repositoryId: r.repository_id,
    environment: r.environment,
    namespace: r.namespace,
    keys: r.keys ?? [r.key as string],
    mode: r.mode,
    limit: r.limit ?? (r.mode === "shared" ? MAX_HOLDERS : 1),
    maxHoldMs: r.max_hold_minutes * 60_000,
  };
}

/** A rules variable's text as a JSON array, or the error naming the variable. */
function jsonArrayOf(variable: string, text: string): unknown[] {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new GitHubConfigError(`${variable} is not JSON: ${(err as Error).message}`);
  }
  if (!Array.isArray(raw)) throw new GitHubConfigError(`${variable} must be a JSON array of rules`);
  return raw;
}

export function parseGateRules(text: string): GateRule[] {
  const raw = jsonArrayOf("LSS_GATE_RULES", text);
  const rules = raw.map(ruleOf);
  const seen = new Set<string>();
  for (const [i, r] of rules.entries()) {
    const id = `${r.repositoryId}/${r.environment.toLowerCase()}`; // GitHub's names ignore case
    if (seen.has(id))
      throw new GitHubConfigError(
        `LSS_GATE_RULES rule ${i + 1}: repository ${r.repositoryId}'s environment ${r.environment} has a rule already`,
      );
    seen.add(id);
  }
  return rules;
}

const freezeSchema = z
  .object({
    repository_id: z.number().int().positive(),
    repository: z.string().max(256).optional(),
    branch: z
      .string()
      .min(1)
      .max(255)
      .regex(
        /^(?!refs\/)[^\s~^:?*[\\]+$/,
        "must be a branch name (main, release/1.x), not a ref or a pattern",
      ),
    namespace,
    key,
  })
  .strict();

export function parseFreezeRules(text: string): FreezeRule[] {
  const raw = jsonArrayOf("LSS_FREEZE_RULES", text);
  const seen = new Set<string>();
  return raw.map((r, i) => {
    const parsed = freezeSchema.safeParse(r);
    const o = (r ?? {}) as { repository?: unknown; repository_id?: unknown; branch?: unknown };
    const name = `rule ${i + 1} (${String(o.repository ?? o.repository_id ?? "?")}, branch ${String(o.branch ?? "?")})`;
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new GitHubConfigError(
        `LSS_FREEZE_RULES ${name}: ${issue?.path.join(".") || "rule"} ${issue?.message}`,
      );
    }
    const { repository_id: repositoryId, branch, namespace, key } = parsed.data;
    if (seen.has(`${repositoryId}/${branch}`))
      throw new GitHubConfigError(`LSS_FREEZE_RULES ${name}: that branch has a freeze already`);
    seen.add(`${repositoryId}/${branch}`);
    return { repositoryId, branch, namespace, key };
  });
}

/** The App's configuration, or null when none of its variables is set. */
export function githubAppConfig(e: GitHubEnv): GitHubAppConfig | null {
  const set = (Object.keys(githubSchema) as Array<keyof GitHubEnv>).filter((n) => e[n] !== undefined);
  const optional = new Set<string>(["LSS_GITHUB_API_URL", "LSS_GITHUB_TICK_MS", "CRON_SECRET"]);
  if (set.every((n) => optional.has(n))) return null;
  const required = ["LSS_GITHUB_APP_ID", "LSS_GITHUB_APP_PRIVATE_KEY", "LSS_GITHUB_WEBHOOK_SECRET"] as const;
  const missing = required.filter((n) => e[n] === undefined);
  if (missing.length)
    throw new GitHubConfigError(`the GitHub App needs ${required.join(", ")}: ${missing.join(", ")} not set`);
  // Environments pass a PEM with its line breaks as "\n" more often than not.
  const pem = (e.LSS_GITHUB_APP_PRIVATE_KEY as string).replace(/\\n/g, "\n").trim();
  if (!PEM.test(pem))
    throw new GitHubConfigError(
      "LSS_GITHUB_APP_PRIVATE_KEY must be the App's private key, PEM (-----BEGIN RSA PRIVATE KEY----- …)",
    );
  return {
    appId: e.LSS_GITHUB_APP_ID as string,
    privateKeyPem: pem,
    webhookSecret: e.LSS_GITHUB_WEBHOOK_SECRET as string,
    apiUrl: (e.LSS_GITHUB_API_URL ?? "https://api.github.com").replace(/\/+$/, ""),
    rules: e.LSS_GATE_RULES ? parseGateRules(e.LSS_GATE_RULES) : [],
    freezes: e.LSS_FREEZE_RULES ? parseFreezeRules(e.LSS_FREEZE_RULES) : [],
    cronSecret: e.CRON_SECRET ?? null,
    tickMs: e.LSS_GITHUB_TICK_MS ?? 30_000,
  };
}
