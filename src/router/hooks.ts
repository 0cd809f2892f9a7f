// Typed hook bus: handlers run by priority (higher first); a handler returning
// true stops the chain. What a throwing handler means depends on the hook:
//   - fail open (most hooks): logged, the rest still run;
//   - fail closed (FAIL_CLOSED: security decisions): logged, and the run throws
//     HookFailedError, so the caller refuses instead of delivering what a broken
//     blocklist would have stopped.
// Runs synchronously until a handler returns a promise, so the common case
// (no hooks, or synchronous hooks) allocates no promise.
import type { Logger } from 'pino';
import type { Hooks } from '../api/module.js';

/** Hooks whose failure denies: a blocklist that cannot be read must not let the stanza through. */
export const FAIL_CLOSED: ReadonlySet<keyof Hooks> = new Set<keyof Hooks>(['route/user', 'privacy/blocks']);

/** A fail-closed hook's handler failed (thrown, or as the rejection of the run's promise). */
export class HookFailedError extends Error {
  constructor(
    readonly hook: keyof Hooks,
    readonly module: string,
    override readonly cause: unknown,
  ) {
    super(`hook ${hook} failed in module ${module}`);
    this.name = 'HookFailedError';
  }
}

interface Entry {
  fn: (...args: never[]) => unknown;
  priority: number;
  owner: string;
}

export class HookBus {
  private readonly map = new Map<keyof Hooks, Entry[]>();
  constructor(private readonly log: Logger) {}

  add<E extends keyof Hooks>(event: E, fn: Hooks[E], priority: number, owner: string): () => void {
    const list = [...(this.map.get(event) ?? [])];
    const entry: Entry = { fn: fn as Entry['fn'], priority, owner };
    list.push(entry);
    list.sort((a, b) => b.priority - a.priority);
    this.map.set(event, list);
    return () => {
      const cur = this.map.get(event);
      if (!cur) return;
      const next = cur.filter((e) => e !== entry);
      if (next.length) this.map.set(event, next);
      else this.map.delete(event);
    };
  }

  has(event: keyof Hooks): boolean {
    return this.map.has(event);
  }

  /**
   * Run the chain; true if a handler claimed the event. For a FAIL_CLOSED hook a
   * failing handler makes this throw (or reject with) HookFailedError.
   */
  run<E extends keyof Hooks>(event: E, ...args: Parameters<Hooks[E]>): boolean | Promise<boolean> {
    const list = this.map.get(event);
    if (!list) return false;
    return this.runFrom(list, 0, event, args);
  }

  private runFrom(list: Entry[], start: number, event: keyof Hooks, args: unknown[]): boolean | Promise<boolean> {
    for (let i = start; i < list.length; i++) {
      const e = list[i]!;
      let r: unknown;
      try {
        r = (e.fn as (...a: unknown[]) => unknown)(...args);
      } catch (err) {
        this.failed(event, e, err);
        continue;
      }
      if (r === true) return true;
      if (r instanceof Promise) {
        return r.then(
          (v) => (v === true ? true : this.runFrom(list, i + 1, event, args)),
          (err: unknown) => {
            this.failed(event, e, err);
            return this.runFrom(list, i + 1, event, args);
          },
        );
      }
    }
    return false;
  }

  /** Log a handler's failure; a fail-closed hook then stops with HookFailedError. */
  private failed(event: keyof Hooks, e: Entry, err: unknown): void {
    this.log.error({ err, hook: event, module: e.owner }, 'hook failed');
    if (FAIL_CLOSED.has(event)) throw new HookFailedError(event, e.owner, err);
  }
}
