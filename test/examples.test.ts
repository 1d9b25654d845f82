/**
 * The workflows users copy: every lss-action step in `.github/examples/` and in the README's YAML
 * blocks names only inputs action.yml declares, and its inputs (with `${{ … }}` filled in as the
 * runner would) pass the action's own parseInputs — a step without `token` only in a job that may
 * request an OIDC token (`permissions: id-token: write`), as the runner then offers one. The README
 * shows each example file's steps.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { parseInputs } from "../src/action/inputs.js";
import { actionInputs } from "./support/runner.js";

const ROOT = join(import.meta.dirname, "..");
const EXAMPLES = join(ROOT, ".github", "examples");
const declared = actionInputs();

interface Step {
  uses?: string;
  with?: Record<string, unknown>;
}

/** Whether a workflow's or job's `permissions:` let its steps request an OIDC token. */
const grantsIdToken = (permissions: unknown) =>
  permissions === "write-all" ||
  (typeof permissions === "object" &&
    permissions !== null &&
    (permissions as Record<string, unknown>)["id-token"] === "write");

/** The steps whose job may request an OIDC token (a job's permissions replace the workflow's). */
const mayRequestIdToken = new WeakSet<Step>();

/** Every step using the action, anywhere in a workflow (or a fragment of one). */
function actionSteps(doc: unknown, idToken = false): Step[] {
  if (Array.isArray(doc)) return doc.flatMap((d) => actionSteps(d, idToken));
  if (!doc || typeof doc !== "object") return [];
  const step = doc as Step;
  if (typeof step.uses === "string" && /\/lss-action@/.test(step.uses)) {
    if (idToken) mayRequestIdToken.add(step);
    return [step];
  }
  const here = "permissions" in doc ? grantsIdToken((doc as { permissions: unknown }).permissions) : idToken;
  return Object.values(doc).flatMap((d) => actionSteps(d, here));
}

/** What an expression stands for, as a value the input accepts (the runner passes strings). */
function sample(input: string, value: unknown): string {
  const text = String(value);
  if (!text.includes("${{")) return text;
  if (input === "url") return "https://lss.example.com";
  if (input === "lock-id") return "k3y-Of-a-lock";
  if (["hold", "ttl", "timeout"].includes(input)) return "4h";
  return text.replace(/\$\{\{[^}]*\}\}/g, "sample-value-0123456789");
}

const workflows: Array<[string, string]> = [
  ...readdirSync(EXAMPLES)
    .filter((f) => f.endsWith(".yml"))
    .map((f): [string, string] => [`.github/examples/${f}`, readFileSync(join(EXAMPLES, f), "utf8")]),
  // Every workflow or step of the README and the reference that uses the action (a deploy gated by
  // the GitHub App needs none; the Prometheus scrape config is no workflow).
  ...[
    "README.md",
    ...readdirSync(join(ROOT, "docs"))
      .filter((f) => f.endsWith(".md"))
      .map((f) => `docs/${f}`),
  ]
    .flatMap((file) =>
      [...readFileSync(join(ROOT, file), "utf8").matchAll(/```yaml\n([\s\S]*?)```/g)].map(
        (m, i): [string, string] => [`${file} yaml block ${i + 1}`, m[1] as string],
      ),
    )
    .filter(([, text]) => /\buses:\s*\S*lss-action@/.test(text)),
];

describe.each(workflows)("%s", (_name, text) => {
  const steps = actionSteps(parseYaml(text));

  it("uses the action with inputs it declares, which parseInputs accepts", () => {
    expect(steps.length).toBeGreaterThan(0);
    for (const step of steps) {
      const inputs = step.with ?? {};
      expect(Object.keys(inputs).filter((name) => !declared.has(name))).toEqual([]);
      const env: Record<string, string> = {};
      for (const [name, fallback] of declared)
        if (fallback !== undefined) env[`INPUT_${name.toUpperCase()}`] = fallback;
      for (const [name, value] of Object.entries(inputs))
        env[`INPUT_${name.toUpperCase()}`] = sample(name, value);
      if (mayRequestIdToken.has(step)) {
        env.ACTIONS_ID_TOKEN_REQUEST_URL = "https://runner.example/idtoken?api-version=2.0";
        env.ACTIONS_ID_TOKEN_REQUEST_TOKEN = "sample-request-token";
      }
      expect(() => parseInputs(env)).not.toThrow();
    }
  });
});

/** Where the action is released: package.json's repository, at its major tag (v1 for 1.2.3). */
const RELEASED = (() => {
  const manifest = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8"));
  const repo = /github\.com\/([\w.-]+\/[\w.-]+?)(\.git)?$/.exec(manifest.repository.url)?.[1];
  return `${repo}@v${manifest.version.split(".")[0]}`;
})();

describe.each(workflows)("%s names the released action", (_name, text) => {
  it(`as uses: ${RELEASED}`, () => {
    const uses = [...text.matchAll(/\buses:\s*(\S*lss-action\S*)/g)].map((m) => m[1]);
    expect(uses.length).toBeGreaterThan(0);
    for (const u of uses) expect(u).toBe(RELEASED);
  });
});

describe("the README", () => {
  const readmeSteps = workflows
    .filter(([name]) => name.startsWith("README"))
    .flatMap(([, text]) => actionSteps(parseYaml(text)));

  it.each(workflows.filter(([name]) => name.startsWith(".github")))(
    "shows the steps of %s",
    (_name, text) => {
      for (const step of actionSteps(parseYaml(text)))
        expect(readmeSteps.some((shown) => JSON.stringify(shown.with) === JSON.stringify(step.with))).toBe(
          true,
        );
    },
  );
});
