// Running XEP-0050 ad-hoc commands from a real client (@xmpp/client), stage by stage.
import type { Element } from '@xmpp/xml';
import { iq, xml, type XmppClient } from './clients.js';

export const NS_COMMANDS = 'http://jabber.org/protocol/commands';
export const NS_ADMIN = 'http://jabber.org/protocol/admin';
export const ADMIN = (name: string): string => `${NS_ADMIN}#${name}`;

export interface Step {
  action?: string;
  sessionid?: string;
  /** submit a form with these fields (FORM_TYPE added) */
  fields?: Record<string, string | string[]>;
  formType?: string;
}

/** One request of a command session; returns the IQ response (result or error). */
export function runStep(c: XmppClient, node: string, step: Step = {}): Promise<Element> {
  const form = step.fields
    ? xml(
        'x',
        { xmlns: 'jabber:x:data', type: 'submit' },
        xml('field', { var: 'FORM_TYPE', type: 'hidden' }, xml('value', {}, step.formType ?? NS_ADMIN)),
        ...Object.entries(step.fields).map(([k, v]) =>
          xml('field', { var: k }, ...(Array.isArray(v) ? v : [v]).map((s) => xml('value', {}, s))),
        ),
      )
    : undefined;
  return iq(
    c,
    xml(
      'iq',
      { type: 'set', to: 'localhost' },
      xml('command', { xmlns: NS_COMMANDS, node, action: step.action, sessionid: step.sessionid }, ...(form ? [form] : [])),
    ),
  );
}

/** execute, then submit each stage's fields in turn; returns every response */
export async function runCommand(c: XmppClient, node: string, ...stages: Record<string, string | string[]>[]): Promise<Element[]> {
  const out: Element[] = [];
  let r = await runStep(c, node);
  out.push(r);
  for (let i = 0; i < stages.length; i++) {
    const cmd = r.getChild('command', NS_COMMANDS);
    if (r.attrs.type !== 'result' || !cmd) break;
    const last = i === stages.length - 1;
    r = await runStep(c, node, { action: last ? 'complete' : 'next', sessionid: cmd.attrs.sessionid, fields: stages[i] });
    out.push(r);
  }
  return out;
}

export const commandOf = (r: Element): Element => {
  const cmd = r.getChild('command', NS_COMMANDS);
  if (!cmd) throw new Error(`no <command/> in ${r.toString()}`);
  return cmd;
};

/** the values of a field in the command's data form */
export function fieldValues(r: Element, v: string): string[] | undefined {
  const form = commandOf(r).getChild('x', 'jabber:x:data');
  const f = form?.getChildren('field').find((e) => e.attrs.var === v);
  return f?.getChildren('value').map((e) => e.getText());
}

export const notes = (r: Element): string[] =>
  commandOf(r)
    .getChildren('note')
    .map((n) => `${n.attrs.type}: ${n.getText()}`);

export const errorCondition = (r: Element): string[] =>
  (r.getChild('error')?.children as Element[] | undefined)?.filter((e) => typeof e !== 'string' && e.name !== 'text').map((e) => e.name) ??
  [];
