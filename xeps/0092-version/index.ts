// XEP-0092 Software Version.
import { release, type } from 'node:os';
import { x, z, type XepModule } from '../../src/api/index.js';

const NS = 'jabber:iq:version';
const Config = z.object({ show_os: z.boolean().default(true) });

const version: XepModule<z.infer<typeof Config>> = {
  name: 'version',
  xeps: [{ n: 92, version: '1.1', status: 'complete' }],
  config: Config,
  setup(m) {
    m.feature(NS);
    m.iq({ type: 'get', ns: NS, name: 'query', to: ['host'] }, () =>
      x(
        'query',
        { xmlns: NS },
        x('name', null, m.server.name),
        x('version', null, m.server.version),
        m.config.show_os ? x('os', null, `${type()} ${release()}`) : undefined,
      ),
    );
  },
};

export default version;
