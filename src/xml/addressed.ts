// A serialised stanza read back with its addresses (a stanza that crossed the cluster
// bus as text): undefined when it does not parse or lacks a valid 'from' or 'to'.
import type { Element } from './index.js';
import { parseXml } from './index.js';
import { tryJid, type Jid } from '../jid.js';

export function parseAddressed(xml: string): { stanza: Element; from: Jid; to: Jid } | undefined {
  let stanza: Element;
  try {
    stanza = parseXml(xml);
  } catch {
    return undefined;
  }
  const from = tryJid(stanza.attrs.from);
  const to = tryJid(stanza.attrs.to);
  return from && to ? { stanza, from, to } : undefined;
}
