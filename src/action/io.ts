/** What the action needs from the runner, as an interface so that tests can pass a fake. */
export interface ActionIO {
  info(message: string): void;
  /** A notice annotation: shown on the run's page, not a problem. */
  notice(message: string): void;
  warning(message: string): void;
  /** An error annotation that does not by itself fail the step. */
  error(message: string): void;
  setFailed(message: string): void;
  setOutput(name: string, value: string): void;
  saveState(name: string, value: string): void;
  getState(name: string): string;
  /** Mask a value in the logs. */
  setSecret(value: string): void;
  /** Append Markdown to the job summary. */
  summary(markdown: string): Promise<void>;
}
