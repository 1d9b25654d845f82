/**
 * The action's inputs: parseInputs(env, run?) turns the runner's INPUT_* variables into one typed
 * object, or throws an InputError that names the input and says the fix. Also the duration syntax
 * the inputs share (parseDuration / formatDuration).
 */
import { describe, expect, it } from "vitest";
import {
  defaultHolder,
  InputError,
  type Inputs,
  parseInputs,
  type RunContext,
} from "../src/action/inputs.js";
import { formatDuration, parseDuration } from "../src/protocol/durations.js";

type Env = Record<string, string | undefined>;

/** Inputs as a workflow's `with:` block: { "lease-token": "x" } → { "INPUT_LEASE-TOKEN": "x" }. */
function withInputs(inputs: Record<string, string | undefined>): Env {
  const env: Env = {};
  for (const [name, value] of Object.entries(inputs)) {
    if (value !== undefined) env[`INPUT_${name.toUpperCase()}`] = value;
  }
  return env;
}

const ACQUIRE = { mode: "acquire", url: "https://lss.example.com", token: "api-token", key: "qa-env" };
const WAIT_LOCK = { mode: "wait", url: "https://lss.example.com", "lock-id": "abc_123-x" };
const RELEASE = { ...ACQUIRE, mode: "release", "lease-token": "team-secret" };

const RUN: RunContext = {
  repository: "owner/repo",
  workflow: "E2E",
  job: "e2e",
  runUrl: "https://github.com/owner/repo/actions/runs/1234567890",
};

/** The InputError parseInputs throws for these inputs (fails the test when it throws none). */
function inputError(inputs: Record<string, string | undefined>): InputError {
  try {
    parseInputs(withInputs(inputs), RUN);
  } catch (err) {
    expect(err).toBeInstanceOf(InputError);
    return err as InputError;
  }
  throw new Error(`parseInputs accepted ${JSON.stringify(inputs)}`);
}

const parse = (inputs: Record<string, string | undefined>) => parseInputs(withInputs(inputs), RUN);

/** The inputs of the mode the test expects (fails the test on another). */
function ofMode<M extends Inputs["mode"]>(mode: M, inputs: Inputs): Extract<Inputs, { mode: M }> {
  expect(inputs.mode).toBe(mode);
  return inputs as Extract<Inputs, { mode: M }>;
}
const parseAcquire = (inputs: Record<string, string | undefined>) => ofMode("acquire", parse(inputs));

describe("parseDuration / formatDuration", () => {
  it.each([
    ["30s", 30_000],
    ["10m", 600_000],
    ["1h", 3_600_000],
    ["90", 90_000],
    ["2d", 172_800_000],
    ["0", 0],
    [" 10m ", 600_000],
  ])("parseDuration(%j) = %i ms", (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each(["10x", "1.5h", "-5", "", "10 minutes", "m", "1h30m", "5ms"])(
    "parseDuration(%j) is null",
    (text) => {
      expect(parseDuration(text)).toBeNull();
    },
  );

  it.each([
    [0, "0s"],
    [-5000, "0s"],
    [42_000, "42s"],
    [90_000, "1m 30s"],
    [600_000, "10m"],
    [3_600_000, "1h"],
    [3_900_000, "1h 5m"],
    [1499, "1s"],
  ])("formatDuration(%i) = %j", (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });
});

describe("parseInputs: reading the runner's inputs", () => {
  it("reads INPUT_<NAME> upper-cased with hyphens kept (INPUT_LEASE-TOKEN), as @actions/core does", () => {
    const env: Env = {
      INPUT_MODE: "release",
      INPUT_URL: "https://lss.example.com",
      INPUT_TOKEN: "api-token",
      INPUT_KEY: "qa-env",
      "INPUT_LEASE-TOKEN": "team-secret",
      // Not the names @actions/core reads: ignored.
      INPUT_LEASE_TOKEN: "wrong-underscore",
      "input_lease-token": "wrong-case",
    };
    const inputs = ofMode("release", parseInputs(env, RUN));
    expect(inputs.how).toEqual({ token: "team-secret" });
  });

  it("trims every input", () => {
    const inputs = parseInputs(
      {
        INPUT_MODE: "  acquire\n",
        INPUT_URL: " https://lss.example.com ",
        INPUT_TOKEN: "\tapi-token ",
        INPUT_KEY: " qa-env ",
        INPUT_TTL: " 30s ",
        INPUT_HOLDER: " me ",
        INPUT_REASON: " E2E suite ",
        "INPUT_RELEASE-AT-END": " false ",
      },
      RUN,
    );
    expect(inputs).toMatchObject({
      mode: "acquire",
      url: "https://lss.example.com",
      auth: { kind: "token", token: "api-token" },
      target: { kind: "key", key: "qa-env" },
      ttlMs: 30_000,
      holder: "me",
      reason: "E2E suite",
      releaseAtEnd: false,
    });
  });

  it("gives the documented defaults (ttl 60s, timeout 10m, poll-interval 5s, release at end)", () => {
    expect(parse(ACQUIRE)).toEqual({
      mode: "acquire",
      url: "https://lss.example.com",
      auth: { kind: "token", token: "api-token" },
      target: { kind: "key", key: "qa-env" },
      ttlMs: 60_000,
      holdMs: null,
      timeoutMs: 600_000,
      leaseToken: null,
      holder: "owner/repo · E2E (job e2e) · https://github.com/owner/repo/actions/runs/1234567890",
      reason: null,
      releaseAtEnd: true,
      pollMs: 5000,
      shared: false,
      limit: null,
      ifHeld: "wait",
      priority: 0,
      supersede: null,
      ifSuperseded: "skip",
    });
  });

  it.each(["ttl", "timeout", "poll-interval"])(
    "an empty or blank %s is unset (the runner passes '' for it)",
    (name) => {
      expect(parse({ ...ACQUIRE, [name]: "" })).toEqual(parse(ACQUIRE));
      expect(parse({ ...ACQUIRE, [name]: "   " })).toEqual(parse(ACQUIRE));
    },
  );
});

describe("parseInputs: priority", () => {
  it.each([
    ["10", 10],
    ["-100", -100],
    ["+5", 5],
    ["100", 100],
  ])("reads %s", (text, value) => {
    expect(parseAcquire({ ...ACQUIRE, priority: text }).priority).toBe(value);
  });
  it.each([
    ["101", "Input 'priority' must be a whole number from -100 to 100 (got '101')"],
    ["-101", "Input 'priority' must be a whole number from -100 to 100 (got '-101')"],
    ["1.5", "Input 'priority' must be a whole number from -100 to 100 (got '1.5')"],
    ["high", "Input 'priority' must be a whole number from -100 to 100 (got 'high')"],
  ])("rejects %s", (text, message) => {
    expect(inputError({ ...ACQUIRE, priority: text }).message).toBe(message);
  });
  it("works with mode acquire only", () => {
    expect(inputError({ ...ACQUIRE, mode: "wait", priority: "5" }).message).toBe(
      "Input 'priority' works with mode: acquire only",
    );
  });
});

describe("parseInputs: supersede and if-superseded", () => {
  it("reads a group, and if-superseded skip (the default) or fail", () => {
    expect(parseAcquire({ ...ACQUIRE, supersede: "deploy/refs/heads/main" })).toMatchObject({
      supersede: "deploy/refs/heads/main",
      ifSuperseded: "skip",
    });
    expect(parseAcquire({ ...ACQUIRE, supersede: "d", "if-superseded": "fail" }).ifSuperseded).toBe("fail");
  });
  it.each([
    [{ supersede: "g".repeat(129) }, "Input 'supersede' must be at most 128 characters"],
    [
      { supersede: "deploy\u202emain" },
      "Input 'supersede' must not contain invisible or bidirectional formatting characters (such as U+200B or U+202E)",
    ],
    [
      { supersede: "d", "if-superseded": "ignore" },
      "Input 'if-superseded' must be skip or fail (got 'ignore')",
    ],
    [{ supersede: "d", mode: "wait" }, "Input 'supersede' works with mode: acquire only"],
    [
      { supersede: "d", "if-held": "skip" },
      "Input 'supersede' needs 'if-held: wait': a single try joins no queue, so nothing can supersede it",
    ],
  ])("rejects %j", (inputs, message) => {
    expect(inputError({ ...ACQUIRE, ...inputs }).message).toBe(message);
  });
});

describe("parseInputs: if-held", () => {
  it("fail and skip try once, whatever the timeout; wait waits as long as it says", () => {
    expect(parseAcquire({ ...ACQUIRE, "if-held": "skip", timeout: "30m" })).toMatchObject({
      ifHeld: "skip",
      timeoutMs: 0,
    });
    expect(parseAcquire({ ...ACQUIRE, "if-held": "fail" })).toMatchObject({ ifHeld: "fail", timeoutMs: 0 });
    expect(parseAcquire({ ...ACQUIRE, "if-held": "wait", timeout: "30m" })).toMatchObject({
      ifHeld: "wait",
      timeoutMs: 1_800_000,
    });
  });

  it.each([
    [
      "an unknown value",
      { ...ACQUIRE, "if-held": "queue" },
      "Input 'if-held' must be wait, fail or skip (got 'queue')",
    ],
    [
      "capitals",
      { ...ACQUIRE, "if-held": "Skip" },
      "Input 'if-held' must be wait, fail or skip (got 'Skip')",
    ],
    [
      "skip with mode wait",
      { ...ACQUIRE, mode: "wait", "if-held": "skip" },
      "Input 'if-held: skip' works with mode: acquire only",
    ],
    [
      "fail with mode release",
      { ...RELEASE, "if-held": "fail" },
      "Input 'if-held: fail' works with mode: acquire only",
    ],
    [
      "skip with a timeout that is no duration",
      { ...ACQUIRE, "if-held": "skip", timeout: "soon" },
      "Input 'timeout' must be a duration",
    ],
  ])("rejects %s", (_label, inputs, message) => {
    expect(inputError(inputs).message).toContain(message);
  });
});

describe("parseInputs: mode, url, target, token", () => {
  it.each([
    [
      "mode missing",
      { ...ACQUIRE, mode: undefined },
      ["Input 'mode' is required", "acquire, wait or release"],
    ],
    ["mode blank", { ...ACQUIRE, mode: "  " }, ["Input 'mode' is required", "acquire, wait or release"]],
    [
      "mode unknown",
      { ...ACQUIRE, mode: "deploy" },
      ["Input 'mode' must be acquire, wait or release", "(got 'deploy')"],
    ],
    ["mode in capitals", { ...ACQUIRE, mode: "Acquire" }, ["Input 'mode' must be acquire, wait or release"]],
    ["url missing", { ...ACQUIRE, url: undefined }, ["Input 'url' is required", "https://lss.example.com"]],
    [
      "url ftp://x",
      { ...ACQUIRE, url: "ftp://x" },
      ["Input 'url' must be an http(s) URL", "(got 'ftp://x')"],
    ],
    [
      "url not a url",
      { ...ACQUIRE, url: "not a url" },
      ["Input 'url' must be an http(s) URL", "(got 'not a url')"],
    ],
    [
      "url http://",
      { ...ACQUIRE, url: "http://" },
      ["Input 'url' must be an http(s) URL", "(got 'http://')"],
    ],
    [
      "url without a scheme",
      { ...ACQUIRE, url: "lss.example.com" },
      ["Input 'url' must be an http(s) URL such as https://lss.example.com"],
    ],
    ["key missing, no lock-id", { ...ACQUIRE, key: undefined }, ["Input 'key' is required", "e.g. qa-env"]],
    [
      "key with ..",
      { ...ACQUIRE, key: "qa/../prod" },
      ["Input 'key'", 'must not contain control characters or ".."'],
    ],
    [
      "key with a control character",
      { ...ACQUIRE, key: "qa\u0001env" },
      ["Input 'key'", 'must not contain control characters or ".."'],
    ],
    [
      "key of 513 characters",
      { ...ACQUIRE, key: "k".repeat(513) },
      ["Input 'key'", "at most 512 characters"],
    ],
    [
      "key and lock-id together",
      { ...ACQUIRE, mode: "wait", "lock-id": "abc" },
      ["Inputs 'key' and 'lock-id' exclude each other", "give one"],
    ],
    [
      "lock-id with mode acquire",
      { ...WAIT_LOCK, mode: "acquire", token: "api-token" },
      ["Input 'lock-id'", "works with mode: wait only", "use 'key' to acquire"],
    ],
    [
      "lock-id with mode release",
      { ...WAIT_LOCK, mode: "release", token: "api-token", "lease-token": "t" },
      ["Input 'lock-id'", "works with mode: wait only", "use 'key' to release"],
    ],
    [
      "lock-id with a slash",
      { ...WAIT_LOCK, "lock-id": "abc/def" },
      ["Input 'lock-id'", "1–128 letters, digits, '_' or '-'"],
    ],
    [
      "lock-id of 129 characters",
      { ...WAIT_LOCK, "lock-id": "a".repeat(129) },
      ["Input 'lock-id'", "1–128 letters, digits, '_' or '-'"],
    ],
    [
      "token missing for a key (and no OIDC)",
      { ...ACQUIRE, token: undefined },
      ["Input 'token' is empty", "either pass 'token'", "add `permissions: id-token: write`"],
    ],
    [
      "token missing for wait on a key (and no OIDC)",
      { ...ACQUIRE, mode: "wait", token: undefined },
      ["Input 'token' is empty", "either pass 'token'", "add `permissions: id-token: write`"],
    ],
  ])("rejects %s", (_label, inputs, fragments) => {
    const message = inputError(inputs).message;
    for (const fragment of fragments) expect(message).toContain(fragment);
  });

  it("a lock-id with mode wait needs no token", () => {
    expect(parse(WAIT_LOCK)).toMatchObject({
      mode: "wait",
      auth: { kind: "none" },
      target: { kind: "state-lock", id: "abc_123-x" },
    });
  });

  it("a key of 512 characters, and an http URL with a port and a path, are accepted", () => {
    const inputs = parse({ ...ACQUIRE, url: "http://localhost:8787/lss", key: "k".repeat(512) });
    expect(inputs.url).toBe("http://localhost:8787/lss");
    expect(inputs.target).toEqual({ kind: "key", key: "k".repeat(512) });
  });
});

describe("parseInputs: the token, or the job's GitHub OIDC token (audience)", () => {
  /** What the runner sets in a job with `permissions: id-token: write`. */
  const OIDC_ENV: Env = {
    ACTIONS_ID_TOKEN_REQUEST_URL: "https://runner.example/idtoken?api-version=2.0",
    ACTIONS_ID_TOKEN_REQUEST_TOKEN: "request-token",
  };
  const parseWith = (inputs: Record<string, string | undefined>, env: Env = OIDC_ENV) =>
    parseInputs({ ...withInputs(inputs), ...env }, RUN);
  const errorWith = (inputs: Record<string, string | undefined>, env: Env = OIDC_ENV) => {
    try {
      parseWith(inputs, env);
    } catch (err) {
      expect(err).toBeInstanceOf(InputError);
      return (err as InputError).message;
    }
    throw new Error(`parseInputs accepted ${JSON.stringify(inputs)}`);
  };
  const NO_TOKEN = { ...ACQUIRE, token: undefined };
  const OIDC = {
    kind: "oidc",
    requestUrl: "https://runner.example/idtoken?api-version=2.0",
    requestToken: "request-token",
    audience: "https://lss.example.com",
  };

  it.each([
    ["acquire", NO_TOKEN],
    ["wait on a key", { ...NO_TOKEN, mode: "wait" }],
    ["release with a lease-token", { ...NO_TOKEN, mode: "release", "lease-token": "team-secret" }],
    ["release with force", { ...NO_TOKEN, mode: "release", force: "true" }],
    ["a pool", { ...NO_TOKEN, key: "qa-1, qa-2" }],
    ["wait on a lock-id", WAIT_LOCK],
  ])("without a token, %s uses the job's OIDC token when the runner offers one", (_what, inputs) => {
    expect(parseWith(inputs).auth).toEqual(OIDC);
  });

  it("an empty or blank token counts as none (a secret that is not set reads as '')", () => {
    expect(parseWith({ ...ACQUIRE, token: "" }).auth).toEqual(OIDC);
    expect(parseWith({ ...ACQUIRE, token: "  " }).auth).toEqual(OIDC);
  });

  it("a token wins over OIDC: the job's ID tokens are not asked for", () => {
    expect(parseWith(ACQUIRE).auth).toEqual({ kind: "token", token: "api-token" });
  });

  it.each([
    ["https://lss.example.com", "https://lss.example.com"],
    ["https://lss.example.com/", "https://lss.example.com"],
    ["https://lss.example.com/api/", "https://lss.example.com"],
    ["http://localhost:8787/lss", "http://localhost:8787"],
    ["HTTPS://LSS.Example.com", "https://lss.example.com"],
  ])("the audience defaults to the origin of url %s (the server's own default): %s", (url, audience) => {
    expect(parseWith({ ...NO_TOKEN, url }).auth).toMatchObject({ kind: "oidc", audience });
  });

  it("an audience input wins, trimmed", () => {
    expect(parseWith({ ...NO_TOKEN, audience: " lss://acme-ci " }).auth).toMatchObject({
      kind: "oidc",
      audience: "lss://acme-ci",
    });
    // As the runner passes an input the workflow leaves out: '' (no default in action.yml).
    expect(parseWith({ ...NO_TOKEN, audience: "" }).auth).toEqual(OIDC);
  });

  it.each([
    ["a space inside", "lss example"],
    ["a non-ASCII letter", "lss-é"],
    ["a control character", "lss\u0001x"],
    ["513 characters", "a".repeat(513)],
  ])("rejects an audience with %s, naming the input", (_what, audience) => {
    expect(errorWith({ ...NO_TOKEN, audience })).toContain(
      "Input 'audience' must be 1–512 visible ASCII characters without spaces",
    );
  });

  it("accepts an audience of 512 characters", () => {
    expect(parseWith({ ...NO_TOKEN, audience: "a".repeat(512) }).auth).toMatchObject({
      audience: "a".repeat(512),
    });
  });

  it("refuses token and audience together (the audience is for OIDC only)", () => {
    const message = errorWith({ ...ACQUIRE, audience: "https://lss.example.com" });
    expect(message).toContain("Inputs 'token' and 'audience' exclude each other");
    expect(message).not.toContain("api-token");
  });

  it.each([
    ["neither variable", {}],
    ["only the URL", { ACTIONS_ID_TOKEN_REQUEST_URL: "https://runner.example/idtoken" }],
    ["only the request token", { ACTIONS_ID_TOKEN_REQUEST_TOKEN: "request-token" }],
    ["both empty", { ACTIONS_ID_TOKEN_REQUEST_URL: "", ACTIONS_ID_TOKEN_REQUEST_TOKEN: "" }],
  ])(
    "without a token, and %s of the runner's ID-token request: says to pass token or add the permission",
    (_what, env) => {
      for (const inputs of [NO_TOKEN, { ...NO_TOKEN, mode: "release", "lease-token": "t" }]) {
        const message = errorWith(inputs, env);
        expect(message).toContain("Input 'token' is empty and this job cannot request a GitHub OIDC token");
        expect(message).toContain("either pass 'token'");
        expect(message).toContain("add `permissions: id-token: write`");
        expect(message).not.toContain("request-token");
      }
    },
  );

  it("a lock-id needs neither (an open server), unless an audience asks for OIDC", () => {
    expect(parseWith(WAIT_LOCK, {}).auth).toEqual({ kind: "none" });
    expect(errorWith({ ...WAIT_LOCK, audience: "https://lss.example.com" }, {})).toContain(
      "add `permissions: id-token: write`",
    );
  });

  it("bad inputs are reported before the missing credential is", () => {
    expect(errorWith({ ...NO_TOKEN, mode: "deploy" }, {})).toContain("Input 'mode' must be");
    expect(errorWith({ ...NO_TOKEN, key: undefined }, {})).toContain("Input 'key' is required");
  });
});

describe("parseInputs: an API token that cannot be a header", () => {
  it.each([
    ["a space inside", "lss_abc def"],
    ["a line break inside", "lss_abc\ndef-secret-part"],
    ["a control character", "lss_abc\u0007def"],
    ["a non-ASCII letter", "lss_abcdéf"],
  ])("%s: refused naming the input, never echoing the token", (_what, token) => {
    const err = inputError({ ...ACQUIRE, token });
    expect(err.message).toMatch(/Input 'token': token is not a valid header value/);
    const parts = token.split(String.fromCharCode(7)).flatMap((p) => p.split(/\s/));
    for (const part of parts) expect(err.message).not.toContain(part);
  });
});

describe("parseInputs: durations", () => {
  const DURATION_INPUTS = ["ttl", "timeout", "hold", "poll-interval"] as const;
  const BAD = ["10x", "1.5h", "-5", "10 minutes", "1h30m"];

  it.each(DURATION_INPUTS.flatMap((name) => BAD.map((text) => [name, text] as const)))(
    "rejects %s: %j, naming the input and the syntax",
    (name, text) => {
      expect(inputError({ ...ACQUIRE, [name]: text }).message).toBe(
        `Input '${name}' must be a duration such as 30s, 10m, 1h or a number of seconds (got '${text}')`,
      );
    },
  );

  it.each([
    ["ttl", "30s", "ttlMs", 30_000],
    ["ttl", "10m", "ttlMs", 600_000],
    ["ttl", "1h", "ttlMs", 3_600_000],
    ["ttl", "90", "ttlMs", 90_000],
    ["ttl", "1d", "ttlMs", 86_400_000],
    ["ttl", "5s", "ttlMs", 5000],
    ["timeout", "30s", "timeoutMs", 30_000],
    ["timeout", "90", "timeoutMs", 90_000],
    ["timeout", "2d", "timeoutMs", 172_800_000],
    ["timeout", "0", "timeoutMs", 0],
    ["timeout", "0s", "timeoutMs", 0],
    ["hold", "1h", "holdMs", 3_600_000],
    ["hold", "2d", "holdMs", 172_800_000],
    ["hold", "90", "holdMs", 90_000],
    ["poll-interval", "1s", "pollMs", 1000],
    ["poll-interval", "30s", "pollMs", 30_000],
    ["poll-interval", "10m", "pollMs", 600_000],
  ] as const)("accepts %s: %j as %s = %i", (name, text, field, ms) => {
    expect(parseAcquire({ ...ACQUIRE, [name]: text })[field]).toBe(ms);
  });

  it.each([
    ["ttl", "4s", "5s", "86400s"],
    ["ttl", "0", "5s", "86400s"],
    ["ttl", "2d", "5s", "86400s"],
    ["timeout", "8d", "0s", "604800s"],
    ["hold", "0", "1s", "604800s"],
    ["hold", "8d", "1s", "604800s"],
    ["poll-interval", "0", "1s", "600s"],
    ["poll-interval", "0s", "1s", "600s"],
    ["poll-interval", "11m", "1s", "600s"],
  ])("rejects %s: %j, out of bounds (%s to %s)", (name, text, min, max) => {
    expect(inputError({ ...ACQUIRE, [name]: text }).message).toBe(
      `Input '${name}' must be between ${min} and ${max} (got '${text}')`,
    );
  });
});

describe("parseInputs: hold, release, force, release-at-end", () => {
  it.each([
    [
      "hold with mode wait",
      { ...ACQUIRE, mode: "wait", hold: "1h" },
      "Input 'hold' works with mode: acquire only",
    ],
    ["hold with mode release", { ...RELEASE, hold: "1h" }, "Input 'hold' works with mode: acquire only"],
    [
      "release without lease-token or force",
      { ...RELEASE, "lease-token": undefined },
      "mode: release needs Input 'lease-token' (the token the lock was taken with), or 'force: true' with an admin token",
    ],
    [
      "release with lease-token and force",
      { ...RELEASE, force: "true" },
      "Inputs 'lease-token' and 'force' exclude each other: give one",
    ],
    ["force with mode acquire", { ...ACQUIRE, force: "true" }, "Input 'force' works with mode: release only"],
    [
      "force with mode wait",
      { ...ACQUIRE, mode: "wait", force: "true" },
      "Input 'force' works with mode: release only",
    ],
    ["force: maybe", { ...RELEASE, force: "maybe" }, "Input 'force' must be true or false (got 'maybe')"],
    [
      "release-at-end: maybe",
      { ...ACQUIRE, "release-at-end": "maybe" },
      "Input 'release-at-end' must be true or false (got 'maybe')",
    ],
    [
      "release-at-end: 1",
      { ...ACQUIRE, "release-at-end": "1" },
      "Input 'release-at-end' must be true or false (got '1')",
    ],
  ])("rejects %s", (_label, inputs, message) => {
    expect(inputError(inputs).message).toBe(message);
  });

  it.each([
    ["true", true],
    ["false", false],
    ["TRUE", true],
    ["False", false],
  ])("release-at-end: %j is %s", (text, value) => {
    expect(parseAcquire({ ...ACQUIRE, "release-at-end": text }).releaseAtEnd).toBe(value);
  });

  it("release-at-end defaults to true, to false with hold, and can be set true with hold", () => {
    expect(parseAcquire(ACQUIRE).releaseAtEnd).toBe(true);
    expect(parse({ ...ACQUIRE, hold: "2h" })).toMatchObject({ holdMs: 7_200_000, releaseAtEnd: false });
    expect(parseAcquire({ ...ACQUIRE, hold: "2h", "release-at-end": "true" }).releaseAtEnd).toBe(true);
  });

  it("release with a lease-token, or with force alone", () => {
    expect(parse(RELEASE)).toEqual({
      mode: "release",
      url: "https://lss.example.com",
      auth: { kind: "token", token: "api-token" },
      target: { kind: "key", key: "qa-env" },
      how: { token: "team-secret" },
    });
    expect(parse({ ...RELEASE, "lease-token": undefined, force: "true" })).toMatchObject({
      mode: "release",
      how: { force: true },
    });
  });

  it.each([
    ["lease-token of 257 characters", { ...ACQUIRE, "lease-token": "t".repeat(257) }, "Input 'lease-token'"],
    [
      "lease-token with a control character",
      { ...ACQUIRE, "lease-token": "a\u0007b" },
      "Input 'lease-token'",
    ],
  ])("rejects %s", (_label, inputs, fragment) => {
    expect(inputError(inputs).message).toContain(fragment);
  });
});

describe("parseInputs: holder and reason", () => {
  it("a holder of 256 characters is accepted, 257 rejected", () => {
    expect(parseAcquire({ ...ACQUIRE, holder: "h".repeat(256) }).holder).toBe("h".repeat(256));
    const message = inputError({ ...ACQUIRE, holder: "h".repeat(257) }).message;
    expect(message).toContain("Input 'holder'");
    expect(message).toContain("at most 256 characters");
  });

  it("a reason of 512 characters is accepted, 513 rejected", () => {
    expect(parseAcquire({ ...ACQUIRE, reason: "r".repeat(512) }).reason).toBe("r".repeat(512));
    const message = inputError({ ...ACQUIRE, reason: "r".repeat(513) }).message;
    expect(message).toContain("Input 'reason'");
    expect(message).toContain("at most 512 characters");
  });

  it("the default holder is built from the runner's GITHUB_* variables: repository, workflow, job and run link", () => {
    const inputs = ofMode(
      "acquire",
      parseInputs({
        ...withInputs(ACQUIRE),
        GITHUB_REPOSITORY: "acme/shop",
        GITHUB_WORKFLOW: "Nightly E2E",
        GITHUB_JOB: "e2e",
        GITHUB_RUN_ID: "987654321",
        GITHUB_SERVER_URL: "https://ghe.acme.com",
      }),
    );
    expect(inputs.holder).toBe(
      "acme/shop · Nightly E2E (job e2e) · https://ghe.acme.com/acme/shop/actions/runs/987654321",
    );
    expect(inputs.holder).toContain("acme/shop");
    expect(inputs.holder).toContain("Nightly E2E");
    expect(inputs.holder).toContain("https://ghe.acme.com/acme/shop/actions/runs/987654321");
  });

  it("the run link defaults to github.com; outside a runner the holder is still something", () => {
    const env = {
      ...withInputs(ACQUIRE),
      GITHUB_REPOSITORY: "acme/shop",
      GITHUB_WORKFLOW: "CI",
      GITHUB_RUN_ID: "5",
    };
    expect(ofMode("acquire", parseInputs(env)).holder).toBe(
      "acme/shop · CI · https://github.com/acme/shop/actions/runs/5",
    );
    expect(ofMode("acquire", parseInputs(withInputs(ACQUIRE))).holder).toBe("local · workflow");
  });

  it("an explicit holder wins over the default", () => {
    expect(parseAcquire({ ...ACQUIRE, holder: "nightly-cron" }).holder).toBe("nightly-cron");
  });

  // 182: cut to 256 characters whole, the link would end in …/runs/12345, another run's; 250: no link left.
  it.each([182, 250])(
    "a workflow name of %i characters shortens the default holder without cutting the run link",
    (n) => {
      const run: RunContext = { ...RUN, workflow: "W".repeat(n) };
      const holder = defaultHolder(run);
      expect(holder.length).toBeLessThanOrEqual(256);
      expect(holder.startsWith("owner/repo · ")).toBe(true);
      // A cut link (…/runs/12345) would point at another run: the link must stay whole.
      expect(holder).toContain(` · ${run.runUrl}`);
      expect(holder.endsWith(run.runUrl)).toBe(true);
    },
  );
});

describe("parseInputs: shared, limit and pools", () => {
  it("reads a pool from comma-separated keys, and shared and limit", () => {
    const pool = parse({ ...ACQUIRE, key: "qa-1, qa-2,qa-3" });
    expect(pool.target).toEqual({ kind: "pool", keys: ["qa-1", "qa-2", "qa-3"] });
    expect(parse({ ...ACQUIRE, shared: "true" })).toMatchObject({ shared: true, limit: null });
    expect(parse({ ...ACQUIRE, limit: "3" })).toMatchObject({ shared: true, limit: 3 });
    expect(parse(ACQUIRE)).toMatchObject({ shared: false, limit: null });
  });

  it.each([
    [
      "a pool with wait",
      { ...ACQUIRE, mode: "wait", key: "qa-1,qa-2" },
      /several keys \(a pool\): that works with mode: acquire only/,
    ],
    [
      "a key twice",
      { ...ACQUIRE, key: "qa-1,qa-1" },
      /Input 'key' must not repeat \("qa-1" is named twice\)/,
    ],
    ["an empty name", { ...ACQUIRE, key: "qa-1,,qa-2" }, /Input 'key'/],
    ["limit 0", { ...ACQUIRE, limit: "0" }, /Input 'limit' must be a whole number from 1 to 100 \(got '0'\)/],
    ["limit 101", { ...ACQUIRE, limit: "101" }, /Input 'limit' must be a whole number from 1 to 100/],
    ["limit three", { ...ACQUIRE, limit: "three" }, /Input 'limit' must be a whole number/],
    [
      "shared with wait",
      { ...ACQUIRE, mode: "wait", shared: "true" },
      /'shared' and 'limit' work with mode: acquire only/,
    ],
    ["shared maybe", { ...ACQUIRE, shared: "maybe" }, /Input 'shared' must be true or false/],
  ])("%s: refused naming the input", (_what, inputs, message) => {
    expect(inputError(inputs).message).toMatch(message);
  });
});
