// The landing page of an invitation (XEP-0401 §4, XEP-0379 §3.3): what this is,
// which client to install, a button that opens the xmpp: URI in it, and a QR code
// of the page (a desktop visitor moves to a phone). Self-contained (inline CSS and
// SVG, no script, nothing fetched from elsewhere); the token is in the path, so the
// page is never cached and sends no referrer. The QR code is drawn by `qr`.
import encodeQR from 'qr';
import { escapeXML } from '../../src/api/index.js';

const CLIENTS: { platform: string; name: string; url: string; note?: string }[] = [
  { platform: 'Android', name: 'Conversations', url: 'https://f-droid.org/packages/eu.siacs.conversations/', note: 'opens the invitation itself' },
  { platform: 'iPhone and iPad', name: 'Monal', url: 'https://apps.apple.com/app/id317711500', note: 'opens the invitation itself' },
  { platform: 'iPhone and iPad', name: 'Siskin IM', url: 'https://apps.apple.com/app/siskin-im/id1153516838' },
  { platform: 'Windows and Linux', name: 'Gajim', url: 'https://gajim.org/download/' },
  { platform: 'Linux', name: 'Dino', url: 'https://dino.im/#download' },
  { platform: 'macOS', name: 'Monal', url: 'https://apps.apple.com/app/id1637078500' },
];

export interface PageContent {
  domain: string;
  /** who invites ('' for the server's administrators) */
  inviter: string;
  uri: string;
  pageUrl: string;
  expiresAt: number;
  /** an account (register) or a contact (befriend) invitation */
  kind: 'account' | 'contact';
}

const STYLE = `body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;color:#222;line-height:1.5}
h1{font-size:1.6rem}a.button{display:inline-block;background:#1a73e8;color:#fff;padding:.8rem 1.4rem;border-radius:.4rem;text-decoration:none;font-weight:600}
.qr{background:#fff;width:12rem;padding:.5rem;border:1px solid #ddd}code{word-break:break-all;background:#f4f4f4;padding:.1rem .3rem}
table{border-collapse:collapse}td{padding:.3rem .8rem .3rem 0;vertical-align:top}.small{color:#666;font-size:.9rem}`;

export function invitePage(c: PageContent): string {
  const e = escapeXML;
  const who = c.inviter ? `${e(c.inviter)}@${e(c.domain)}` : `the administrators of ${e(c.domain)}`;
  const what =
    c.kind === 'contact'
      ? `${who} invites you to chat with them on XMPP, the open standard for messaging.`
      : `You are invited to create an account on ${e(c.domain)}, a chat server of XMPP, the open standard for messaging.`;
  const qr = encodeQR(c.pageUrl, 'svg', { ecc: 'medium', border: 2, optimize: true });
  const rows = CLIENTS.map(
    (k) => `<tr><td>${e(k.platform)}</td><td><a href="${e(k.url)}">${e(k.name)}</a>${k.note ? ` <span class="small">(${e(k.note)})</span>` : ''}</td></tr>`,
  ).join('');
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="referrer" content="no-referrer"><link rel="alternate" href="${e(c.uri)}">
<title>Invitation to ${e(c.domain)}</title><style>${STYLE}</style></head>
<body><h1>You have been invited to ${e(c.domain)}</h1>
<p>${what}</p>
<h2>1. Install an app</h2>
<table>${rows}</table>
<h2>2. Open the invitation in it</h2>
<p><a class="button" id="accept" href="${e(c.uri)}">Accept the invitation</a></p>
<p class="small">Or copy this address into the app: <code id="uri">${e(c.uri)}</code></p>
<p class="small">Valid until <time id="expires" datetime="${new Date(c.expiresAt).toISOString()}">${new Date(c.expiresAt).toUTCString()}</time>.</p>
<h2>On another device?</h2>
<p>Scan this code with your phone to open this page there.</p>
<div class="qr" id="qr">${qr}</div>
</body></html>`;
}

export function invalidPage(domain: string): string {
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><meta name="referrer" content="no-referrer">
<title>Invitation not valid</title><style>${STYLE}</style></head>
<body><h1>This invitation is not valid</h1><p>It may have expired or been used already. Ask whoever invited you to ${escapeXML(domain)} for a new one.</p></body></html>`;
}
