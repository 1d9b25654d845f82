/**
 * One HTTP contract: the paths of src/protocol/paths.ts are the app's routes, both ways (every
 * entry is in the OpenAPI document, every documented path is an entry), and pathTo builds URLs the
 * routes read back as they were meant, whatever a key holds.
 */
import { describe, expect, it } from "vitest";
import { createMemoryStore } from "../server/stores/memory.js";
import { PATHS, pathTo } from "../src/protocol/paths.js";
import { appOn } from "./support/app.js";

describe("PATHS", () => {
  it("is exactly the set of paths the OpenAPI document declares", async () => {
    const { call } = appOn(createMemoryStore());
    const doc = (await call("GET", "/openapi.json")).body as { paths: Record<string, unknown> };
    expect(Object.keys(doc.paths).sort()).toEqual([...new Set(Object.values(PATHS))].sort());
  });
});

describe("pathTo", () => {
  it("fills each parameter URL-encoded, and leaves out undefined query parameters", () => {
    expect(pathTo("acquire", { key: "qa/eu" })).toBe("/infra/locks/qa%2Feu/acquire");
    expect(pathTo("status", { key: "a b?c#d" }, { wait_ms: 500 })).toBe(
      "/infra/locks/a%20b%3Fc%23d?wait_ms=500",
    );
    expect(pathTo("list", {}, { prefix: undefined, limit: 5 })).toBe("/infra/locks?limit=5");
    expect(pathTo("list")).toBe("/infra/locks");
    expect(pathTo("unlockStateLock", { id: "abc" }, { k: "x", e: undefined })).toBe("/locks/abc/unlock?k=x");
  });

  it("names nothing a route cannot read back: odd keys round-trip through the app", async () => {
    const { call } = appOn(createMemoryStore());
    for (const key of [
      "qa/eu",
      "a b",
      "with?query",
      "hash#tag",
      "emoji-🔒",
      "percent%41",
      "dots.and-dashes_",
    ]) {
      const token = `t-${Buffer.from(key).toString("hex")}`;
      const granted = await call("POST", pathTo("acquire", { key }), { ttl_ms: 60_000, token });
      expect(granted.status, key).toBe(200);
      expect(granted.body.key, key).toBe(key);
      expect((await call("GET", pathTo("status", { key }))).body, key).toMatchObject({ key, locked: true });
      expect((await call("POST", pathTo("release", { key }), { token })).status, key).toBe(200);
    }
  });

  it("refuses a pattern's parameter left out, rather than send a path with a hole in it", () => {
    expect(() => pathTo("acquire", {} as { key: string })).toThrow("pathTo(acquire): no key");
  });
});
