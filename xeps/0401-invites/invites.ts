// Invitations (XEP-0401), shared by the module and `uzzap invite`: a token from a
// CSPRNG (144 bits, base64url), stored only as a hash; the URIs a client opens
// (XEP-0445 `?register;preauth=`, XEP-0379 `?roster;preauth=;ibr=y`) and the
// landing page's address.
import { createHash, randomBytes } from 'node:crypto';
import type { Storage, StoredInvite } from '../../src/api/index.js';

export const NS_PARS = 'urn:xmpp:pars:0';

/** the stored key of a token */
export const inviteId = (token: string): string => createHash('sha256').update(token).digest('base64url');

/** A well-formed token: what a client may send (anything else is not looked up). */
export const plausibleToken = (token: string | undefined): token is string => !!token && /^[A-Za-z0-9_-]{16,64}$/.test(token);

export interface InviteRequest {
  kind: 'account' | 'contact';
  inviter: string;
  username?: string;
  admin?: boolean;
  /** a contact invitation that also registers (default: account invitations do, contact ones not) */
  register?: boolean;
  uses?: number;
  /** seconds */
  ttl: number;
}

export async function createInvite(storage: Storage, r: InviteRequest, now = Date.now()): Promise<{ token: string; invite: StoredInvite }> {
  const token = randomBytes(18).toString('base64url');
  const invite: StoredInvite = {
    id: inviteId(token),
    kind: r.kind,
    inviter: r.inviter,
    username: r.username ?? '',
    admin: r.admin ?? false,
    register: r.register ?? r.kind === 'account',
    uses: r.uses ?? 1,
    createdAt: now,
    expiresAt: now + r.ttl * 1000,
  };
  await storage.invites.sweep(now);
  await storage.invites.create(invite);
  return { token, invite };
}

/**
 * The xmpp: URI of an invitation: a contact invitation names its inviter (XEP-0379,
 * `ibr=y` when it also lets the invitee register); an account invitation names the
 * server, or the one username it registers (XEP-0445).
 */
export function inviteUri(domain: string, invite: StoredInvite, token: string): string {
  // RFC 5122: a localpart is percent-encoded (UTF-8) in the URI
  if (invite.kind === 'contact')
    return `xmpp:${encodeURIComponent(invite.inviter)}@${domain}?roster;preauth=${token}${invite.register ? ';ibr=y' : ''}`;
  return `xmpp:${invite.username ? `${encodeURIComponent(invite.username)}@` : ''}${domain}?register;preauth=${token}`;
}

export const landingUrl = (base: string, token: string): string => `${base.replace(/\/+$/, '')}/invite/${token}`;

/** "7d", "12h", "30m", "2w" or seconds; undefined when it is none of these */
export function parseDuration(s: string): number | undefined {
  const m = /^(\d+)\s*([smhdw]?)$/.exec(s.trim());
  if (!m) return undefined;
  const n = Number(m[1]);
  const unit = { '': 1, s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 }[m[2] as '' | 's' | 'm' | 'h' | 'd' | 'w'];
  return n > 0 ? n * unit : undefined;
}
