/**
 * Durations as people write them in workflows and crontabs: `30s`, `10m`, `1h`, or plain seconds.
 * Deliberately narrower than general parsers (no `1.5h`, no `10 minutes`, plain numbers are seconds,
 * never milliseconds), so that a typo is an error instead of a surprising value.
 */
const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const DURATION = /^(\d{1,9})\s*([smhd]?)$/;

/** Milliseconds, or null when the text is not a duration. */
export function parseDuration(text: string): number | null {
  const match = DURATION.exec(text.trim());
  if (!match) return null;
  const unit = (match[2] || "s") as keyof typeof UNIT_MS;
  return Number(match[1]) * UNIT_MS[unit];
}

/** `1h 5m`, `42s`, `0s`: for log lines and summaries. */
export function formatDuration(ms: number): string {
  const total = Math.max(0, Math.round(ms / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  if (h) return m ? `${h}h ${m}m` : `${h}h`;
  if (m) return s ? `${m}m ${s}s` : `${m}m`;
  return `${s}s`;
}
