/** Every name the action shares with the runner, in one place: inputs, outputs, saved state. */
export const Input = {
  mode: "mode",
  url: "url",
  token: "token",
  audience: "audience",
  key: "key",
  lockId: "lock-id",
  ttl: "ttl",
  timeout: "timeout",
  hold: "hold",
  leaseToken: "lease-token",
  holder: "holder",
  reason: "reason",
  releaseAtEnd: "release-at-end",
  force: "force",
  pollInterval: "poll-interval",
  shared: "shared",
  limit: "limit",
  ifHeld: "if-held",
  priority: "priority",
  supersede: "supersede",
  ifSuperseded: "if-superseded",
} as const;

/**
 * The inputs' defaults, as action.yml declares them (the runner passes them when a workflow leaves
 * an input out; parseInputs falls back on the same ones for a runner that does not).
 */
export const InputDefault = {
  ttl: "60s",
  timeout: "10m",
  force: "false",
  shared: "false",
  pollInterval: "5s",
  ifHeld: "wait",
  ifSuperseded: "skip",
} as const satisfies Partial<Record<keyof typeof Input, string>>;

/** The inputs every workflow must give. */
export const REQUIRED_INPUTS = [Input.mode, Input.url] as const;

export const Output = {
  acquired: "acquired",
  token: "token",
  fencingToken: "fencing-token",
  waitedSeconds: "waited-seconds",
  holder: "holder",
  expiresAt: "expires-at",
  /** The key acquired: of a pool, which one. */
  key: "key",
  /** 'true' when a newer run of the supersede group took this one's place. */
  superseded: "superseded",
} as const;

/** Saved by main for post (the runner hands them back as STATE_<name>). */
export const State = {
  /** The lease token main acquired (or was acquiring) with: saved BEFORE the first acquire. */
  leaseToken: "lease-token",
  /** "true" when the action chose the token (so a cancelled acquire may be released). */
  ownToken: "own-token",
  /** "pending" while acquiring, "held" once granted. */
  phase: "phase",
  renewerPid: "renewer-pid",
  /** Where the renewer reports "held" or "lost", for post to read. */
  renewerStatusFile: "renewer-status-file",
  acquiredAt: "acquired-at",
  /** The key acquired (of a pool: which one), for post to release. */
  key: "key",
  /** With OIDC: the holder as the server named it (from the job's verified claims). */
  holder: "holder",
} as const;
