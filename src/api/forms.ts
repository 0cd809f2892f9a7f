// XEP-0004 data forms: build the forms a service offers and read the ones a
// client submits. Written here because the XMPP libraries on npm are clients
// (@xmpp/*) or whole stacks (stanza) and offer no server-side form helper over ltx.
import { Element, x } from '../xml/index.js';

export const NS_DATA = 'jabber:x:data';

export type FieldType =
  | 'boolean'
  | 'fixed'
  | 'hidden'
  | 'jid-multi'
  | 'jid-single'
  | 'list-multi'
  | 'list-single'
  | 'text-multi'
  | 'text-private'
  | 'text-single';

export interface FormField {
  var?: string;
  type?: FieldType;
  label?: string;
  desc?: string;
  required?: boolean;
  values?: (string | number | boolean)[];
  value?: string | number | boolean;
  options?: { value: string; label?: string }[];
}

/** A form element: type 'form' (to fill in), 'result', 'submit' or 'cancel'. */
export function dataForm(
  type: 'form' | 'result' | 'submit' | 'cancel',
  formType: string | undefined,
  fields: FormField[],
  opts: { title?: string; instructions?: string } = {},
): Element {
  const all: FormField[] = formType ? [{ var: 'FORM_TYPE', type: 'hidden', value: formType }, ...fields] : fields;
  return x(
    'x',
    { xmlns: NS_DATA, type },
    opts.title ? x('title', null, opts.title) : undefined,
    opts.instructions ? x('instructions', null, opts.instructions) : undefined,
    all.map((f) => {
      const values = f.values ?? (f.value === undefined ? [] : [f.value]);
      return x(
        'field',
        { var: f.var, type: type === 'submit' ? undefined : f.type, label: f.label },
        f.desc ? x('desc', null, f.desc) : undefined,
        f.required ? x('required') : undefined,
        values.map((v) => x('value', null, typeof v === 'boolean' ? (v ? '1' : '0') : String(v))),
        (f.options ?? []).map((o) => x('option', { label: o.label }, x('value', null, o.value))),
      );
    }),
  );
}

/** The submitted values of a form, by field var (FORM_TYPE included). */
export class SubmittedForm {
  readonly type: string;
  private readonly fields = new Map<string, string[]>();
  constructor(form: Element) {
    this.type = form.attrs.type ?? '';
    for (const f of form.getChildren('field')) {
      const v = f.attrs.var;
      if (v === undefined) continue;
      this.fields.set(
        v,
        f.getChildren('value').map((e) => e.getText()),
      );
    }
  }
  /** the data form among an element's children, if any */
  static in(parent: Element): SubmittedForm | undefined {
    const el = parent.getChild('x', NS_DATA);
    return el ? new SubmittedForm(el) : undefined;
  }
  get formType(): string | undefined {
    return this.fields.get('FORM_TYPE')?.[0];
  }
  has(v: string): boolean {
    return this.fields.has(v);
  }
  vars(): string[] {
    return [...this.fields.keys()];
  }
  values(v: string): string[] | undefined {
    return this.fields.get(v);
  }
  text(v: string): string | undefined {
    const vals = this.fields.get(v);
    return vals === undefined ? undefined : vals.join('\n');
  }
  /** XEP-0004 §3.3 boolean: "1"/"true" or "0"/"false"; anything else is undefined */
  bool(v: string): boolean | undefined {
    const s = this.fields.get(v)?.[0];
    if (s === '1' || s === 'true') return true;
    if (s === '0' || s === 'false') return false;
    return undefined;
  }
}
