// Unit tests for src/modules/host.ts (and the reload step of src/server/modules.ts):
// a module's registrations are recorded and undone on unload, newest first;
// modules load in dependency order; a reload re-runs a module with new settings;
// ctx.blocks fails closed.
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { z } from 'zod';
import { ModuleHost, type ModuleHostDeps } from '../../src/modules/host.js';
import { applyModules } from '../../src/server/modules.js';
import { HookBus } from '../../src/router/hooks.js';
import { IqTable } from '../../src/router/iq-table.js';
import { Jid } from '../../src/jid.js';
import { x } from '../../src/xml/index.js';
import type { ModuleContext, ReloadReport, ServiceHandler, XepModule } from '../../src/api/module.js';
import type { Config } from '../../src/config/schema.js';
import type { Storage } from '../../src/storage/types.js';
import { capturingLogger, silentLogger } from '../helpers/mock-context.js';

const HOST = 'example.com';
const NS = 'urn:example:greeting';

function unused<T extends object>(what: string): T {
  return new Proxy({} as T, {
    get(_t, prop) {
      if (typeof prop === 'symbol' || prop === 'then') return undefined;
      throw new Error(`${what}.${prop} is not used by these tests`);
    },
  });
}

function deps(log = silentLogger()) {
  const hooks = new HookBus(silentLogger());
  const iqs = new IqTable();
  const services = new Map<string, ServiceHandler>();
  const metrics = new Registry();
  const statistics = new Map<string, () => number>();
  const d: ModuleHostDeps = {
    host: HOST,
    log,
    storage: unused<Storage>('storage'),
    hooks,
    iqs,
    server: { name: 'Uzzap', version: '0', startedAt: 0, isAdmin: () => false, registrationOpen: () => false, webBase: () => 'http://localhost:5280', dataDir: '.' },
    accounts: unused('accounts'),
    send: () => undefined,
    sessions: unused('sessions'),
    cluster: { invalidate: () => undefined, onInvalidate: () => () => undefined, place: (_d, h) => h },
    deliver: () => undefined,
    fanout: () => undefined,
    request: () => Promise.reject(new Error('no requests in these tests')),
    services,
    admin: unused('admin'),
    addStatistic: (name, read) => {
      statistics.set(name, read);
      return () => void statistics.delete(name);
    },
    metrics,
  };
  return { d, hooks, iqs, services, metrics, statistics, host: new ModuleHost(d) };
}

/** What the fake module saw and did. */
interface Journal {
  setups: unknown[];
  events: string[];
}

/** A module that registers one of everything, logging its close callbacks. */
function greeter(journal: Journal, host: () => ModuleHost, name = 'greeter'): XepModule<{ greeting: string }> {
  return {
    name,
    xeps: [{ n: 9999, version: '1.0', status: 'complete' }],
    config: z.object({ greeting: z.string().default('hello') }),
    setup(m: ModuleContext<{ greeting: string }>) {
      journal.setups.push(m.config);
      // the first close callback: by the time it runs (last), everything after it is undone
      m.onClose(() => void journal.events.push(`close-first: feature ${host().features('host').includes(NS) ? 'still there' : 'gone'}`));
      m.feature(NS);
      m.identity('client', 'bot', 'Greeter');
      m.streamFeature(`<greet xmlns='${NS}'/>`, 5);
      m.iq({ type: 'get', ns: NS, name: 'query', to: ['host', 'bare'] }, () => x('query', { xmlns: NS }, m.config.greeting));
      m.hook('message/host', () => (journal.events.push('hook'), true), 5);
      m.service(`greet.${HOST}`, () => undefined);
      m.admin.statistic('greetings', () => 7);
      m.metrics.counter('greetings_total', 'greetings sent');
      // the last close callback runs first: everything registered before it is still there
      m.onClose(() => void journal.events.push(`close-last: feature ${host().features('host').includes(NS) ? 'still there' : 'gone'}`));
    },
  };
}

const journal = (): Journal => ({ setups: [], events: [] });

function registered(t: ReturnType<typeof deps>): Record<string, unknown> {
  return {
    feature: t.host.features('host').includes(NS),
    identity: t.host.identities('host').some((i) => i.type === 'bot'),
    streamFeature: t.host.streamFeatures('post-auth', { secure: true }).includes('<greet'),
    iqHost: t.iqs.find('get', NS, 'query', 'host') !== undefined,
    iqBare: t.iqs.find('get', NS, 'query', 'bare') !== undefined,
    hook: t.hooks.has('message/host'),
    service: t.services.has(`greet.${HOST}`),
    statistic: t.statistics.has('greetings'),
    metric: t.metrics.getSingleMetric('uzzap_greetings_total') !== undefined,
  };
}

const ALL_ON = {
  feature: true,
  identity: true,
  streamFeature: true,
  iqHost: true,
  iqBare: true,
  hook: true,
  service: true,
  statistic: true,
  metric: true,
};
const ALL_OFF = Object.fromEntries(Object.keys(ALL_ON).map((k) => [k, false]));

const emptyReport = (): ReloadReport => ({
  applied: [],
  needsRestart: [],
  modulesLoaded: [],
  modulesUnloaded: [],
  modulesReloaded: [],
  errors: [],
});
const modulesConfig = (m: Record<string, unknown>, disabled: string[] = []): Config['modules'] =>
  ({ ...m, disabled }) as unknown as Config['modules'];

describe('ModuleHost', () => {
  describe('load and unload', () => {
    it('load registers everything the module asks for, owned by the module', async () => {
      const t = deps();
      const j = journal();
      await t.host.load(greeter(j, () => t.host) as XepModule<unknown>, { greeting: 'hi' });
      assert.deepEqual(registered(t), ALL_ON);
      assert.deepEqual(j.setups, [{ greeting: 'hi' }]);
      assert.equal(t.iqs.find('get', NS, 'query', 'host')!.owner, 'greeter');
      assert.equal(t.hooks.run('message/host', { stanza: x('message'), from: Jid.parse('a@example.com'), to: Jid.parse(HOST) }), true);
      assert.deepEqual(t.host.names(), ['greeter']);
      assert.ok(t.host.isLoaded('greeter'));
    });

    it('unload undoes every registration, newest first, and runs the close callbacks', async () => {
      const t = deps();
      const j = journal();
      await t.host.load(greeter(j, () => t.host) as XepModule<unknown>, {});
      await t.host.unload('greeter');
      assert.deepEqual(registered(t), ALL_OFF);
      assert.deepEqual(j.events, ['close-last: feature still there', 'close-first: feature gone']);
      assert.equal(t.host.isLoaded('greeter'), false);
      // everything can be registered again: nothing was left behind
      await t.host.load(greeter(journal(), () => t.host) as XepModule<unknown>, {});
      assert.deepEqual(registered(t), ALL_ON);
    });

    it('a failing cleanup is logged and the others still run', async () => {
      const { log, lines } = capturingLogger();
      const t = deps(log);
      const ran: string[] = [];
      const mod: XepModule = {
        name: 'fragile',
        xeps: [],
        setup(m) {
          m.onClose(() => void ran.push('first'));
          m.onClose(async () => {
            throw new Error('cannot flush');
          });
          m.feature(NS);
        },
      };
      await t.host.load(mod, {});
      await t.host.unload('fragile');
      assert.deepEqual(ran, ['first']);
      assert.equal(t.host.features('host').includes(NS), false);
      assert.deepEqual(
        lines.filter((l) => l.msg === 'module cleanup failed').map((l) => l.module),
        ['fragile'],
      );
    });

    it('a module whose setup fails leaves nothing behind and is not loaded', async () => {
      const t = deps();
      const closed: string[] = [];
      const mod: XepModule = {
        name: 'broken',
        xeps: [],
        async setup(m) {
          m.feature(NS);
          m.iq({ type: 'get', ns: NS, name: 'query', to: ['host'] }, () => undefined);
          m.onClose(() => void closed.push('closed'));
          throw new Error('no database');
        },
      };
      await assert.rejects(t.host.load(mod, {}), /module broken failed to start: no database/);
      assert.equal(t.host.isLoaded('broken'), false);
      assert.equal(t.host.features('host').includes(NS), false);
      assert.equal(t.iqs.find('get', NS, 'query', 'host'), undefined);
      assert.deepEqual(closed, ['closed']);
    });

    it('a feature two modules advertise stays until both are unloaded', async () => {
      const t = deps();
      const mod = (name: string): XepModule => ({ name, xeps: [], setup: (m) => m.feature(NS) });
      await t.host.load(mod('one'), {});
      await t.host.load(mod('two'), {});
      await t.host.unload('one');
      assert.deepEqual(t.host.features('host'), [NS]);
      await t.host.unload('two');
      assert.deepEqual(t.host.features('host'), []);
    });

    it('loading a module twice is refused; unloading one that is not loaded does nothing', async () => {
      const t = deps();
      const mod: XepModule = { name: 'once', xeps: [], setup: () => undefined };
      await t.host.load(mod, {});
      await assert.rejects(t.host.load(mod, {}), /already loaded/);
      await t.host.unload('never-loaded');
      assert.deepEqual(t.host.names(), ['once']);
    });
  });

  describe('loadAll: dependencies and settings', () => {
    const recorder =
      (order: string[]) =>
      (name: string, depends?: string[]): XepModule => ({
        name,
        xeps: [],
        depends,
        setup: () => void order.push(name),
      });

    it('loads what a module depends on first, whatever the list order; skips disabled modules', async () => {
      const t = deps();
      const order: string[] = [];
      const mod = recorder(order);
      await t.host.loadAll([mod('muc', ['disco', 'adhoc']), mod('adhoc', ['disco']), mod('disco'), mod('extra')], {}, ['extra']);
      assert.deepEqual(order, ['disco', 'adhoc', 'muc']);
      assert.deepEqual(t.host.names(), ['disco', 'adhoc', 'muc']);
    });

    const errors: { name: string; mods: [string, string[]?][]; disabled?: string[]; error: RegExp }[] = [
      {
        name: 'a cycle',
        mods: [
          ['a', ['b']],
          ['b', ['c']],
          ['c', ['a']],
        ],
        error: /module dependency cycle: a -> b -> c -> a/,
      },
      { name: 'a module depending on itself', mods: [['a', ['a']]], error: /module dependency cycle: a -> a/ },
      { name: 'an unknown dependency', mods: [['a', ['nowhere']]], error: /module a depends on unknown module nowhere/ },
      { name: 'a disabled dependency', mods: [['a', ['b']], ['b']], disabled: ['b'], error: /module a depends on disabled module b/ },
    ];
    for (const c of errors) {
      it(`${c.name} is an error and nothing is loaded`, async () => {
        const t = deps();
        const order: string[] = [];
        const mod = recorder(order);
        await assert.rejects(
          t.host.loadAll(
            c.mods.map(([n, d]) => mod(n, d)),
            {},
            c.disabled ?? [],
          ),
          c.error,
        );
        assert.deepEqual(order, []);
        assert.deepEqual(t.host.names(), []);
      });
    }

    it('every invalid setting of every module is reported at once, before any module is set up', async () => {
      const t = deps();
      const order: string[] = [];
      const withConfig = (name: string): XepModule<unknown> =>
        ({ name, xeps: [], config: z.object({ size: z.number() }), setup: () => void order.push(name) }) as XepModule<unknown>;
      await assert.rejects(
        t.host.loadAll([withConfig('a'), withConfig('b')], { a: { size: 'big' }, b: {} }, []),
        (e: Error) => /modules\.a\.size/.test(e.message) && /modules\.b\.size/.test(e.message),
      );
      assert.deepEqual(order, []);
    });
  });

  describe('reload (applyModules)', () => {
    it('changed settings: the module is unloaded (close callbacks run) and set up again with the new ones', async () => {
      const t = deps();
      const j = journal();
      const mod = greeter(j, () => t.host) as XepModule<never>;
      await t.host.loadAll([mod as XepModule<unknown>], { greeter: { greeting: 'hello' } }, []);
      const report = emptyReport();
      const keep = await applyModules(
        t.host,
        [mod],
        modulesConfig({ greeter: { greeting: 'hello' } }),
        modulesConfig({ greeter: { greeting: 'good morrow' } }),
        report,
      );
      assert.deepEqual(report.modulesReloaded, ['greeter']);
      assert.deepEqual(report.errors, []);
      assert.deepEqual(j.setups, [{ greeting: 'hello' }, { greeting: 'good morrow' }]);
      assert.deepEqual(j.events, ['close-last: feature still there', 'close-first: feature gone']);
      assert.deepEqual(registered(t), ALL_ON);
      assert.deepEqual((keep as unknown as Record<string, unknown>).greeter, { greeting: 'good morrow' });
      // the new handler answers with the new setting
      const handler = t.iqs.find('get', NS, 'query', 'host')!.handle;
      const out = handler({} as never) as ReturnType<typeof x>;
      assert.equal(out.getText(), 'good morrow');
    });

    it('unchanged settings: the module is left alone', async () => {
      const t = deps();
      const j = journal();
      const mod = greeter(j, () => t.host) as XepModule<never>;
      await t.host.loadAll([mod as XepModule<unknown>], { greeter: { greeting: 'hello' } }, []);
      const report = emptyReport();
      await applyModules(
        t.host,
        [mod],
        modulesConfig({ greeter: { greeting: 'hello' } }),
        modulesConfig({ greeter: { greeting: 'hello' } }),
        report,
      );
      assert.deepEqual(report, emptyReport());
      assert.equal(j.setups.length, 1);
      assert.deepEqual(j.events, []);
    });

    it('invalid new settings: reported, and the module keeps running with the old ones', async () => {
      const t = deps();
      const j = journal();
      const mod = greeter(j, () => t.host) as XepModule<never>;
      await t.host.loadAll([mod as XepModule<unknown>], { greeter: { greeting: 'hello' } }, []);
      const report = emptyReport();
      const keep = await applyModules(
        t.host,
        [mod],
        modulesConfig({ greeter: { greeting: 'hello' } }),
        modulesConfig({ greeter: { greeting: 42 } }),
        report,
      );
      assert.equal(report.errors.length, 1);
      assert.match(report.errors[0]!, /modules\.greeter\.greeting/);
      assert.deepEqual(j.setups, [{ greeting: 'hello' }]);
      assert.deepEqual(registered(t), ALL_ON);
      assert.deepEqual((keep as unknown as Record<string, unknown>).greeter, { greeting: 'hello' });
    });

    it('disabling a module another loaded module needs is refused; disabling both unloads the dependent first', async () => {
      const t = deps();
      const order: string[] = [];
      const mod = (name: string, depends?: string[]): XepModule<never> => ({
        name,
        xeps: [],
        depends,
        setup: (m) => m.onClose(() => void order.push(`close ${name}`)),
      });
      const all = [mod('base'), mod('user', ['base'])];
      await t.host.loadAll(all as XepModule<unknown>[], {}, []);
      const refused = emptyReport();
      await applyModules(t.host, all, modulesConfig({}), modulesConfig({}, ['base']), refused);
      assert.deepEqual(refused.errors, ['cannot disable base: user depends on it']);
      assert.deepEqual(t.host.names(), ['base', 'user']);

      const both = emptyReport();
      await applyModules(t.host, all, modulesConfig({}), modulesConfig({}, ['base', 'user']), both);
      assert.deepEqual(both.modulesUnloaded, ['user', 'base']);
      assert.deepEqual(order, ['close user', 'close base']);
      assert.deepEqual(t.host.names(), []);
    });
  });

  describe('ctx.blocks fails closed', () => {
    async function blocks(handler?: () => boolean | void | Promise<boolean | void>): Promise<boolean> {
      const t = deps();
      let ctx: ModuleContext | undefined;
      await t.host.load({ name: 'asker', xeps: [], setup: (m) => void (ctx = m) }, {});
      if (handler) t.hooks.add('privacy/blocks', handler, 0, 'privacy');
      return ctx!.blocks('juliet', Jid.parse('romeo@example.com'));
    }

    const cases: { name: string; handler?: () => boolean | void | Promise<boolean | void>; blocked: boolean }[] = [
      { name: 'no privacy/blocks hook', blocked: false },
      { name: 'a hook that says no', handler: () => false, blocked: false },
      { name: 'a hook that says yes', handler: () => true, blocked: true },
      { name: 'an asynchronous no', handler: () => Promise.resolve(false), blocked: false },
      {
        name: 'a hook that throws',
        handler: () => {
          throw new Error('blocklist unreadable');
        },
        blocked: true,
      },
      { name: 'a hook that rejects', handler: () => Promise.reject(new Error('blocklist unreadable')), blocked: true },
    ];
    for (const c of cases) {
      it(`${c.name}: ${c.blocked ? 'blocked' : 'not blocked'}`, async () => {
        assert.equal(await blocks(c.handler), c.blocked);
      });
    }
  });
});
