// XEP-0202 Entity Time: UTC time and the server's offset.
import { dateTime, x, type XepModule } from '../../src/api/index.js';

const NS = 'urn:xmpp:time';

export function tzo(offsetMinutes: number): string {
  const sign = offsetMinutes <= 0 ? '+' : '-'; // getTimezoneOffset is UTC minus local
  const abs = Math.abs(offsetMinutes);
  return `${sign}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
}

const time: XepModule = {
  name: 'time',
  xeps: [{ n: 202, version: '2.0', status: 'complete' }],
  setup(m) {
    m.feature(NS);
    m.iq({ type: 'get', ns: NS, name: 'time', to: ['host'] }, () => {
      const now = new Date();
      return x('time', { xmlns: NS }, x('tzo', null, tzo(now.getTimezoneOffset())), x('utc', null, dateTime(now.getTime())));
    });
  },
};

export default time;
