/**
 * The boundary between the store and its Lua: each script declares the names of its KEYS and ARGV
 * (and, for a pool, of the keys and args repeated per key). The store builds both arrays by name;
 * the script reads them by name (K.lock, A.token, and per key of a pool e.lock), from locals made
 * here; and it answers with named fields (out{...} in the prelude), which `readReply` turns back
 * into an object. Nothing on either side counts positions.
 */
import { sha1Hex } from "../../crypto.js";
import { PRELUDE } from "./prelude.js";

export type Names = readonly string[];
type Values<N extends Names> = { readonly [P in N[number]]: string };

/**
 * What every script gets first, for the prelude: the namespace's sets (its index by when records
 * go, its names in key order, the keys released last), and its settings.
 */
export const NAMESPACE_KEYS = ["index", "names", "ended"] as const;
export const NAMESPACE_ARGS = ["base", "maxRecords", "retention", "historyMax", "historyRetention"] as const;
export type NamespaceContext = {
  keys: Values<typeof NAMESPACE_KEYS>;
  args: Values<typeof NAMESPACE_ARGS>;
};

/** A script's reply: its named fields, each a string or a number; lists (repeated names) as arrays. */
export type Reply = Record<string, string | number | Array<string | number> | undefined>;

export interface ScriptSpec<K extends Names, A extends Names, EK extends Names, EA extends Names, R> {
  name: string;
  /** Its own KEYS and ARGV, after the namespace's. */
  keys: K;
  args: A;
  /** The KEYS and ARGV repeated for each key of a pool, after its own (none: not a pool). */
  each?: { keys: EK; args: EA };
  /**
   * Whether its answer may grant, renew or end a lease: such a write is confirmed only once
   * LSS_REDIS_MIN_REPLICAS replicas have it. (The reads' housekeeping writes need no such wait.)
   */
  writes?: boolean;
  /** Reply fields that may repeat: read as arrays. */
  lists?: Names;
  /** The script: a function body that returns out{...}; the prelude's functions are in scope. */
  body: string;
  decode(reply: Reply): R;
}

export interface Invocation<K extends Names, A extends Names, EK extends Names, EA extends Names> {
  namespace: NamespaceContext;
  keys: Values<K>;
  args: Values<A>;
  each?: ReadonlyArray<Values<EK> & Values<EA>>;
}

export interface LuaScript<
  K extends Names = Names,
  A extends Names = Names,
  EK extends Names = Names,
  EA extends Names = Names,
  R = unknown,
> {
  name: string;
  source: string;
  sha1: string;
  spec: ScriptSpec<K, A, EK, EA, R>;
  /** KEYS and ARGV in the order the script reads them. */
  build(call: Invocation<K, A, EK, EA>): { keys: string[]; args: string[] };
  /** The raw reply (a flat array of name, value…) as the outcome it means. */
  decode(raw: unknown): R;
}

/** `local K = {lock = KEYS[3], …}`, `local A = {…}` and, for a pool, `local EACH = {{lock = …}, …}`. */
function preamble(keys: Names, args: Names, each?: { keys: Names; args: Names }): string {
  const table = (name: string, names: Names, from: string) =>
    `local ${name} = {${names.map((n, i) => `${n} = ${from}[${i + 1}]`).join(", ")}}`;
  const lines = [table("K", keys, "KEYS"), table("A", args, "ARGV")];
  if (each) {
    const ek = each.keys.length;
    const ea = each.args.length;
    lines.push(
      "local EACH = {}",
      `for i = 1, (#KEYS - ${keys.length}) / ${ek} do`,
      `  local e = {i = i}`,
      ...each.keys.map((n, j) => `  e.${n} = KEYS[${keys.length} + (i - 1) * ${ek} + ${j + 1}]`),
      ...each.args.map((n, j) => `  e.${n} = ARGV[${args.length} + (i - 1) * ${ea} + ${j + 1}]`),
      "  EACH[i] = e",
      "end",
    );
  }
  return lines.join("\n");
}

/** A reply's fields by name: a flat array of name, value, name, value… (lists repeat their name). */
export function readReply(raw: unknown, lists: Names = []): Reply {
  const flat = Array.isArray(raw) ? raw : [];
  const reply: Reply = {};
  for (const name of lists) reply[name] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) {
    const name = String(flat[i]);
    const value = flat[i + 1] as string | number;
    const list = reply[name];
    if (Array.isArray(list) && lists.includes(name)) list.push(value);
    else reply[name] = value;
  }
  return reply;
}

export function defineScript<K extends Names, A extends Names, EK extends Names, EA extends Names, R>(
  spec: ScriptSpec<K, A, EK, EA, R>,
): LuaScript<K, A, EK, EA, R> {
  const keys = [...NAMESPACE_KEYS, ...spec.keys];
  const args = [...NAMESPACE_ARGS, ...spec.args];
  const source = [
    preamble(keys, args, spec.each),
    PRELUDE,
    `local function main()\n${spec.body.trim()}\nend`,
    // Its history events are appended and its changed records written as it ends.
    "local answer = main()\nflush()\nsave()\nreturn answer\n",
  ].join("\n");
  const pick = (names: Names, values: Record<string, string>) => names.map((n) => values[n] as string);
  return {
    name: spec.name,
    source,
    sha1: sha1Hex(source),
    spec,
    build(call) {
      const each = call.each ?? [];
      const perKey = (names: Names) => each.flatMap((e) => pick(names, e as Record<string, string>));
      return {
        keys: [
          ...pick(NAMESPACE_KEYS, call.namespace.keys),
          ...pick(spec.keys, call.keys),
          ...perKey(spec.each?.keys ?? []),
        ],
        args: [
          ...pick(NAMESPACE_ARGS, call.namespace.args),
          ...pick(spec.args, call.args),
          ...perKey(spec.each?.args ?? []),
        ],
      };
    },
    decode: (raw) => spec.decode(readReply(raw, spec.lists)),
  };
}
