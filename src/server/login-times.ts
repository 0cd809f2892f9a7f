// When each user last logged in, written in batches (one write per login would
// cost the login path a database round-trip); reads see the pending batch first.
import type { Logger } from 'pino';
import type { Storage } from '../storage/types.js';

export class LoginTimes {
  /** login times not yet written */
  private readonly pending = new Map<string, number>();
  /** the batches being written, one after the other (a later login never loses to an earlier one) */
  private writing: Promise<void> = Promise.resolve();

  constructor(private readonly core: { readonly storage: Storage; readonly log: Logger }) {}

  record(username: string, at = Date.now()): void {
    this.pending.set(username, at);
  }

  /** When a user last logged in (a login not yet written counts). */
  async lastLogin(username: string): Promise<number | undefined> {
    return this.pending.get(username) ?? (await this.core.storage.accounts.get(username))?.lastLogin;
  }

  /** Write the pending batch (every 5 s, and at stop); settles when every batch so far is written. */
  flush(): Promise<void> {
    if (this.pending.size) {
      const batch = [...this.pending].map(([username, at]) => ({ username, at }));
      this.pending.clear();
      this.writing = this.writing.then(() =>
        this.core.storage.accounts
          .recordLogins(batch)
          .catch((err: unknown) => this.core.log.error({ err }, 'recording login times failed')),
      );
    }
    return this.writing;
  }
}
