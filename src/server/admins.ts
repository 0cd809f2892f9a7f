// Who administers the server: `admins` from the configuration, plus accounts
// flagged in storage (`uzzap user admin`, the admin command), re-read at reload.
import type { Config } from '../config/schema.js';
import type { Storage } from '../storage/types.js';
import { Jid } from '../jid.js';

export class AdminFlags {
  /** accounts flagged as admin (bare JIDs), besides config.admins */
  private readonly flagged = new Set<string>();

  constructor(private readonly core: { readonly config: Config; readonly storage: Storage }) {}

  /** Read the flags from storage; true when they differ from what was known. */
  async load(): Promise<boolean> {
    const domain = this.core.config.domain;
    const stored = new Set((await this.core.storage.accounts.admins()).map((u) => `${u}@${domain}`));
    if ([...stored].sort().join() === [...this.flagged].sort().join()) return false;
    this.flagged.clear();
    for (const b of stored) this.flagged.add(b);
    return true;
  }

  isAdmin(bare: string): boolean {
    return this.core.config.admins.includes(bare) || this.flagged.has(bare);
  }

  list(): string[] {
    return [...new Set([...this.core.config.admins, ...this.flagged])].sort();
  }

  async set(bare: string, admin: boolean): Promise<boolean> {
    const j = Jid.parse(bare);
    if (j.domain !== this.core.config.domain || !j.local) return false;
    if (!(await this.core.storage.accounts.setAdmin(j.local, admin))) return false;
    if (admin) this.flagged.add(j.bare);
    else this.flagged.delete(j.bare);
    return true;
  }

  /** A deleted account: a new one with the same name must not inherit admin rights. */
  forget(bare: string): void {
    this.flagged.delete(bare);
  }
}
