// XEP-0157 Contact Addresses for XMPP Services: whom to write about abuse, administration
// or support, in the server's disco#info (an XEP-0128 form of type
// http://jabber.org/network/serverinfo). Public contract: UZZAP_CONTACT_ABUSE,
// UZZAP_CONTACT_ADMIN, UZZAP_CONTACT_SUPPORT (and _FEEDBACK, _SALES, _SECURITY), each a
// comma-separated list of URIs (`xmpp:abuse@example.org,mailto:abuse@example.org`).
import { z, dataForm, type FormField, type XepModule } from '../../src/api/index.js';

const KINDS = ['abuse', 'admin', 'feedback', 'sales', 'security', 'support'] as const;

/** a list of URIs, or one comma-separated string of them (from the environment) */
const uris = z
  .union([z.array(z.string()), z.coerce.string()])
  .default([])
  .transform((v) => (Array.isArray(v) ? v : v.split(',')).map((s) => s.trim()).filter(Boolean))
  .refine((list) => list.every((u) => /^[a-z][a-z0-9+.-]*:\S+$/i.test(u)), 'each address must be a URI (xmpp:..., mailto:..., https://...)');

const Config = z.object(Object.fromEntries(KINDS.map((k) => [k, uris])) as Record<(typeof KINDS)[number], typeof uris>);

const contact: XepModule<z.infer<typeof Config>> = {
  name: 'contact',
  config: Config,
  xeps: [{ n: 157, version: '1.1.1', status: 'complete' }],
  setup(m) {
    const fields: FormField[] = KINDS.filter((k) => m.config[k].length).map((k) => ({
      var: `${k}-addresses`,
      type: 'list-multi',
      values: m.config[k],
    }));
    if (fields.length) m.discoForm(dataForm('result', 'http://jabber.org/network/serverinfo', fields));
  },
};

export default contact;
