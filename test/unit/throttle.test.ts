// Unit tests for src/stream/sasl/throttle.ts: per-address delay of failed
// authentications (doubling, capped, forgotten after a quiet window).
import assert from 'node:assert/strict';
import { AuthThrottle, type ThrottleSettings } from '../../src/stream/sasl/throttle.js';

const SETTINGS: ThrottleSettings = { failure_delay: 250, failure_delay_max: 5000, failure_window: 300 };
const T0 = 1_700_000_000_000;

describe('AuthThrottle', () => {
  it('doubles the delay with each failure from one address', () => {
    const t = new AuthThrottle({ ...SETTINGS });
    const delays = [0, 1, 2, 3, 4].map((i) => t.recordFailure('10.0.0.1', T0 + i * 1000));
    assert.deepEqual(delays, [250, 500, 1000, 2000, 4000]);
  });

  it('caps the delay at failure_delay_max', () => {
    const t = new AuthThrottle({ ...SETTINGS });
    const delays = Array.from({ length: 10 }, (_, i) => t.recordFailure('10.0.0.1', T0 + i));
    assert.deepEqual(delays, [250, 500, 1000, 2000, 4000, 5000, 5000, 5000, 5000, 5000]);
  });

  it('stays finite and capped after very many failures', () => {
    const t = new AuthThrottle({ failure_delay: 1, failure_delay_max: Number.MAX_SAFE_INTEGER, failure_window: 300 });
    let d = 0;
    for (let i = 0; i < 2000; i++) d = t.recordFailure('10.0.0.1', T0 + i);
    assert.ok(Number.isFinite(d) && d > 0 && d <= Number.MAX_SAFE_INTEGER, String(d));
    const capped = new AuthThrottle({ ...SETTINGS });
    for (let i = 0; i < 2000; i++) d = capped.recordFailure('10.0.0.1', T0 + i);
    assert.equal(d, 5000);
  });

  it('a zero base delay never delays', () => {
    const t = new AuthThrottle({ failure_delay: 0, failure_delay_max: 5000, failure_window: 300 });
    for (let i = 0; i < 10; i++) assert.equal(t.recordFailure('10.0.0.1', T0 + i), 0);
  });

  it('counts each address separately', () => {
    const t = new AuthThrottle({ ...SETTINGS });
    assert.equal(t.recordFailure('10.0.0.1', T0), 250);
    assert.equal(t.recordFailure('10.0.0.1', T0 + 1), 500);
    assert.equal(t.recordFailure('10.0.0.2', T0 + 2), 250);
    assert.equal(t.recordFailure('10.0.0.1', T0 + 3), 1000);
    assert.equal(t.recordFailure('10.0.0.2', T0 + 4), 500);
  });

  it('forgets an address after failure_window seconds without failures', () => {
    const t = new AuthThrottle({ ...SETTINGS });
    t.recordFailure('10.0.0.1', T0);
    t.recordFailure('10.0.0.1', T0 + 1000);
    assert.equal(t.recordFailure('10.0.0.1', T0 + 2000), 1000);
    // just inside the window (counted from the last failure): keeps doubling
    assert.equal(t.recordFailure('10.0.0.1', T0 + 2000 + 299_999), 2000);
    // just past the window: starts again
    assert.equal(t.recordFailure('10.0.0.1', T0 + 2000 + 299_999 + 300_001), 250);
    assert.equal(t.recordFailure('10.0.0.1', T0 + 2000 + 299_999 + 300_002), 500);
  });

  it('the window slides: failures spaced less than the window apart keep doubling', () => {
    const t = new AuthThrottle({ ...SETTINGS });
    const delays = [0, 200, 400, 600, 800].map((s) => t.recordFailure('10.0.0.1', T0 + s * 1000));
    assert.deepEqual(delays, [250, 500, 1000, 2000, 4000]);
  });

  it('uses the current settings (they can be reloaded)', () => {
    const t = new AuthThrottle({ ...SETTINGS });
    assert.equal(t.recordFailure('10.0.0.1', T0), 250);
    t.settings = { failure_delay: 100, failure_delay_max: 150, failure_window: 1 };
    assert.equal(t.recordFailure('10.0.0.1', T0 + 500), 150);
    assert.equal(t.recordFailure('10.0.0.1', T0 + 2000), 100, 'the new 1 s window has passed');
  });

  it('a success resets the address', () => {
    const t = new AuthThrottle({ ...SETTINGS });
    t.recordFailure('10.0.0.1', T0);
    t.recordFailure('10.0.0.1', T0 + 1);
    t.recordFailure('10.0.0.2', T0 + 2);
    assert.equal(t.recordFailure('10.0.0.1', T0 + 3), 1000);
    t.recordSuccess('10.0.0.1');
    assert.equal(t.recordFailure('10.0.0.1', T0 + 4), 250);
    assert.equal(t.recordFailure('10.0.0.2', T0 + 5), 500, 'other addresses are not reset');
    t.recordSuccess('10.9.9.9'); // unknown address: no-op
  });

  it('bounds its table, forgetting the least recently failed addresses first', function () {
    this.timeout(30_000);
    const LIMIT = 100_000;
    const t = new AuthThrottle({ ...SETTINGS });
    let now = T0;
    t.recordFailure('oldest', now++);
    t.recordFailure('second', now++);
    t.recordFailure('kept', now++);
    for (let i = 0; i < LIMIT - 3; i++) t.recordFailure(`filler-${i}`, now++);
    // table is full (LIMIT entries); failing again moves 'kept' to the young end
    assert.equal(t.recordFailure('kept', now++), 500);
    // one more address evicts the least recently failed one: 'oldest'
    t.recordFailure('newcomer', now++);
    assert.equal(t.recordFailure('oldest', now++), 250, "'oldest' was forgotten");
    // re-adding 'oldest' evicted the next least recently failed: 'second'
    assert.equal(t.recordFailure('second', now++), 250, "'second' was forgotten");
    assert.equal(t.recordFailure('kept', now++), 1000, "'kept' was refreshed and survived");
    assert.equal(t.recordFailure('newcomer', now++), 500);
    assert.equal(t.recordFailure(`filler-${LIMIT - 4}`, now++), 500, 'the youngest filler survived');
  });

  it('keeps remembering addresses while the table is not full', () => {
    const t = new AuthThrottle({ ...SETTINGS });
    let now = T0;
    t.recordFailure('first', now++);
    for (let i = 0; i < 50_000; i++) t.recordFailure(`filler-${i}`, now++);
    assert.equal(t.recordFailure('first', now++), 500);
  });
});
