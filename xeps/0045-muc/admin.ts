// Room administration for server admins, as ad-hoc commands at the server's
// JID (run through xeps/0050-adhoc): list rooms, destroy a room, kick an
// occupant. Plus the rooms/occupants gauges for /metrics and the statistics.
import { dataForm, tryJid, StanzaError, type FormField, type ModuleContext, type SubmittedFormApi } from '../../src/api/index.js';
import type { MucService } from './service.js';
import type { MucSettings } from './service.js';

const NS = 'urn:uzzap:admin';
type State = Record<string, string>;

export function roomAdmin(m: ModuleContext<MucSettings>, service: MucService): void {
  const occupants = (): number => {
    let n = 0;
    for (const r of service.rooms.values()) n += r.occupants.size;
    return n;
  };
  m.metrics.gauge('muc_rooms', 'Rooms on this node', () => service.rooms.size);
  m.metrics.gauge('muc_occupants', 'Room occupants on this node (one per nick)', occupants);
  m.admin.statistic('rooms', () => service.rooms.size);
  m.admin.statistic('occupants', occupants);

  const stage = (fields: FormField[], title: string) => ({
    form: () => dataForm('form', NS, fields, { title }),
    submit(form: SubmittedFormApi, st: State): void {
      for (const f of fields) {
        const v = form.text(f.var!)?.trim() ?? '';
        if (f.required && !v) throw new StanzaError('bad-request', `"${f.label}" is required`);
        st[f.var!] = v;
      }
    },
  });
  const roomOf = (s: string) => {
    const j = tryJid(s);
    const room = j && j.domain === service.domain && !j.resource ? service.rooms.get(j.local) : undefined;
    if (!room) throw new StanzaError('item-not-found', `no room ${s}`);
    return room;
  };

  m.command<State>({
    node: `${NS}#list-rooms`,
    name: 'List Rooms',
    stages: [],
    finish() {
      const rooms = [...service.rooms.values()].sort((a, b) => b.occupants.size - a.occupants.size || a.name.localeCompare(b.name));
      return {
        form: dataForm('result', `${NS}#list-rooms`, [
          { var: 'roomsnum', type: 'text-single', label: 'Rooms', value: rooms.length },
          { var: 'roomjids', type: 'jid-multi', label: 'Rooms, busiest first', values: rooms.map((r) => r.jid.bare) },
          {
            var: 'rooms',
            type: 'text-multi',
            label: 'Occupants per room',
            values: rooms.map(
              (r) =>
                `${r.jid.bare}: ${r.occupants.size} occupant(s)${r.config.persistent ? ', persistent' : ''}${r.config.public ? '' : ', hidden'}${r.config.name ? ` — ${r.config.name}` : ''}`,
            ),
          },
        ]),
      };
    },
  });

  m.command<State>({
    node: `${NS}#destroy-room`,
    name: 'Destroy a Room',
    stages: [
      stage(
        [
          { var: 'roomjid', type: 'jid-single', label: 'Room', required: true },
          { var: 'reason', type: 'text-single', label: 'Reason (shown to the occupants)' },
          { var: 'alternate', type: 'jid-single', label: 'Alternate venue' },
        ],
        'Destroy a Room',
      ),
    ],
    finish(st) {
      const room = roomOf(st.roomjid!);
      const n = room.occupants.size;
      room.destroy(st.alternate || undefined, st.reason || undefined);
      return { notes: [{ type: 'info', text: `${room.jid.bare} destroyed; ${n} occupant(s) told` }] };
    },
  });

  m.command<State>({
    node: `${NS}#kick-occupant`,
    name: 'Kick an Occupant',
    stages: [
      stage(
        [
          { var: 'roomjid', type: 'jid-single', label: 'Room', required: true },
          { var: 'nick', type: 'text-single', label: 'Nickname', required: true },
          { var: 'reason', type: 'text-single', label: 'Reason' },
        ],
        'Kick an Occupant',
      ),
    ],
    finish(st, req) {
      const room = roomOf(st.roomjid!);
      const o = room.occupants.get(st.nick!);
      if (!o) throw new StanzaError('item-not-found', `nobody is in ${room.jid.bare} as ${st.nick}`);
      room.kick(o, { jid: req.from.bare }, st.reason || undefined);
      return { notes: [{ type: 'info', text: `${st.nick} kicked from ${room.jid.bare}` }] };
    },
  });
}
