/**
 * Redis's scripting, in process: the scripts run in a Lua VM (wasmoon: Lua 5.4 compiled to
 * WebAssembly, 64-bit integers) with `redis.call` and `redis.pcall` bound to a keyspace. Each
 * script is compiled once, as a function of (redis, KEYS, ARGV), and runs to its end within one
 * call: no other command comes between, as in Redis. What differs from Redis's Lua 5.1, and why it
 * does not matter to the scripts: `unpack` is `table.unpack` (made a global here); integers stay
 * integers (5.1 has only doubles, exact up to 2^53, past every number a script keeps); a float
 * prints as "5.0" (no script prints one: every division is floored).
 */
import { type LuaEngine, LuaFactory } from "wasmoon";
import { type Keyspace, type Reply, ReplyError } from "./keyspace.js";

type Compiled = (redis: unknown, keys: string[], args: string[]) => unknown;

let engine: Promise<LuaEngine> | undefined;

/** One VM for the process: scripts are functions of the keyspace they are given, and keep nothing. */
async function vm(): Promise<LuaEngine> {
  engine ??= new LuaFactory().createEngine({ injectObjects: false }).then(async (lua) => {
    await lua.doString("unpack = table.unpack");
    return lua;
  });
  return engine;
}

/** A Lua table of a script's reply, as Redis sends it: a list stops at its first nil. */
function toReply(value: unknown): Reply {
  if (typeof value === "number") return Math.trunc(value);
  if (typeof value === "string") return value;
  if (value === true) return 1;
  if (Array.isArray(value)) {
    const end = value.findIndex((v) => v === null || v === undefined || v === false);
    return (end < 0 ? value : value.slice(0, end)).map(toReply);
  }
  if (value && typeof value === "object" && "err" in value)
    throw new ReplyError(String((value as { err: unknown }).err));
  return false;
}

export interface LocalScripts {
  /** Run a script loaded before (by its sha1); throws NOSCRIPT otherwise, as Redis does. */
  evalsha(sha1: string, keys: string[], args: string[]): Promise<Reply>;
  /** Load and run a script's source. */
  eval(source: string, sha1: string, keys: string[], args: string[]): Promise<Reply>;
}

/** Every script compiled, by its sha1: one compilation a process, whatever the number of stores. */
const compiled = new Map<string, Compiled>();

export function localScripts(keyspace: Keyspace): LocalScripts {
  const loaded = new Set<string>();
  const redis = {
    call: (name: string, ...args: string[]) => keyspace.command(name, args),
    pcall: (name: string, ...args: string[]) => {
      try {
        return keyspace.command(name, args);
      } catch (err) {
        return { err: (err as Error).message };
      }
    },
  };
  const run = (script: Compiled, keys: string[], args: string[]) => {
    try {
      return toReply(script(redis, keys, args));
    } catch (err) {
      if (err instanceof ReplyError) throw err;
      throw new ReplyError(`ERR error running script: ${(err as Error).message}`);
    }
  };
  return {
    // This store's script cache (as a Redis's): EVAL loads a script into it, EVALSHA needs it there.
    async evalsha(sha1, keys, args) {
      const script = loaded.has(sha1) ? compiled.get(sha1) : undefined;
      if (!script) throw new ReplyError("NOSCRIPT No matching script. Please use EVAL.");
      return run(script, keys, args);
    },
    async eval(source, sha1, keys, args) {
      let script = compiled.get(sha1);
      if (!script) {
        const lua = await vm();
        script = (await lua.doString(`return function(redis, KEYS, ARGV)\n${source}\nend`)) as Compiled;
        compiled.set(sha1, script);
      }
      loaded.add(sha1);
      return run(script, keys, args);
    },
  };
}
