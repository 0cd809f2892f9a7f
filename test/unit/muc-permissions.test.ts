// Unit tests for xeps/0045-muc/permissions.ts: the XEP-0045 (1.35.5) tables of
// roles, affiliations and privileges, copied row by row, and the refusals
// §8–§10 name. Each row says who may do something; the test asks the pure
// functions the room and its admin protocol call.
import assert from 'node:assert/strict';
import type { Affiliation, Role } from '../../xeps/0045-muc/config.js';
import {
  defaultRole,
  mayChangeAffiliation,
  mayChangeRole,
  mayConfigure,
  mayEnter,
  mayGetAffiliationList,
  mayGetRoleList,
  mayRegister,
  ownersAfter,
  type Standing,
  type Verdict,
} from '../../xeps/0045-muc/permissions.js';

const AFFILIATIONS: Affiliation[] = ['outcast', 'none', 'member', 'admin', 'owner'];
const condition = (v: Verdict): string => (v.ok ? 'allowed' : v.condition);
const yes = (v: Verdict): boolean => v.ok;

describe('MUC permissions (XEP-0045)', () => {
  describe('§5.1.2 Initial Role Based on Affiliation', () => {
    // Room Type | None | Member | Admin | Owner   ("N/A *": entry is not permitted)
    const TABLE: [string, { moderated: boolean; membersOnly: boolean }, (Role | 'N/A')[]][] = [
      ['Moderated', { moderated: true, membersOnly: false }, ['visitor', 'participant', 'moderator', 'moderator']],
      ['Unmoderated', { moderated: false, membersOnly: false }, ['participant', 'participant', 'moderator', 'moderator']],
      ['Members-Only', { moderated: false, membersOnly: true }, ['N/A', 'participant', 'moderator', 'moderator']],
      ['Open', { moderated: false, membersOnly: false }, ['participant', 'participant', 'moderator', 'moderator']],
    ];
    const COLUMNS: Affiliation[] = ['none', 'member', 'admin', 'owner'];
    for (const [type, room, roles] of TABLE) {
      it(`${type}: ${roles.join(' | ')}`, () => {
        COLUMNS.forEach((aff, i) => {
          const expected = roles[i]!;
          if (expected === 'N/A') {
            assert.equal(condition(mayEnter(aff, room.membersOnly)), 'registration-required', `${aff} may not enter`);
            return;
          }
          assert.ok(yes(mayEnter(aff, room.membersOnly)), `${aff} enters`);
          assert.equal(defaultRole(aff, room.moderated), expected, `${aff} enters as ${expected}`);
        });
      });
    }
    it('outcasts have no role: they do not enter', () => {
      for (const membersOnly of [false, true]) assert.equal(condition(mayEnter('outcast', membersOnly)), 'forbidden');
      assert.equal(defaultRole('outcast', false), 'none');
    });
  });

  describe('§5.1.1 Privileges Associated With Roles (the ones a role change exercises)', () => {
    // Privilege | None | Visitor | Participant | Moderator; the actor is a member, the target unaffiliated
    const ROLES: Role[] = ['none', 'visitor', 'participant', 'moderator'];
    const TABLE: [string, string[], (actor: Standing) => boolean][] = [
      [
        'Kick Participants and Visitors',
        ['No', 'No', 'No', 'Yes'],
        (actor) =>
          yes(mayChangeRole(actor, { aff: 'none', role: 'participant' }, 'none')) &&
          yes(mayChangeRole(actor, { aff: 'none', role: 'visitor' }, 'none')),
      ],
      ['Grant Voice', ['No', 'No', 'No', 'Yes'], (actor) => yes(mayChangeRole(actor, { aff: 'none', role: 'visitor' }, 'participant'))],
      ['Revoke Voice', ['No', 'No', 'No', 'Yes***'], (actor) => yes(mayChangeRole(actor, { aff: 'none', role: 'participant' }, 'visitor'))],
    ];
    for (const [privilege, cells, may] of TABLE) {
      it(`${privilege}: ${cells.join(' | ')}`, () => {
        ROLES.forEach((role, i) => {
          assert.equal(may({ aff: 'member', role }), cells[i]!.startsWith('Yes'), `${privilege} as ${role}`);
        });
        // refusals for want of a role are forbidden (§8: "the service MUST return a forbidden error")
        assert.equal(
          condition(mayChangeRole({ aff: 'member', role: 'participant' }, { aff: 'none', role: 'visitor' }, 'participant')),
          'forbidden',
        );
      });
    }
    it('*** a moderator MUST NOT be able to revoke voice privileges from an admin or owner', () => {
      for (const actor of ['none', 'member', 'admin', 'owner'] as const)
        for (const target of ['admin', 'owner'] as const)
          assert.equal(
            condition(mayChangeRole({ aff: actor, role: 'moderator' }, { aff: target, role: 'moderator' }, 'visitor')),
            'not-allowed',
            `${actor} silencing ${target}`,
          );
    });
  });

  describe('§5.1.3 Role State Chart (changes made by someone else)', () => {
    // the actors: a moderator who is only a member, an admin, an owner (all moderators in the room);
    // the target is unaffiliated. "None >" entries are the initial roles (§5.1.2 above).
    const ACTORS: Record<string, Standing> = {
      moderator: { aff: 'member', role: 'moderator' },
      admin: { aff: 'admin', role: 'moderator' },
      owner: { aff: 'owner', role: 'moderator' },
    };
    const WHO: Record<string, string[]> = {
      'a moderator': ['moderator', 'admin', 'owner'],
      'an admin or owner': ['admin', 'owner'],
    };
    // from > to | the chart's trigger | who may
    const CHART: [Role, Role, string, string][] = [
      ['visitor', 'none', 'Exit room or be kicked by a moderator', 'a moderator'],
      ['visitor', 'participant', 'Moderator grants voice', 'a moderator'],
      ['visitor', 'moderator', 'Admin or owner grants moderator status', 'an admin or owner'],
      ['participant', 'none', 'Exit room or be kicked by a moderator', 'a moderator'],
      ['participant', 'visitor', 'Moderator revokes voice', 'a moderator'],
      ['participant', 'moderator', 'Admin or owner grants moderator status', 'an admin or owner'],
      ['moderator', 'none', 'Exit room or be kicked by an admin or owner *', 'an admin or owner'],
      ['moderator', 'visitor', 'Admin or owner changes role to visitor *', 'an admin or owner'],
      ['moderator', 'participant', 'Admin or owner changes role to participant or revokes moderator status *', 'an admin or owner'],
    ];
    for (const [from, to, trigger, who] of CHART) {
      it(`${from} > ${to}: ${trigger}`, () => {
        for (const [name, actor] of Object.entries(ACTORS)) {
          const v = mayChangeRole(actor, { aff: 'none', role: from }, to);
          assert.equal(v.ok, WHO[who]!.includes(name), `${name}: ${condition(v)}`);
          // §9: the admin use cases (moderator status) refuse non-admins; we answer not-allowed, as Prosody does
          if (!v.ok) assert.equal(v.condition, 'not-allowed');
        }
      });
    }
    it('* nobody revokes moderation privileges from someone with a higher affiliation (and admins and owners stay moderators)', () => {
      // the chart's footnote is a SHOULD NOT about higher affiliations; Uzzap (as Prosody) keeps the role an
      // affiliation brings stable (§5.1.3 note): an admin's or owner's moderator status is never revoked
      for (const actor of ['admin', 'owner'] as const)
        for (const target of ['admin', 'owner'] as const)
          for (const to of ['visitor', 'participant'] as const)
            assert.equal(
              condition(mayChangeRole(ACTORS[actor]!, { aff: target, role: 'moderator' }, to)),
              'not-allowed',
              `${actor}: ${target} > ${to}`,
            );
      // kicking is by rank (§8.2): an admin kicks an admin, not an owner; an owner kicks anyone
      assert.ok(yes(mayChangeRole(ACTORS.admin!, { aff: 'admin', role: 'moderator' }, 'none')));
      assert.equal(condition(mayChangeRole(ACTORS.admin!, { aff: 'owner', role: 'moderator' }, 'none')), 'not-allowed');
      assert.ok(yes(mayChangeRole(ACTORS.owner!, { aff: 'owner', role: 'moderator' }, 'none')));
    });
  });

  describe('§5.2.1 Privileges Associated With Affiliations', () => {
    // Privilege | Outcast | None | Member | Admin | Owner. The actor is a moderator in the room, so only
    // the affiliation decides. "N/A" (a member registering again) is not checked.
    const moderatorWith = (aff: Affiliation): Standing => ({ aff, role: 'moderator' });
    const TABLE: [string, string[], (aff: Affiliation) => boolean][] = [
      ['Enter Open Room', ['No', 'Yes*', 'Yes', 'Yes', 'Yes'], (a) => yes(mayEnter(a, false))],
      ['Register with Open Room', ['No', 'Yes', 'N/A', 'N/A', 'N/A'], (a) => yes(mayRegister(a, false))],
      // *** in a semi-anonymous room members SHOULD NOT retrieve it: checked below
      ['Retrieve Member List***', ['No', 'No', 'Yes', 'Yes', 'Yes'], (a) => yes(mayGetAffiliationList(a, 'member', 'anyone'))],
      ['Enter Members-Only Room', ['No', 'No', 'Yes*', 'Yes', 'Yes'], (a) => yes(mayEnter(a, true))],
      [
        'Ban Members and Unaffiliated Users',
        ['No', 'No', 'No', 'Yes', 'Yes'],
        (a) => yes(mayChangeAffiliation(a, 'member', 'outcast')) && yes(mayChangeAffiliation(a, 'none', 'outcast')),
      ],
      [
        'Edit Member List',
        ['No', 'No', 'No', 'Yes', 'Yes'],
        (a) => yes(mayChangeAffiliation(a, 'none', 'member')) && yes(mayChangeAffiliation(a, 'member', 'none')),
      ],
      [
        'Assign and Remove Moderator Role',
        ['No', 'No', 'No', 'Yes**', 'Yes**'],
        (a) =>
          yes(mayChangeRole(moderatorWith(a), { aff: 'none', role: 'participant' }, 'moderator')) &&
          yes(mayChangeRole(moderatorWith(a), { aff: 'none', role: 'moderator' }, 'participant')),
      ],
      [
        'Edit Admin List',
        ['No', 'No', 'No', 'No', 'Yes'],
        (a) => yes(mayChangeAffiliation(a, 'member', 'admin')) && yes(mayChangeAffiliation(a, 'admin', 'none')),
      ],
      [
        'Edit Owner List',
        ['No', 'No', 'No', 'No', 'Yes'],
        (a) => yes(mayChangeAffiliation(a, 'member', 'owner')) && yes(mayChangeAffiliation(a, 'owner', 'none')),
      ],
      ['Change Room Configuration', ['No', 'No', 'No', 'No', 'Yes'], (a) => yes(mayConfigure(a))],
      ['Destroy Room', ['No', 'No', 'No', 'No', 'Yes'], (a) => yes(mayConfigure(a))],
    ];
    for (const [privilege, cells, may] of TABLE) {
      it(`${privilege}: ${cells.join(' | ')}`, () => {
        AFFILIATIONS.forEach((aff, i) => {
          if (cells[i] === 'N/A') return;
          assert.equal(may(aff), cells[i]!.startsWith('Yes'), `${privilege} as ${aff}`);
        });
      });
    }
    it('*** in a semi-anonymous room only admins and owners retrieve the member list', () => {
      assert.equal(condition(mayGetAffiliationList('member', 'member', 'moderators')), 'forbidden');
      assert.ok(yes(mayGetAffiliationList('admin', 'member', 'moderators')));
      // the member list only: a member reads neither the ban list nor (§10.5, §10.8) the owner and admin lists
      for (const list of ['outcast', 'admin', 'owner'] as const)
        assert.equal(condition(mayGetAffiliationList('member', list, 'anyone')), 'forbidden', list);
    });
  });

  describe('§5.2.2 Affiliation State Chart', () => {
    const ACTORS: Affiliation[] = ['none', 'member', 'admin', 'owner'];
    const WHO: Record<string, Affiliation[]> = { 'Admin or owner': ['admin', 'owner'], Owner: ['owner'] };
    // from > to | the chart's trigger
    const CHART: [Affiliation, Affiliation, string][] = [
      ['outcast', 'none', 'Admin or owner removes ban'],
      ['outcast', 'member', 'Admin or owner adds user to member list'],
      ['outcast', 'admin', 'Owner adds user to admin list'],
      ['outcast', 'owner', 'Owner adds user to owner list'],
      ['none', 'outcast', 'Admin or owner applies ban'],
      ['none', 'member', 'Admin or owner adds user to member list, or user registers as member (if allowed)'],
      ['none', 'admin', 'Owner adds user to admin list'],
      ['none', 'owner', 'Owner adds user to owner list'],
      ['member', 'outcast', 'Admin or owner applies ban'],
      ['member', 'none', 'Admin or owner changes affiliation to "none"'],
      ['member', 'admin', 'Owner adds user to admin list'],
      ['member', 'owner', 'Owner adds user to owner list'],
      ['admin', 'outcast', 'Owner applies ban'],
      ['admin', 'none', 'Owner changes affiliation to "none"'],
      ['admin', 'member', 'Owner changes affiliation to "member"'],
      ['admin', 'owner', 'Owner adds user to owner list'],
      ['owner', 'outcast', 'Owner applies ban'],
      ['owner', 'none', 'Owner changes affiliation to "none"'],
      ['owner', 'member', 'Owner changes affiliation to "member"'],
      ['owner', 'admin', 'Owner changes affiliation to "admin"'],
    ];
    for (const [from, to, trigger] of CHART) {
      it(`${from} > ${to}: ${trigger}`, () => {
        const who = WHO[trigger.startsWith('Admin or owner') ? 'Admin or owner' : 'Owner']!;
        for (const actor of ACTORS) {
          const v = mayChangeAffiliation(actor, from, to);
          assert.equal(v.ok, who.includes(actor), `${actor}: ${condition(v)}`);
          if (v.ok) continue;
          // §9, §10: refused for want of an affiliation is forbidden; §9.1: an admin banning an owner (or
          // an admin) is not-allowed
          const banningAbove = to === 'outcast' && actor === 'admin' && (from === 'admin' || from === 'owner');
          assert.equal(v.condition, banningAbove ? 'not-allowed' : 'forbidden', `${actor}`);
        }
        if (trigger.includes('user registers')) assert.ok(yes(mayRegister(from, false)));
      });
    }
  });

  describe('§8–§10: refusals the use cases name', () => {
    const mod = (aff: Affiliation): Standing => ({ aff, role: 'moderator' });
    const CASES: [string, () => Verdict, string][] = [
      [
        '§8: a participant who is no admin changes a role',
        () => mayChangeRole({ aff: 'member', role: 'participant' }, { aff: 'none', role: 'visitor' }, 'participant'),
        'forbidden',
      ],
      [
        '§8.2: a moderator who is a member kicks an admin',
        () => mayChangeRole(mod('member'), { aff: 'admin', role: 'participant' }, 'none'),
        'not-allowed',
      ],
      [
        '§8.2: a moderator who is a member or admin kicks an owner',
        () => mayChangeRole(mod('admin'), { aff: 'owner', role: 'moderator' }, 'none'),
        'not-allowed',
      ],
      [
        '§8.2: a moderator kicks himself (MAY deny: conflict)',
        () => mayChangeRole(mod('member'), { aff: 'member', role: 'moderator' }, 'none', true),
        'conflict',
      ],
      ['§8.2: an admin kicks himself', () => mayChangeRole(mod('admin'), mod('admin'), 'none', true), 'conflict'],
      [
        '§8.4: voice revoked from someone at the moderator\u2019s affiliation',
        () => mayChangeRole(mod('member'), { aff: 'member', role: 'participant' }, 'visitor'),
        'not-allowed',
      ],
      [
        '§8.4: voice revoked from someone above it',
        () => mayChangeRole(mod('none'), { aff: 'member', role: 'participant' }, 'visitor'),
        'not-allowed',
      ],
      [
        '§8.4: voice revoked from someone below it',
        () => mayChangeRole(mod('member'), { aff: 'none', role: 'participant' }, 'visitor'),
        'allowed',
      ],
      ['§8.5: a participant asks for the voice list', () => mayGetRoleList({ aff: 'member', role: 'participant' }), 'forbidden'],
      ['§8.5: a moderator asks for the voice list', () => mayGetRoleList(mod('none')), 'allowed'],
      ['§9.8: an admin not in the room asks for the moderator list', () => mayGetRoleList({ aff: 'admin', role: 'none' }), 'allowed'],
      ['§9: a member changes an affiliation', () => mayChangeAffiliation('member', 'none', 'outcast'), 'forbidden'],
      ['§9.1: an admin bans an owner', () => mayChangeAffiliation('admin', 'owner', 'outcast'), 'not-allowed'],
      ['§9.1: an admin bans himself', () => mayChangeAffiliation('admin', 'admin', 'outcast', true), 'conflict'],
      ['§9.1: an owner bans himself', () => mayChangeAffiliation('owner', 'owner', 'outcast', true), 'conflict'],
      ['§9.2: a member asks for the ban list', () => mayGetAffiliationList('member', 'outcast', 'anyone'), 'forbidden'],
      ['§9.2: an admin asks for the ban list', () => mayGetAffiliationList('admin', 'outcast', 'moderators'), 'allowed'],
      [
        '§9.6: an admin grants moderator status',
        () => mayChangeRole({ aff: 'admin', role: 'none' }, { aff: 'none', role: 'visitor' }, 'moderator'),
        'allowed',
      ],
      [
        '§9.7: an admin revokes moderator status from an admin',
        () => mayChangeRole(mod('admin'), mod('admin'), 'participant'),
        'not-allowed',
      ],
      ['§9.7: an admin revokes moderator status from a member', () => mayChangeRole(mod('admin'), mod('member'), 'participant'), 'allowed'],
      ['§10.2: an admin configures the room', () => mayConfigure('admin'), 'forbidden'],
      ['§10.3: an admin grants owner status', () => mayChangeAffiliation('admin', 'member', 'owner'), 'forbidden'],
      ['§10.4: an owner revokes another owner\u2019s status', () => mayChangeAffiliation('owner', 'owner', 'member'), 'allowed'],
      [
        '§10.5: an admin asks for the owner list of a semi-anonymous room',
        () => mayGetAffiliationList('admin', 'owner', 'moderators'),
        'forbidden',
      ],
      [
        '§10.5: an admin asks for the owner list of a non-anonymous room (MAY)',
        () => mayGetAffiliationList('admin', 'owner', 'anyone'),
        'allowed',
      ],
      ['§10.6: an admin grants admin status', () => mayChangeAffiliation('admin', 'none', 'admin'), 'forbidden'],
      ['§10.7: an admin revokes admin status', () => mayChangeAffiliation('admin', 'admin', 'member'), 'forbidden'],
      [
        '§10.8: an admin asks for the admin list of a semi-anonymous room',
        () => mayGetAffiliationList('admin', 'admin', 'moderators'),
        'forbidden',
      ],
      ['§10.9: an admin destroys the room', () => mayConfigure('admin'), 'forbidden'],
    ];
    for (const [name, verdict, expected] of CASES) it(`${name}: ${expected}`, () => assert.equal(condition(verdict()), expected));

    it('§10.4, §10.5: the last owner stays (a conflict), judged on the whole request', () => {
      const room = new Map<string, { affiliation: Affiliation }>([
        ['alice@x', { affiliation: 'owner' }],
        ['bob@x', { affiliation: 'owner' }],
        ['carol@x', { affiliation: 'member' }],
      ]);
      assert.equal(ownersAfter(room, new Map([['alice@x', 'member']])), 1, 'an owner steps down while another remains');
      assert.equal(
        ownersAfter(
          room,
          new Map<string, Affiliation>([
            ['alice@x', 'member'],
            ['bob@x', 'none'],
          ]),
        ),
        0,
        'both go',
      );
      assert.equal(
        ownersAfter(
          room,
          new Map<string, Affiliation>([
            ['alice@x', 'member'],
            ['bob@x', 'none'],
            ['carol@x', 'owner'],
          ]),
        ),
        1,
        'both go, and a new one comes',
      );
      assert.equal(ownersAfter(room, new Map([['carol@x', 'none']])), 2, 'no owner touched');
    });
  });
});
