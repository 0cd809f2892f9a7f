// Typed hook bus: handlers run by priority (higher first); a handler returning
// true stops the chain; a throwing handler is logged and the rest still run.
// Runs synchronously until a handler returns a promise, so the common case
// (no hooks, or synchronous hooks) allocates no promise.
import type { Logger } from 'pino';
import type { Hooks } from '../api/module.js';

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

  /** Run the chain; true if a handler claimed the event. */
  run<E extends keyof Hooks>(event: E, ...args: Parameters<Hooks[E]>): boolean | Promise<boolean> {
    const list = this.map.get(event);
    if (!list) return false;
    return this.runFrom(list, 0, event, args);
  }

  private runFrom(list: Entry[], start: number, event: string, args: unknown[]): boolean | Promise<boolean> {
    for (let i = start; i < list.length; i++) {
      const e = list[i]!;
      let r: unknown;
      try {
        r = (e.fn as (...a: unknown[]) => unknown)(...args);
      } catch (err) {
        this.log.error({ err, hook: event, module: e.owner }, 'hook failed');
        continue;
      }
      if (r === true) return true;
      if (r instanceof Promise) {
        return r.then(
          (v) => (v === true ? true : this.runFrom(list, i + 1, event, args)),
          (err: unknown) => {
            this.log.error({ err, hook: event, module: e.owner }, 'hook failed');
            return this.runFrom(list, i + 1, event, args);
          },
        );
      }
    }
    return false;
  }
}
