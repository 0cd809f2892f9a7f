// The tiny SQL surface both drivers implement. Queries use $1, $2 ... placeholders;
// the SQLite driver rewrites them to ?1, ?2 once per statement text.
export interface Sql {
  readonly dialect: 'sqlite' | 'postgres';
  query<T = Record<string, unknown>>(text: string, params?: unknown[]): Promise<T[]>;
  /** Run a statement; returns the number of affected rows. */
  exec(text: string, params?: unknown[]): Promise<number>;
  /** Several statements without parameters (migrations). */
  script(text: string): Promise<void>;
  transaction<T>(fn: (tx: Sql) => Promise<T>): Promise<T>;
  /**
   * One statement run for many rows in one transaction (bulk writes); returns rows changed.
   * The rows are `build(input)`: flat, one after the other, `width` parameters each.
   * SQLite's writer thread runs `build` itself, compiled from its source text, so `build`
   * must use nothing but its input and the globals, and `input` must survive a structured
   * clone (typed arrays travel as copies of their buffers, in one piece: no per-row
   * objects for either thread to collect). Buffers in `transfer` are moved to that
   * thread instead of copied: the caller must not use them afterwards. `after`:
   * statements without parameters run once after the rows, in the same transaction.
   */
  execBuilt<I>(
    text: string,
    build: (input: I) => unknown[],
    input: I,
    width: number,
    transfer?: ArrayBuffer[],
    after?: readonly string[],
  ): Promise<number>;
  close(): Promise<void>;
}
