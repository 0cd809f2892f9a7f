// XEP-0060 node configuration (§8.2, §16.4.4 pubsub#node_config): the settings a node
// keeps, the form an owner edits, and publish-options preconditions (§7.1.5).
import { dataForm, SubmittedForm, type Element, type FormField } from '../../src/api/index.js';
import { pubsubError } from './errors.js';

export const NS_NODE_CONFIG = 'http://jabber.org/protocol/pubsub#node_config';
export const NS_PUBLISH_OPTIONS = 'http://jabber.org/protocol/pubsub#publish-options';

export const ACCESS_MODELS = ['open', 'presence', 'roster', 'whitelist'] as const;
export type AccessModel = (typeof ACCESS_MODELS)[number];
const PUBLISH_MODELS = ['publishers', 'subscribers', 'open'] as const;
const SEND_LAST = ['never', 'on_sub', 'on_sub_and_presence'] as const;
const NOTIFICATION_TYPES = ['headline', 'normal'] as const;
// 'reject' (conflict + node-full) is not implemented: refused, not silently ignored
const NODE_FULL = ['retract-oldest', 'discard-oldest'] as const;

export interface NodeConfig {
  access_model: AccessModel;
  /** roster groups whose members may access a node with access_model 'roster' */
  roster_groups_allowed: string[];
  publish_model: (typeof PUBLISH_MODELS)[number];
  persist_items: boolean;
  /** items kept; 'max' = the server's limit */
  max_items: number | 'max';
  send_last_published_item: (typeof SEND_LAST)[number];
  deliver_notifications: boolean;
  deliver_payloads: boolean;
  notify_retract: boolean;
  notify_delete: boolean;
  notify_config: boolean;
  notify_sub: boolean;
  notification_type: (typeof NOTIFICATION_TYPES)[number];
  publish_node_full: (typeof NODE_FULL)[number];
  title: string;
  description: string;
  /** the payload namespace, if the node is for one kind of payload */
  type: string;
  itemreply: 'owner' | 'publisher';
}

/** XEP-0163 §5: PEP nodes default to the presence access model, payloads delivered, the last item on presence. */
export function defaultConfig(): NodeConfig {
  return {
    access_model: 'presence',
    roster_groups_allowed: [],
    publish_model: 'publishers',
    persist_items: true,
    max_items: 1,
    send_last_published_item: 'on_sub_and_presence',
    deliver_notifications: true,
    deliver_payloads: true,
    notify_retract: true,
    notify_delete: true,
    notify_config: false,
    notify_sub: false,
    notification_type: 'headline',
    publish_node_full: 'retract-oldest',
    title: '',
    description: '',
    type: '',
    itemreply: 'owner',
  };
}

/** How many items a node keeps, with the server's limit applied. */
export function keepItems(c: NodeConfig, limit: number): number {
  if (!c.persist_items) return 1; // the last item is still kept: sent on presence (§6.5.7)
  return c.max_items === 'max' ? limit : Math.min(c.max_items, limit);
}

type Kind = 'bool' | 'text' | 'list' | 'multi' | 'items';

interface Field {
  key: keyof NodeConfig;
  kind: Kind;
  label: string;
  options?: readonly string[];
}

const FIELDS: Field[] = [
  { key: 'access_model', kind: 'list', label: 'Who may subscribe and retrieve items', options: ACCESS_MODELS },
  { key: 'roster_groups_allowed', kind: 'multi', label: 'Roster groups allowed to subscribe' },
  { key: 'publish_model', kind: 'list', label: 'Who may publish', options: PUBLISH_MODELS },
  { key: 'persist_items', kind: 'bool', label: 'Persist items to storage' },
  { key: 'max_items', kind: 'items', label: 'Max # of items to persist. `max` for no specific limit other than a server imposed maximum.' },
  { key: 'send_last_published_item', kind: 'list', label: 'When to send the last published item', options: SEND_LAST },
  { key: 'deliver_notifications', kind: 'bool', label: 'Deliver event notifications' },
  { key: 'deliver_payloads', kind: 'bool', label: 'Deliver payloads with event notifications' },
  { key: 'notify_retract', kind: 'bool', label: 'Notify subscribers when items are removed from the node' },
  { key: 'notify_delete', kind: 'bool', label: 'Notify subscribers when the node is deleted' },
  { key: 'notify_config', kind: 'bool', label: 'Notify subscribers when the node configuration changes' },
  { key: 'notify_sub', kind: 'bool', label: 'Notify owners about new subscribers and unsubscribes' },
  { key: 'notification_type', kind: 'list', label: 'Message type of notifications', options: NOTIFICATION_TYPES },
  { key: 'publish_node_full', kind: 'list', label: 'What a publish to a full node does', options: NODE_FULL },
  { key: 'title', kind: 'text', label: 'A friendly name for the node' },
  { key: 'description', kind: 'text', label: 'A description of the node' },
  { key: 'type', kind: 'text', label: 'The type of node data, usually specified by the namespace of the payload' },
  { key: 'itemreply', kind: 'list', label: 'Whom replies to items go to', options: ['owner', 'publisher'] },
];
const BY_VAR = new Map(FIELDS.map((f) => [`pubsub#${f.key}`, f]));
/** fields the server keeps to itself but shows (read-only) */
const INFO_VARS = new Set(['pubsub#max_payload_size', 'pubsub#node_type']);

const FIELD_TYPES: Record<Kind, FormField['type']> = {
  bool: 'boolean',
  text: 'text-single',
  list: 'list-single',
  multi: 'list-multi',
  items: 'text-single',
};

/** The configuration form (§8.2.1): type 'form' for an owner to edit, 'result' in notifications. */
export function configForm(c: NodeConfig, type: 'form' | 'result', extra: { maxPayloadSize: number; groups?: string[] }): Element {
  const fields: FormField[] = FIELDS.map((f) => {
    const value = c[f.key];
    const values = Array.isArray(value) ? value : [value as string | number | boolean];
    const options =
      f.kind === 'multi' ? (extra.groups ?? []).map((g) => ({ value: g })) : f.options?.map((o) => ({ value: o }));
    return { var: `pubsub#${f.key}`, type: FIELD_TYPES[f.kind], label: f.label, values, options };
  });
  fields.push({ var: 'pubsub#max_payload_size', type: 'text-single', label: 'Max payload size in bytes', value: extra.maxPayloadSize });
  fields.push({ var: 'pubsub#node_type', type: 'list-single', label: 'The type of node', value: 'leaf', options: [{ value: 'leaf' }] });
  return dataForm(type, NS_NODE_CONFIG, fields);
}

/** One field's submitted values as a setting; throws not-acceptable for a value out of range. */
function parseField(f: Field, values: string[], limit: number): NodeConfig[keyof NodeConfig] {
  const one = values[0] ?? '';
  const bad = (): never => {
    throw pubsubError('not-acceptable', undefined, `pubsub#${f.key}: "${one}" is not allowed`);
  };
  switch (f.kind) {
    case 'bool':
      if (one === '1' || one === 'true') return true;
      if (one === '0' || one === 'false') return false;
      return bad();
    case 'text':
      return values.join('\n');
    case 'multi':
      return values;
    case 'list':
      if (!f.options!.includes(one)) {
        if (f.key === 'access_model')
          throw pubsubError('not-acceptable', 'unsupported-access-model', `access model "${one}" is not supported`);
        return bad();
      }
      return one;
    case 'items': {
      if (one === 'max') return 'max';
      if (!/^\d+$/.test(one)) return bad();
      const n = Number(one);
      if (n < 1 || n > limit) {
        throw pubsubError('not-acceptable', undefined, `pubsub#max_items must be between 1 and ${limit} (or max)`);
      }
      return n;
    }
  }
}

/**
 * Apply a submitted node_config form (§8.2.4; fields left out keep their values). Unknown
 * fields are refused: a client must not believe a setting took that the server ignores.
 */
export function applyConfigForm(c: NodeConfig, form: SubmittedForm, limit: number): NodeConfig {
  if (form.formType !== undefined && form.formType !== NS_NODE_CONFIG)
    throw pubsubError('bad-request', undefined, `the form must be of type ${NS_NODE_CONFIG}`);
  const next = { ...c, roster_groups_allowed: [...c.roster_groups_allowed] };
  for (const v of form.vars()) {
    if (v === 'FORM_TYPE' || INFO_VARS.has(v)) continue;
    const f = BY_VAR.get(v);
    if (!f) throw pubsubError('not-acceptable', undefined, `${v} is not a node setting here`);
    (next as Record<string, unknown>)[f.key] = parseField(f, form.values(v)!, limit);
  }
  return next;
}

/** The settings a publish-options form asks for (§7.1.5), parsed; unknown fields are refused. */
export function parsePublishOptions(el: Element, limit: number): Partial<NodeConfig> {
  const x = el.getChild('x', 'jabber:x:data');
  if (!x) return {};
  const form = new SubmittedForm(x);
  if (form.formType !== NS_PUBLISH_OPTIONS)
    throw pubsubError('bad-request', 'invalid-options', `publish-options must be a form of type ${NS_PUBLISH_OPTIONS}`);
  const out: Partial<NodeConfig> = {};
  for (const v of form.vars()) {
    if (v === 'FORM_TYPE') continue;
    const f = BY_VAR.get(v);
    // an option the server does not know cannot be met
    if (!f) throw pubsubError('conflict', 'precondition-not-met', `${v} is not a node setting here`);
    try {
      (out as Record<string, unknown>)[f.key] = parseField(f, form.values(v)!, limit);
    } catch {
      throw pubsubError('conflict', 'precondition-not-met', `${v}: "${form.values(v)!.join(',')}" cannot be met`);
    }
  }
  return out;
}

/** Does an existing node meet these preconditions? 'max' equals the server's limit. */
export function meets(c: NodeConfig, want: Partial<NodeConfig>, limit: number): string | undefined {
  for (const [k, v] of Object.entries(want) as [keyof NodeConfig, NodeConfig[keyof NodeConfig]][]) {
    const have = c[k];
    if (k === 'max_items') {
      const norm = (n: number | 'max'): number => (n === 'max' ? limit : n);
      if (norm(have as number | 'max') !== norm(v as number | 'max')) return k;
    } else if (Array.isArray(v)) {
      const h = new Set(have as string[]);
      if (v.length !== h.size || v.some((g) => !h.has(g))) return k;
    } else if (have !== v) return k;
  }
  return undefined;
}

/** A stored configuration (JSON) read back over today's defaults (settings added later get theirs). */
export function readConfig(json: string): NodeConfig {
  return { ...defaultConfig(), ...(JSON.parse(json) as Partial<NodeConfig>) };
}
