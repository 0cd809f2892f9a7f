// Shared by the federation interop tests (s2s-prosody, s2s-ejabberd): a self-signed
// certificate for the peer's domain, waiting for its ports, the conversation an Uzzap
// user holds with the peer's slixmpp user (slixmpp_s2s.py) across the servers, and
// their meeting in a room on each server (slixmpp_s2s_muc.py).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import net from 'node:net';
import { join } from 'node:path';
import type { Element } from '@xmpp/xml';
import type { Server } from '../../src/server.js';
import { connect, expectStanza, iq, xml, type XmppClient } from '../helpers/clients.js';
import { runProbe } from './probe.js';

/** what slixmpp_s2s.py checks */
export const S2S_CHECKS = [
  'logged in to its own server',
  'the reply from the Uzzap user arrives',
  "the reply's sender is the Uzzap user's full JID",
  'the subscription is approved across servers',
  "the Uzzap user's presence follows the approval",
];

/** what slixmpp_s2s_muc.py checks */
export const S2S_MUC_CHECKS = [
  'logged in to its own server',
  "creates a room on its own server's MUC service",
  'the Uzzap user, invited, joins the room here',
  "the Uzzap user's groupchat message arrives from the room here",
  'an invitation from the Uzzap user to a room on Uzzap arrives',
  'joins the room on Uzzap',
  'sees the Uzzap user in the room on Uzzap',
  "the Uzzap user's groupchat message in the room on Uzzap arrives",
  'its own groupchat message in the room on Uzzap is reflected',
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

const MUC = 'http://jabber.org/protocol/muc';
/** the probe's nick in both rooms (slixmpp_s2s_muc.py) */
const PEER_NICK = 'beta-user';

const statusCodes = (s: Element): string[] =>
  s
    .getChild('x', `${MUC}#user`)
    ?.getChildren('status')
    .map((st) => String(st.attrs.code)) ?? [];

/**
 * alice (online, as converse() left her) and the peer's user `remote` meet in two
 * rooms: `remoteRoom` on the peer's MUC service, which the remote user creates and
 * invites alice to (a mediated invitation: from the room's domain), and `localRoom` on
 * Uzzap's (conference.uzzap.test), which alice creates and invites the remote user to.
 * In each, alice and the remote user exchange a groupchat message. Returns the probe's
 * output and the remote user's messages as alice got them, from each room.
 */
export async function meetInRooms(
  alice: XmppClient,
  remote: { jid: string; password: string; host: string; c2s: number },
  remoteRoom: string,
  localRoom: string,
): Promise<{ output: string; fromRemoteRoom: Element; fromLocalRoom: Element }> {
  const probe = runProbe(
    'slixmpp_s2s_muc.py',
    [remote.jid, remote.password, remote.host, String(remote.c2s), 'alice@uzzap.test', remoteRoom, localRoom],
    90_000,
  );
  probe.catch(() => undefined);
  const selfIn = (room: string, code?: string): Promise<Element> =>
    expectStanza(
      alice,
      (s) =>
        s.is('presence') &&
        s.attrs.from === `${room}/alice` &&
        s.attrs.type === undefined &&
        statusCodes(s).includes('110') &&
        (code === undefined || statusCodes(s).includes(code)),
      30_000,
      `alice's self-presence in ${room}`,
    );
  const groupchat = (room: string, body: string): Promise<Element> =>
    expectStanza(
      alice,
      (s) => s.is('message') && s.attrs.type === 'groupchat' && s.attrs.from === `${room}/${PEER_NICK}` && s.getChildText('body') === body,
      30_000,
      `"${body}" in ${room}`,
    );

  // the peer's room: its invitation (from the room), join, a message each way
  await expectStanza(
    alice,
    (s) => s.is('message') && s.attrs.from === remoteRoom && !!s.getChild('x', `${MUC}#user`)?.getChild('invite'),
    40_000,
    `an invitation to ${remoteRoom}`,
  );
  await alice.send(xml('presence', { to: `${remoteRoom}/alice` }, xml('x', { xmlns: MUC }, xml('history', { maxstanzas: '0' }))));
  await selfIn(remoteRoom);
  await alice.send(xml('message', { to: remoteRoom, type: 'groupchat' }, xml('body', {}, 'hello room from uzzap')));
  const fromRemoteRoom = await groupchat(remoteRoom, 'hello room from beta');

  // Uzzap's room: alice creates it (201, locked until configured: an instant room), invites, chats
  await alice.send(xml('presence', { to: `${localRoom}/alice` }, xml('x', { xmlns: MUC })));
  await selfIn(localRoom, '201');
  const made = await iq(
    alice,
    xml(
      'iq',
      { type: 'set', to: localRoom },
      xml('query', { xmlns: `${MUC}#owner` }, xml('x', { xmlns: 'jabber:x:data', type: 'submit' })),
    ),
    10_000,
  );
  assert.equal(made.attrs.type, 'result', made.toString());
  await alice.send(
    xml(
      'message',
      { to: localRoom },
      xml('x', { xmlns: `${MUC}#user` }, xml('invite', { to: remote.jid }, xml('reason', {}, 'across servers'))),
    ),
  );
  await expectStanza(
    alice,
    (s) => s.is('presence') && s.attrs.from === `${localRoom}/${PEER_NICK}` && s.attrs.type === undefined,
    40_000,
    `${PEER_NICK} arriving in ${localRoom}`,
  );
  await alice.send(xml('message', { to: localRoom, type: 'groupchat' }, xml('body', {}, 'hello from the room on uzzap')));
  const fromLocalRoom = await groupchat(localRoom, 'hello uzzap room from beta');
  return { output: await probe, fromRemoteRoom, fromLocalRoom };
}
