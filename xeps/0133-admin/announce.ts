// XEP-0133 §4.23–§4.26: a one-time announcement to everyone online, and the
// message of the day, a standing announcement shown once per session at login.
import { x, type AdhocNote, type Element } from '../../src/api/index.js';
import { ask, text, type AdminCommands, type Stage, type State } from './commands.js';

const MOTD_KEY = { user: '', kind: 'server', key: 'motd' };

export function announceCommands({ m, host, command, announce }: AdminCommands): void {
  command(
    'announce',
    'Send Announcement to Online Users',
    [
      ask(() => [{ var: 'announcement', type: 'text-multi', label: 'Announcement', required: true }], {
        title: 'Making an Announcement',
        instructions: 'Fill out this form to make an announcement to all active users of this service.',
      }),
    ],
    async (st) => {
      const n = announce(text(st, 'announcement'));
      return { notes: [{ type: 'info', text: `announcement sent to ${n} session(s)` }] };
    },
  );

  let motd: string | undefined;
  let motdLoaded = false;
  const loaded = m.storage.userData.get(MOTD_KEY.user, MOTD_KEY.kind, MOTD_KEY.key).then(
    (v) => {
      motd = v;
      motdLoaded = true;
    },
    (err: unknown) => {
      m.log.error({ err }, 'reading the message of the day failed');
      motdLoaded = true;
    },
  );
  const motdStage = (title: string): Stage =>
    ask(() => [{ var: 'motd', type: 'text-multi', label: 'Message of the Day', required: true, values: motd ? motd.split('\n') : [] }], {
      title,
      instructions: 'Fill out this form to set the message of the day.',
    });
  const motdMessage = (to: string, body: string): Element =>
    x('message', { from: host, to, type: 'normal' }, x('subject', null, 'Message of the Day'), x('body', null, body));
  const setMotd = async (st: State): Promise<{ notes: AdhocNote[] }> => {
    const v = text(st, 'motd');
    await m.storage.userData.set(MOTD_KEY.user, MOTD_KEY.kind, MOTD_KEY.key, v);
    motd = v;
    // XEP-0133 §4.24: sent at once to users online now, and to the others when they log in
    let n = 0;
    for (const s of m.sessions.all()) {
      if (s.jid.domain !== host || !s.available) continue;
      s.ext.set('admin/motd', true);
      m.deliver(motdMessage(s.jid.full, v), [s]);
      n++;
    }
    return {
      notes: [{ type: 'info', text: `message of the day set; sent to ${n} online session(s), the others see it when they log in` }],
    };
  };
  command('set-motd', 'Set Message of the Day', [motdStage('Set Message of the Day')], setMotd);
  command('edit-motd', 'Edit Message of the Day', [motdStage('Edit Message of the Day')], setMotd);
  command('delete-motd', 'Delete Message of the Day', [], async () => {
    await m.storage.userData.remove(MOTD_KEY.user, MOTD_KEY.kind, MOTD_KEY.key);
    motd = undefined;
    return { notes: [{ type: 'info', text: 'message of the day deleted' }] };
  });
  // shown once per session, on its initial presence (a resumed session keeps its mark)
  // synchronous once the MOTD is loaded: every broadcast presence passes here
  m.hook('presence/broadcast', (ev) => {
    const s = ev.origin;
    if (!s || ev.stanza.attrs.type !== undefined || s.ext.has('admin/motd')) return false;
    s.ext.set('admin/motd', true);
    const show = (): false => {
      if (motd) m.deliver(motdMessage(s.jid.full, motd), [s]);
      return false;
    };
    return motdLoaded ? show() : loaded.then(show);
  });
}
