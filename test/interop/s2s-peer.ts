// Shared by the federation interop tests (s2s-prosody, s2s-ejabberd): a self-signed
// certificate for the peer's domain, waiting for its ports, and the conversation an
// Uzzap user holds with the peer's slixmpp user (slixmpp_s2s.py) across the servers.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import net from 'node:net';
import { join } from 'node:path';
import type { Server } from '../../src/server.js';
import { connect, expectStanza, xml, type XmppClient } from '../helpers/clients.js';
import { runProbe } from './probe.js';

/** what slixmpp_s2s.py checks */
export const S2S_CHECKS = [
  'logged in to its own server',
  'the reply from the Uzzap user arrives',
  "the reply's sender is the Uzzap user's full JID",
  'the subscription is approved across servers',
  "the Uzzap user's presence follows the approval",
];

/** a throw-away EC certificate for `domain` in dir: <domain>.key, <domain>.crt */
export function selfSignedCert(dir: string, domain: string): { key: string; crt: string } {
  const key = join(dir, `${domain}.key`);
  const crt = join(dir, `${domain}.crt`);
  const r = spawnSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2',
    '-subj', `/CN=${domain}`, '-addext', `subjectAltName=DNS:${domain}`, '-keyout', key, '-out', crt,
  ]); // prettier-ignore
  assert.equal(r.status, 0, String(r.stderr));
  return { key, crt };
}

/** wait until host:port accepts connections; `alive` throws when the server died meanwhile */
export async function listening(host: string, port: number, ms: number, alive: () => void = () => undefined): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    alive();
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host, port }, () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`nothing listens on ${host}:${port} after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * alice@uzzap.test (an @xmpp/client user of `server`, at `host`) and the peer's user
 * `remote` (slixmpp at peerHost:peerC2s): the remote user writes, alice answers, the
 * remote user asks for alice's presence, alice approves. Returns alice and the probe's output.
 */
export async function converse(
  server: Server,
  host: string,
  remote: { jid: string; password: string; host: string; c2s: number },
): Promise<{ alice: XmppClient; output: string }> {
  const alice = await connect(server, 'alice', { domain: 'uzzap.test', host, resource: 'desk', presence: false });
  await alice.send(xml('iq', { type: 'get', id: 'r0' }, xml('query', { xmlns: 'jabber:iq:roster' })));
  await alice.send(xml('presence', {}, xml('status', {}, 'federated')));
  const probe = runProbe('slixmpp_s2s.py', [remote.jid, remote.password, remote.host, String(remote.c2s), 'alice@uzzap.test'], 60_000);
  // a failure below must not leave the probe's rejection unhandled
  probe.catch(() => undefined);
  const hello = await expectStanza(alice, (s) => s.is('message') && s.getChildText('body') === 'hello from the other server', 30_000);
  await alice.send(xml('message', { to: hello.attrs.from, type: 'chat' }, xml('body', {}, 'hello back')));
  const ask = await expectStanza(alice, (s) => s.is('presence') && s.attrs.type === 'subscribe' && s.attrs.from === remote.jid, 20_000);
  await alice.send(xml('presence', { to: ask.attrs.from, type: 'subscribed' }));
  return { alice, output: await probe };
}
