/**
 * Each script reads its KEYS and ARGV by the names it declares, and nothing else: every `K.name`
 * and `A.name` its source reads is declared, every declared name is read, and the positions the
 * store fills (build) are the ones the script reads them from. A reply is read by name.
 */
import { describe, expect, it } from "vitest";
import { ACQUIRE } from "../server/stores/scripts/acquire.js";
import {
  type LuaScript,
  NAMESPACE_ARGS,
  NAMESPACE_KEYS,
  readReply,
} from "../server/stores/scripts/define.js";
import { HISTORY } from "../server/stores/scripts/history.js";
import { INSPECT } from "../server/stores/scripts/inspect.js";
import { LEAVE } from "../server/stores/scripts/leave.js";
import { LIST } from "../server/stores/scripts/list.js";
import { REGISTER } from "../server/stores/scripts/register.js";
import { RELEASE } from "../server/stores/scripts/release.js";
import { RENEW } from "../server/stores/scripts/renew.js";

const SCRIPTS: LuaScript[] = [ACQUIRE, RENEW, RELEASE, LEAVE, INSPECT, REGISTER, HISTORY, LIST] as never;

/** Names a Lua source reads from a table (`K.lock`…). */
const namesRead = (source: string, table: string) =>
  new Set([...source.matchAll(new RegExp(`\\b${table}\\.([A-Za-z_][A-Za-z0-9_]*)`, "g"))].map((m) => m[1]));

/** Where the generated preamble reads each name from: name → "KEYS[3]" (or an expression, per key). */
const positions = (source: string, table: "K" | "A") => {
  const line = source.split("\n").find((l) => l.startsWith(`local ${table} = {`)) ?? "";
  return Object.fromEntries(
    [...line.matchAll(/(\w+) = ((?:KEYS|ARGV)\[\d+\])/g)].map((m) => [m[1] as string, m[2] as string]),
  );
};

describe.each(SCRIPTS.map((s) => [s.name, s] as const))("the %s script", (_name, script) => {
  const keys = [...NAMESPACE_KEYS, ...script.spec.keys];
  const args = [...NAMESPACE_ARGS, ...script.spec.args];

  it("reads exactly the KEYS and ARGV it declares, by name", () => {
    expect([...namesRead(script.source, "K")].sort()).toEqual([...keys].sort());
    expect([...namesRead(script.source, "A")].sort()).toEqual([...args].sort());
    // The KEYS and ARGV tables are read by the generated preamble alone.
    const body = script.source.slice(script.source.indexOf("local function main()"));
    expect(body).not.toMatch(/\b(KEYS|ARGV)\[/);
    for (const name of [...(script.spec.each?.keys ?? []), ...(script.spec.each?.args ?? [])]) {
      expect(body, `per key: ${name}`).toMatch(new RegExp(`\\.${name}\\b`));
    }
  });

  it("gets each name at the position the store puts it", () => {
    const values = (names: readonly string[], tag: string) =>
      Object.fromEntries(names.map((n) => [n, `${tag}:${n}`]));
    const each = script.spec.each
      ? [1, 2].map((i) => ({
          ...values(script.spec.each!.keys, `k${i}`),
          ...values(script.spec.each!.args, `a${i}`),
        }))
      : undefined;
    const built = script.build({
      namespace: { keys: values(NAMESPACE_KEYS, "ns"), args: values(NAMESPACE_ARGS, "ns") } as never,
      keys: values(script.spec.keys, "key") as never,
      args: values(script.spec.args, "arg") as never,
      each: each as never,
    });
    const perKey = script.spec.each ? 2 : 0;
    expect(built.keys).toHaveLength(keys.length + perKey * (script.spec.each?.keys.length ?? 0));
    expect(built.args).toHaveLength(args.length + perKey * (script.spec.each?.args.length ?? 0));
    const at = (where: string, from: string[]) => from[Number(/\[(\d+)\]/.exec(where)?.[1]) - 1];
    for (const [name, where] of Object.entries(positions(script.source, "K"))) {
      expect(at(where, built.keys), name).toMatch(new RegExp(`:${name}$`));
    }
    for (const [name, where] of Object.entries(positions(script.source, "A"))) {
      expect(at(where, built.args), name).toMatch(new RegExp(`:${name}$`));
    }
  });
});

describe("a reply", () => {
  it("is read by name, its lists as arrays in order", () => {
    expect(
      readReply(["outcome", "ok", "now", 5, "row", "a", "more", "1", "row", "b"], ["row", "event"]),
    ).toEqual({
      outcome: "ok",
      now: 5,
      more: "1",
      row: ["a", "b"],
      event: [],
    });
  });

  it("as the acquire script's outcome, each field by its name", () => {
    const raw = [
      "index",
      2,
      "outcome",
      "held",
      "now",
      10,
      "fence",
      "7",
      "since",
      3,
      "exp",
      40,
      "holder",
      "ci",
      "reason",
      "",
      "mode",
      "x",
      "position",
      1,
    ];
    expect(ACQUIRE.decode(raw)).toEqual({
      outcome: "held",
      now: 10,
      index: 1,
      position: 1,
      lease: {
        mode: "exclusive",
        fencingToken: 7,
        acquiredAt: 3,
        expiresAt: 40,
        holderId: "ci",
        reason: null,
      },
    });
  });
});
