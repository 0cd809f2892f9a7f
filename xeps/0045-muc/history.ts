// A room's discussion history (XEP-0045 §7.2.15): the last messages, in memory,
// bounded, sent to a newcomer with a <delay/> as its <history/> asks; moderated
// messages are replaced in place by their tombstones.
import { Element, dateTime, x } from '../../src/api/index.js';
import { NS_DELAY } from './ns.js';

interface HistoryEntry {
  stanza: Element;
  at: number;
  /** serialised length, measured only once a client asks for maxchars (-1 until then) */
  chars: number;
  stanzaId: string;
}

export class DiscussionHistory {
  private entries: HistoryEntry[] = [];

  constructor(private readonly room: string) {}

  /** Keep a message (the oldest go beyond `max`). */
  remember(m: Element, stanzaId: string, max: number, at = Date.now()): void {
    if (max <= 0) return;
    this.entries.push({ stanza: m, at, chars: -1, stanzaId });
    if (this.entries.length > max) this.entries.splice(0, this.entries.length - max);
  }

  /** The kept message from `from` (room/nick) with this client id and body, if any (newest first). */
  find(from: string, id: string, body: string | null): Element | undefined {
    for (let i = this.entries.length - 1; i >= 0; i--) {
      const m = this.entries[i]!.stanza;
      if (m.attrs.id === id && m.attrs.from === from && m.getChildText('body') === body) return m;
    }
    return undefined;
  }

  /** Replace the message with that stanza-id by what `make` builds from it; false if it is not kept. */
  replace(stanzaId: string, make: (stanza: Element) => Element): boolean {
    const i = this.entries.findIndex((e) => e.stanzaId === stanzaId);
    if (i === -1) return false;
    const e = this.entries[i]!;
    this.entries[i] = { ...e, stanza: make(e.stanza), chars: -1 };
    return true;
  }

  /** The messages a newcomer gets (§7.2.15): at most `max`, narrowed by its <history/>, each with a delay. */
  select(max: number, h: Element | undefined): Element[] {
    let entries = this.entries;
    if (h) {
      const ms = h.attrs.maxstanzas;
      if (ms !== undefined && /^\d+$/.test(ms)) max = Math.min(max, Number(ms));
      const secs = h.attrs.seconds;
      if (secs !== undefined && /^\d+$/.test(secs)) {
        const since = Date.now() - Number(secs) * 1000;
        entries = entries.filter((e) => e.at >= since);
      }
      const sinceAttr = h.attrs.since;
      if (sinceAttr !== undefined) {
        const t = Date.parse(sinceAttr);
        if (!Number.isNaN(t)) entries = entries.filter((e) => e.at > t);
      }
      if (max < entries.length) entries = entries.slice(entries.length - max);
      const mc = h.attrs.maxchars;
      if (mc !== undefined && /^\d+$/.test(mc)) {
        let budget = Number(mc);
        let i = entries.length;
        const size = (e: HistoryEntry): number => (e.chars >= 0 ? e.chars : (e.chars = e.stanza.toString().length));
        while (i > 0 && budget - size(entries[i - 1]!) >= 0) budget -= size(entries[--i]!);
        entries = entries.slice(i);
      }
    } else if (max < entries.length) entries = entries.slice(entries.length - max);
    return entries.map((e) => {
      const m = new Element('message', { ...e.stanza.attrs });
      m.children = [...e.stanza.children, x('delay', { xmlns: NS_DELAY, from: this.room, stamp: dateTime(e.at) })];
      return m;
    });
  }
}
