/**
 * An in-process Redis keyspace: the commands the scripts and the Redis store use (strings, hashes,
 * sorted sets, lists, expiry, TIME, PUBLISH), with Redis's semantics and reply shapes as a script
 * sees them (a missing value is false, an integer a number, an array a list). It decides nothing
 * about locks: the memory store runs the same scripts over it as Redis does (local/transport.ts).
 * Strings are compared as Redis compares them, byte by byte (UTF-8), not by UTF-16 code units.
 */
type Entry =
  | { type: "string"; value: string; expiresAt: number | null }
  | { type: "hash"; value: Map<string, string>; expiresAt: number | null }
  | { type: "zset"; value: SortedSet; expiresAt: number | null }
  | { type: "list"; value: string[]; expiresAt: number | null };

/** What a command answers, as a script sees it. */
export type Reply = string | number | false | Reply[];

export class ReplyError extends Error {
  override name = "ReplyError";
}

const WRONGTYPE = () => new ReplyError("WRONGTYPE Operation against a key holding the wrong kind of value");
const syntax = (what: string) => new ReplyError(`ERR syntax error (${what})`);

// biome-ignore lint/suspicious/noControlCharactersInRegex: ASCII is every character up to 0x7f
const ascii = /^[\x00-\x7f]*$/;
/** Redis's order of strings: by their bytes. */
export function compareBytes(a: string, b: string): number {
  if (ascii.test(a) && ascii.test(b)) return a < b ? -1 : a > b ? 1 : 0;
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

/** Members by score, then by their bytes: kept in order as they are added, found by binary search. */
class SortedSet {
  readonly scores = new Map<string, number>();
  readonly order: Array<{ score: number; member: string }> = [];
  private static before(a: { score: number; member: string }, b: { score: number; member: string }) {
    return a.score < b.score || (a.score === b.score && compareBytes(a.member, b.member) < 0);
  }
  private indexOf(item: { score: number; member: string }): number {
    let lo = 0;
    let hi = this.order.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (SortedSet.before(this.order[mid] as { score: number; member: string }, item)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
  add(member: string, score: number): boolean {
    const had = this.remove(member);
    const item = { score, member };
    this.order.splice(this.indexOf(item), 0, item);
    this.scores.set(member, score);
    return !had;
  }
  remove(member: string): boolean {
    const score = this.scores.get(member);
    if (score === undefined) return false;
    this.order.splice(this.indexOf({ score, member }), 1);
    this.scores.delete(member);
    return true;
  }
  rank(member: string): number | null {
    const score = this.scores.get(member);
    return score === undefined ? null : this.indexOf({ score, member });
  }
}

/** ZRANGEBYSCORE's bounds: "-inf", "+inf", "(5" (exclusive), "5". */
function scoreBound(text: string, low: boolean): (score: number) => boolean {
  const open = text.startsWith("(");
  const raw = open ? text.slice(1) : text;
  const value = raw === "+inf" || raw === "inf" ? Infinity : raw === "-inf" ? -Infinity : Number(raw);
  if (Number.isNaN(value)) throw new ReplyError("ERR min or max is not a float");
  if (low) return open ? (s) => s > value : (s) => s >= value;
  return open ? (s) => s < value : (s) => s <= value;
}

/** ZRANGEBYLEX's bounds: "-", "+", "[a" (inclusive), "(a" (exclusive). */
function lexBound(text: string, low: boolean): (member: string) => boolean {
  if (text === "-") return () => low;
  if (text === "+") return () => !low;
  const value = text.slice(1);
  if (text.startsWith("["))
    return low ? (m) => compareBytes(m, value) >= 0 : (m) => compareBytes(m, value) <= 0;
  if (text.startsWith("("))
    return low ? (m) => compareBytes(m, value) > 0 : (m) => compareBytes(m, value) < 0;
  throw new ReplyError("ERR min or max not valid string range item");
}

/** LIMIT offset count, when given. */
function limited<T>(items: T[], args: string[], at: number): T[] {
  if (args[at]?.toUpperCase() !== "LIMIT") return items;
  const offset = Number(args[at + 1]);
  const count = Number(args[at + 2]);
  return items.slice(offset, count < 0 ? undefined : offset + count);
}

/** A rank range (start, stop, negatives from the end) of a list or a sorted set. */
function ranks<T>(items: T[], start: number, stop: number): T[] {
  const n = items.length;
  const from = start < 0 ? Math.max(0, n + start) : start;
  const to = stop < 0 ? n + stop : Math.min(stop, n - 1);
  return from > to ? [] : items.slice(from, to + 1);
}

const integer = (text: string | undefined) => {
  if (text === undefined || !/^-?\d+$/.test(text))
    throw new ReplyError("ERR value is not an integer or out of range");
  return Number(text);
};

export interface Keyspace {
  /** One command, as a script calls it; throws ReplyError as Redis answers an error. */
  command(name: string, args: string[]): Reply;
  /** The names of the keys that exist now (for tests of what the store keeps). */
  keys(): string[];
}

type Commands = Record<string, (args: string[]) => Reply>;

/** The entries, read as Redis reads them (an expired key does not exist), and made when written. */
function entries(clock: () => number) {
  const data = new Map<string, Entry>();
  let sinceSweep = 0;
  /** The entry of a key, as Redis sees it: an expired key does not exist. */
  const read = (key: string): Entry | undefined => {
    const e = data.get(key);
    if (e && e.expiresAt !== null && e.expiresAt <= clock()) {
      data.delete(key);
      return undefined;
    }
    return e;
  };
  const typed = <T extends Entry["type"]>(key: string, type: T) => {
    const e = read(key);
    if (e && e.type !== type) throw WRONGTYPE();
    return e as Extract<Entry, { type: T }> | undefined;
  };
  /** The entry of a key, made (empty) when there is none. */
  const ensure = <T extends Entry["type"]>(
    key: string,
    type: T,
    make: () => Extract<Entry, { type: T }>["value"],
  ) => {
    const e =
      typed(key, type) ??
      ({ type, value: make(), expiresAt: null } as unknown as Extract<Entry, { type: T }>);
    data.set(key, e);
    return e;
  };
  /** A hash, sorted set or list that is left empty goes, as in Redis. */
  const dropIfEmpty = (key: string, e: Entry) => {
    const size =
      e.type === "hash"
        ? e.value.size
        : e.type === "zset"
          ? e.value.scores.size
          : e.type === "list"
            ? e.value.length
            : 1;
    if (size === 0) data.delete(key);
  };
  /** Keys nobody reads again would stay: expired ones are swept now and then. */
  const sweep = () => {
    if (++sinceSweep < 4096) return;
    sinceSweep = 0;
    for (const key of [...data.keys()]) read(key);
  };

  return { data, clock, read, typed, ensure, dropIfEmpty, sweep };
}

type Entries = ReturnType<typeof entries>;

function stringCommands({ data, clock, read, typed }: Entries): Commands {
  return {
    PING: () => "PONG",
    TIME: () => {
      const ms = clock();
      return [String(Math.floor(ms / 1000)), String((ms % 1000) * 1000)];
    },
    GET: ([key = ""]) => typed(key, "string")?.value ?? false,
    SET: ([key = "", value = "", ...opts]) => {
      let expiresAt: number | null = null;
      let onlyIfAbsent = false;
      for (let i = 0; i < opts.length; i++) {
        const opt = opts[i]?.toUpperCase();
        if (opt === "PXAT") expiresAt = integer(opts[++i]);
        else if (opt === "PX") expiresAt = clock() + integer(opts[++i]);
        else if (opt === "NX") onlyIfAbsent = true;
        else throw syntax(`SET ${opt}`);
      }
      if (onlyIfAbsent && read(key)) return false;
      data.set(key, { type: "string", value, expiresAt });
      return "OK";
    },
    DEL: (keys) => keys.filter((key) => read(key) && data.delete(key)).length,
    EXISTS: (keys) => keys.filter((key) => read(key)).length,
    INCR: ([key = ""]) => {
      const e = typed(key, "string");
      const next = (e ? integer(e.value) : 0) + 1;
      data.set(key, { type: "string", value: String(next), expiresAt: e?.expiresAt ?? null });
      return next;
    },
    PEXPIREAT: ([key = "", at]) => {
      const e = read(key);
      if (!e) return 0;
      e.expiresAt = integer(at);
      return 1;
    },
    PEXPIRE: ([key = "", ms]) => {
      const e = read(key);
      if (!e) return 0;
      e.expiresAt = clock() + integer(ms);
      return 1;
    },
    PTTL: ([key = ""]) => {
      const e = read(key);
      return !e ? -2 : e.expiresAt === null ? -1 : e.expiresAt - clock();
    },
  };
}

function hashCommands({ typed, ensure, dropIfEmpty }: Entries): Commands {
  return {
    HSET: ([key = "", ...pairs]) => {
      const e = ensure(key, "hash", () => new Map());
      let added = 0;
      for (let i = 0; i + 1 < pairs.length; i += 2) {
        if (!e.value.has(pairs[i] as string)) added++;
        e.value.set(pairs[i] as string, pairs[i + 1] as string);
      }
      return added;
    },
    HGET: ([key = "", field = ""]) => typed(key, "hash")?.value.get(field) ?? false,
    HMGET: ([key = "", ...fields]) => {
      const e = typed(key, "hash");
      return fields.map((f) => e?.value.get(f) ?? false);
    },
    HGETALL: ([key = ""]) => [...(typed(key, "hash")?.value ?? [])].flat(),
    HVALS: ([key = ""]) => [...(typed(key, "hash")?.value.values() ?? [])],
    HLEN: ([key = ""]) => typed(key, "hash")?.value.size ?? 0,
    HDEL: ([key = "", ...fields]) => {
      const e = typed(key, "hash");
      if (!e) return 0;
      const removed = fields.filter((f) => e.value.delete(f)).length;
      dropIfEmpty(key, e);
      return removed;
    },
  };
}

function sortedSetCommands({ typed, ensure, dropIfEmpty }: Entries): Commands {
  return {
    ZADD: ([key = "", ...pairs]) => {
      const e = ensure(key, "zset", () => new SortedSet());
      let added = 0;
      for (let i = 0; i + 1 < pairs.length; i += 2) {
        const raw = pairs[i] as string;
        const score = raw === "+inf" ? Infinity : raw === "-inf" ? -Infinity : Number(raw);
        if (Number.isNaN(score)) throw new ReplyError("ERR value is not a valid float");
        if (e.value.add(pairs[i + 1] as string, score)) added++;
      }
      return added;
    },
    ZREM: ([key = "", ...members]) => {
      const e = typed(key, "zset");
      if (!e) return 0;
      const removed = members.filter((m) => e.value.remove(m)).length;
      dropIfEmpty(key, e);
      return removed;
    },
    ZCARD: ([key = ""]) => typed(key, "zset")?.value.scores.size ?? 0,
    ZRANK: ([key = "", member = ""]) => typed(key, "zset")?.value.rank(member) ?? false,
    ZSCORE: ([key = "", member = ""]) => {
      const score = typed(key, "zset")?.value.scores.get(member);
      return score === undefined ? false : String(score === Infinity ? "inf" : score);
    },
    ZRANGE: ([key = "", start, stop]) =>
      ranks(typed(key, "zset")?.value.order ?? [], integer(start), integer(stop)).map((i) => i.member),
    ZRANGEBYSCORE: (args) => {
      const [key = "", min = "", max = ""] = args;
      const low = scoreBound(min, true);
      const high = scoreBound(max, false);
      const items = (typed(key, "zset")?.value.order ?? []).filter((i) => low(i.score) && high(i.score));
      return limited(items, args, 3).map((i) => i.member);
    },
    ZRANGEBYLEX: (args) => {
      const [key = "", min = "", max = ""] = args;
      const low = lexBound(min, true);
      const high = lexBound(max, false);
      const items = (typed(key, "zset")?.value.order ?? []).filter((i) => low(i.member) && high(i.member));
      return limited(items, args, 3).map((i) => i.member);
    },
  };
}

function listCommands({ typed, ensure, dropIfEmpty }: Entries): Commands {
  return {
    LPUSH: ([key = "", ...values]) => {
      const e = ensure(key, "list", () => []);
      for (const v of values) e.value.unshift(v);
      return e.value.length;
    },
    LTRIM: ([key = "", start, stop]) => {
      const e = typed(key, "list");
      if (!e) return "OK";
      e.value = ranks(e.value, integer(start), integer(stop));
      dropIfEmpty(key, e);
      return "OK";
    },
    LRANGE: ([key = "", start, stop]) =>
      ranks(typed(key, "list")?.value ?? [], integer(start), integer(stop)),
  };
}

export function createKeyspace(
  clock: () => number,
  onPublish: (channel: string, message: string) => void,
): Keyspace {
  const kept = entries(clock);
  const commands: Commands = {
    ...stringCommands(kept),
    ...hashCommands(kept),
    ...sortedSetCommands(kept),
    ...listCommands(kept),
    PUBLISH: ([channel = "", message = ""]) => {
      onPublish(channel, message);
      return 0;
    },
  };
  return {
    command(name, args) {
      const run = commands[name.toUpperCase()];
      if (!run) throw new ReplyError(`ERR unknown command '${name}'`);
      kept.sweep();
      return run(args.map(String));
    },
    keys: () => [...kept.data.keys()].filter((key) => kept.read(key)),
  };
}
