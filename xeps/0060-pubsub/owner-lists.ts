// XEP-0060 §8.8 and §8.9: an owner lists and changes a node's subscriptions and
// affiliations. A change that cannot be applied is answered with the failing entries and
// their current state; the service's owner stays the node's owner.
import { x, StanzaError, type Element, type Jid } from '../../src/api/index.js';
import { AFFILIATIONS, type Affiliation } from './nodes.js';
import { NS_PUBSUB_OWNER, tryParse, type PubSubService } from './service.js';

export async function nodeSubscriptions(svc: PubSubService, service: string, who: Jid, el: Element): Promise<Element> {
  const state = await svc.nodes.get(service);
  const n = svc.need(state, el);
  await svc.needOwner(state, n, who);
  return x(
    'pubsub',
    { xmlns: NS_PUBSUB_OWNER },
    x('subscriptions', { node: n.name }, [...n.subscriptions].map(([jid, s]) => x('subscription', { jid, subscription: s }))),
  );
}

export async function setSubscriptions(svc: PubSubService, service: string, who: Jid, el: Element): Promise<void> {
  await svc.nodes.exclusive(service, async (state) => {
    const n = svc.need(state, el);
    await svc.needOwner(state, n, who);
    const failed: Element[] = [];
    for (const s of el.getChildren('subscription')) {
      const jid = s.attrs.jid ? tryParse(s.attrs.jid) : undefined;
      const to = s.attrs.subscription;
      if (!jid || (to !== 'none' && to !== 'subscribed')) {
        failed.push(x('subscription', { jid: s.attrs.jid, subscription: n.subscriptions.get(s.attrs.jid ?? '') ?? 'none' }));
        continue;
      }
      if (to === 'none') n.subscriptions.delete(jid.full);
      else if (n.subscriptions.size < svc.limits().maxSubscriptions || n.subscriptions.has(jid.full)) n.subscriptions.set(jid.full, 'subscribed');
      else failed.push(x('subscription', { jid: jid.full, subscription: 'none' }));
    }
    await svc.nodes.save(service, n);
    if (failed.length)
      throw failedEntries('some subscriptions could not be changed', x('pubsub', { xmlns: NS_PUBSUB_OWNER }, x('subscriptions', { node: n.name }, failed)));
  });
}

export async function nodeAffiliations(svc: PubSubService, service: string, who: Jid, el: Element): Promise<Element> {
  const state = await svc.nodes.get(service);
  const n = svc.need(state, el);
  await svc.needOwner(state, n, who);
  return x(
    'pubsub',
    { xmlns: NS_PUBSUB_OWNER },
    x(
      'affiliations',
      { node: n.name },
      x('affiliation', { jid: state.service, affiliation: 'owner' }),
      [...n.affiliations].map(([jid, a]) => x('affiliation', { jid, affiliation: a })),
    ),
  );
}

export async function setAffiliations(svc: PubSubService, service: string, who: Jid, el: Element): Promise<void> {
  await svc.nodes.exclusive(service, async (state) => {
    const n = svc.need(state, el);
    await svc.needOwner(state, n, who);
    const entries = el.getChildren('affiliation');
    const seen = new Set<string>();
    for (const a of entries) {
      const j = a.attrs.jid ? tryParse(a.attrs.jid) : undefined;
      if (j && seen.has(j.bare)) throw new StanzaError('bad-request', `${j.bare} is named twice`);
      if (j) seen.add(j.bare);
    }
    const failed: Element[] = [];
    for (const a of entries) {
      const j = a.attrs.jid ? tryParse(a.attrs.jid) : undefined;
      const aff = a.attrs.affiliation;
      const current = j ? (j.bare === state.service ? 'owner' : (n.affiliations.get(j.bare) ?? 'none')) : 'none';
      // the service's owner stays its owner (§8.9.2.4: never leave a node without one)
      if (!j || j.bare === state.service || (aff !== 'none' && !AFFILIATIONS.includes(aff as Affiliation))) {
        failed.push(x('affiliation', { jid: a.attrs.jid, affiliation: current }));
        continue;
      }
      if (aff === 'none') n.affiliations.delete(j.bare);
      else n.affiliations.set(j.bare, aff as Affiliation);
    }
    await svc.dropLostSubscriptions(state, n);
    await svc.nodes.save(service, n);
    if (failed.length)
      throw failedEntries('some affiliations could not be changed', x('pubsub', { xmlns: NS_PUBSUB_OWNER }, x('affiliations', { node: n.name }, failed)));
  });
}

/** not-acceptable, with the failing entries as they are now in place of the request (§8.8.2.4, §8.9.2.4) */
function failedEntries(text: string, entries: Element): StanzaError {
  const err = new StanzaError('not-acceptable', text, 'modify');
  err.payload = entries;
  return err;
}
