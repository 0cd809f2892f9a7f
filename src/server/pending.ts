// Asynchronous work the core starts and does not wait for (a module's stanza
// routed to an offline user lands in storage, say): counted, so a stop can
// wait for it before storage closes.
export class PendingWork {
  private readonly running = new Set<Promise<unknown>>();

  /** Count `p` until it settles; it must not reject (catch first). */
  add(p: Promise<unknown>): void {
    this.running.add(p);
    const done = (): void => void this.running.delete(p);
    p.then(done, done);
  }

  /** Settles once nothing is running, work started meanwhile included. */
  async settled(): Promise<void> {
    while (this.running.size) await Promise.all([...this.running]);
  }
}

/** `p`, or after `ms` a warning and on without it (a stop must not hang on a stuck database). */
export async function within(p: Promise<void>, ms: number, onTimeout: () => void): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      onTimeout();
      resolve();
    }, ms);
  });
  try {
    await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}
