/**
 * action.yml and the code agree: the inputs it declares are names.ts's Input, its defaults are
 * InputDefault, the required ones REQUIRED_INPUTS, its outputs Output; a runner that passes the
 * declared defaults and one that passes nothing get the same inputs; main and post are built.
 */
import { existsSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { parseInputs, type RunContext } from "../src/action/inputs.js";
import { Input, InputDefault, Output, REQUIRED_INPUTS } from "../src/action/names.js";

interface Spec {
  description?: string;
  required?: boolean;
  default?: unknown;
}
const action = parseYaml(readFileSync("action.yml", "utf8")) as {
  name: string;
  description: string;
  author?: string;
  branding: { icon: string; color: string };
  inputs: Record<string, Spec>;
  outputs: Record<string, Spec>;
  runs: { using: string; main: string; post: string; "post-if": string };
};

const RUN: RunContext = { repository: "o/r", workflow: "w", job: "j", runUrl: "" };
const asEnv = (inputs: Record<string, string>) =>
  Object.fromEntries(Object.entries(inputs).map(([name, value]) => [`INPUT_${name.toUpperCase()}`, value]));

/** The colours the Marketplace's branding takes, and a few of its (Feather) icons. */
const BRANDING_COLORS = ["white", "black", "yellow", "blue", "green", "orange", "red", "purple", "gray-dark"];
const FEATHER_ICONS = ["lock", "unlock", "shield", "key", "clock", "git-merge", "server"];

describe("action.yml", () => {
  it("is ready for the Marketplace: a name, a description of at most 125 characters, branding", () => {
    expect(action.name).toMatch(/^\S.{1,48}\S$/);
    expect(action.description.length).toBeGreaterThan(20);
    expect(action.description.length).toBeLessThanOrEqual(125);
    expect(action.author).toBeTruthy();
    expect(BRANDING_COLORS).toContain(action.branding.color);
    expect(FEATHER_ICONS).toContain(action.branding.icon);
  });

  it("declares exactly the inputs names.ts names, each with a description", () => {
    expect(Object.keys(action.inputs).sort()).toEqual(Object.values(Input).sort());
    for (const [name, spec] of Object.entries(action.inputs)) expect(spec.description, name).toBeTruthy();
  });

  it("declares InputDefault's defaults, and no other", () => {
    for (const [key, name] of Object.entries(Input)) {
      const declared = action.inputs[name]?.default;
      const coded = (InputDefault as Partial<Record<string, string>>)[key];
      expect(declared === undefined ? undefined : String(declared), name).toBe(coded);
    }
  });

  it("requires REQUIRED_INPUTS, and parseInputs says so when one is missing", () => {
    const required = Object.entries(action.inputs).filter(([, spec]) => spec.required === true);
    expect(required.map(([name]) => name).sort()).toEqual([...REQUIRED_INPUTS].sort());
    const given = { mode: "acquire", url: "https://lss.example.com", token: "t", key: "k" };
    for (const name of REQUIRED_INPUTS) {
      const { [name]: _left, ...rest } = given;
      expect(() => parseInputs(asEnv(rest), RUN), name).toThrow(`Input '${name}' is required`);
    }
  });

  it("declares exactly the outputs names.ts names", () => {
    expect(Object.keys(action.outputs).sort()).toEqual(Object.values(Output).sort());
    for (const [name, spec] of Object.entries(action.outputs)) expect(spec.description, name).toBeTruthy();
  });

  it("gives every mode the same inputs whether the runner passes the declared defaults or not", () => {
    const defaults = Object.fromEntries(
      Object.entries(action.inputs)
        .filter(([, spec]) => spec.default !== undefined)
        .map(([name, spec]) => [name, String(spec.default)]),
    );
    const url = "https://lss.example.com";
    const modes: Array<Record<string, string>> = [
      { mode: "acquire", url, token: "t", key: "qa-env" },
      { mode: "acquire", url, token: "t", key: "qa-1,qa-2" },
      { mode: "wait", url, token: "t", key: "qa-env" },
      { mode: "wait", url, "lock-id": "abc" },
      { mode: "release", url, token: "t", key: "qa-env", "lease-token": "team" },
    ];
    for (const given of modes) {
      const bare = parseInputs(asEnv(given), RUN);
      expect(parseInputs(asEnv({ ...defaults, ...given }), RUN), JSON.stringify(given)).toEqual(bare);
    }
    const acquired = parseInputs(asEnv({ mode: "acquire", url, token: "t", key: "k" }), RUN);
    expect(acquired).toMatchObject({ ttlMs: 60_000, timeoutMs: 600_000, pollMs: 5000, shared: false });
  });

  it("runs main and post, built, on node24, post always", () => {
    expect(action.runs).toEqual({
      using: "node24",
      main: "dist/main/index.js",
      post: "dist/post/index.js",
      "post-if": "always()",
    });
    expect(existsSync(action.runs.main)).toBe(true);
    expect(existsSync(action.runs.post)).toBe(true);
  });
});
