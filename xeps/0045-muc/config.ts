// A room's configuration (XEP-0045 §10.2): defaults, the muc#roomconfig form
// an owner fills in, and reading the submitted form back.
import { StanzaError, dataForm, type Element, type SubmittedForm } from '../../src/api/index.js';
import { NS_ROOMCONFIG } from './ns.js';

export type Role = 'moderator' | 'participant' | 'visitor' | 'none';
export type Affiliation = 'owner' | 'admin' | 'member' | 'outcast' | 'none';
export type PmPolicy = 'anyone' | 'participants' | 'moderators' | 'none';

export interface RoomConfig {
  name: string;
  description: string;
  lang: string;
  public: boolean;
  persistent: boolean;
  membersOnly: boolean;
  moderated: boolean;
  /** '' when the room has no password */
  password: string;
  /** 0: the service's limit */
  maxUsers: number;
  whois: 'moderators' | 'anyone';
  historyLength: number;
  allowPm: PmPolicy;
  changeSubject: boolean;
  allowInvites: boolean;
  /** roles whose presence is broadcast (muc#roomconfig_presencebroadcast) */
  presenceBroadcast: Role[];
  /** above this many occupants, presence of non-moderators goes only to moderators (0: never) */
  presenceThreshold: number;
  /** secret behind occupant ids (XEP-0421), stable for the room's life */
  occupantSalt: string;
  /** XEP-0486: SHA-1 of the room vCard's PHOTO ('' or absent: none) */
  avatarHash?: string;
}

export const FIELD_PRESENCE_THRESHOLD = 'x-uzzap#presence_threshold';

const bool = (v: boolean): boolean => v;

export function roomConfigForm(
  c: RoomConfig,
  limits: { maxUsers: number; maxHistory: number },
  owners: string[],
  admins: string[],
): Element {
  const users = [
    ...new Set([10, 20, 30, 50, 100, 200, 500, 1000, 5000, 10000].filter((n) => n <= limits.maxUsers).concat(limits.maxUsers)),
  ];
  return dataForm(
    'form',
    NS_ROOMCONFIG,
    [
      { var: 'muc#roomconfig_roomname', type: 'text-single', label: 'Room name', value: c.name },
      { var: 'muc#roomconfig_roomdesc', type: 'text-single', label: 'Description', value: c.description },
      { var: 'muc#roomconfig_lang', type: 'text-single', label: 'Language of discussion', value: c.lang },
      {
        var: 'muc#roomconfig_changesubject',
        type: 'boolean',
        label: 'Allow occupants to change the subject',
        value: bool(c.changeSubject),
      },
      { var: 'muc#roomconfig_allowinvites', type: 'boolean', label: 'Allow occupants to invite others', value: c.allowInvites },
      {
        var: 'muc#roomconfig_allowpm',
        type: 'list-single',
        label: 'Who may send private messages',
        value: c.allowPm,
        options: [
          { value: 'anyone', label: 'Anyone' },
          { value: 'participants', label: 'Anyone with voice' },
          { value: 'moderators', label: 'Moderators only' },
          { value: 'none', label: 'Nobody' },
        ],
      },
      {
        var: 'muc#roomconfig_maxusers',
        type: 'list-single',
        label: 'Maximum number of occupants',
        value: c.maxUsers || limits.maxUsers,
        options: users.map((n) => ({ value: String(n), label: String(n) })),
      },
      {
        var: 'muc#roomconfig_presencebroadcast',
        type: 'list-multi',
        label: 'Roles whose presence is broadcast',
        values: c.presenceBroadcast,
        options: [
          { value: 'moderator', label: 'Moderator' },
          { value: 'participant', label: 'Participant' },
          { value: 'visitor', label: 'Visitor' },
        ],
      },
      {
        var: FIELD_PRESENCE_THRESHOLD,
        type: 'text-single',
        label: 'Above this many occupants, send join/leave/status of non-moderators only to moderators (0: never)',
        value: c.presenceThreshold,
      },
      { var: 'muc#roomconfig_publicroom', type: 'boolean', label: 'List the room in the directory', value: c.public },
      { var: 'muc#roomconfig_persistentroom', type: 'boolean', label: 'Keep the room when it is empty', value: c.persistent },
      { var: 'muc#roomconfig_moderatedroom', type: 'boolean', label: 'Only occupants with voice may speak', value: c.moderated },
      { var: 'muc#roomconfig_membersonly', type: 'boolean', label: 'Only members may enter', value: c.membersOnly },
      { var: 'muc#roomconfig_passwordprotectedroom', type: 'boolean', label: 'A password is required to enter', value: c.password !== '' },
      { var: 'muc#roomconfig_roomsecret', type: 'text-private', label: 'Password', value: c.password },
      {
        var: 'muc#roomconfig_whois',
        type: 'list-single',
        label: 'Who may discover real JIDs',
        value: c.whois,
        options: [
          { value: 'moderators', label: 'Moderators only' },
          { value: 'anyone', label: 'Anyone' },
        ],
      },
      {
        var: 'muc#maxhistoryfetch',
        type: 'text-single',
        label: `Messages of discussion history sent on join (at most ${limits.maxHistory})`,
        value: c.historyLength,
      },
      { var: 'muc#roomconfig_enablelogging', type: 'boolean', label: 'Log the discussion publicly', value: false },
      { var: 'muc#roomconfig_roomowners', type: 'jid-multi', label: 'Room owners', values: owners },
      { var: 'muc#roomconfig_roomadmins', type: 'jid-multi', label: 'Room admins', values: admins },
    ],
    { title: 'Room configuration', instructions: 'Set the room options, then submit.' },
  );
}

const ROLES = new Set(['moderator', 'participant', 'visitor']);

function int(form: SubmittedForm, v: string, min: number, max: number): number | undefined {
  const s = form.text(v);
  if (s === undefined) return undefined;
  if (s === 'none' || s === '') return 0;
  const n = Number(s);
  if (!Number.isInteger(n) || n < min) throw new StanzaError('not-acceptable', `${v} must be a whole number`);
  return Math.min(n, max);
}

function pick<T extends string>(form: SubmittedForm, v: string, allowed: readonly T[]): T | undefined {
  const s = form.text(v);
  if (s === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(s)) throw new StanzaError('not-acceptable', `${v} must be one of ${allowed.join(', ')}`);
  return s as T;
}

/** The configuration after applying a submitted form; unknown fields are ignored (XEP-0045 §10.2). */
export function applyConfigForm(cur: RoomConfig, form: SubmittedForm, limits: { maxUsers: number; maxHistory: number }): RoomConfig {
  if (form.formType !== undefined && form.formType !== NS_ROOMCONFIG)
    throw new StanzaError('bad-request', 'FORM_TYPE must be ' + NS_ROOMCONFIG);
  const c = { ...cur };
  const b = (v: string): boolean | undefined => {
    if (!form.has(v)) return undefined;
    const r = form.bool(v);
    if (r === undefined) throw new StanzaError('not-acceptable', `${v} must be a boolean`);
    return r;
  };
  c.name = form.text('muc#roomconfig_roomname') ?? c.name;
  c.description = form.text('muc#roomconfig_roomdesc') ?? c.description;
  c.lang = form.text('muc#roomconfig_lang') ?? c.lang;
  c.changeSubject = b('muc#roomconfig_changesubject') ?? c.changeSubject;
  c.allowInvites = b('muc#roomconfig_allowinvites') ?? c.allowInvites;
  c.allowPm = pick(form, 'muc#roomconfig_allowpm', ['anyone', 'participants', 'moderators', 'none'] as const) ?? c.allowPm;
  c.maxUsers = int(form, 'muc#roomconfig_maxusers', 1, limits.maxUsers) ?? c.maxUsers;
  const pb = form.values('muc#roomconfig_presencebroadcast');
  if (pb) {
    if (pb.some((r) => !ROLES.has(r))) throw new StanzaError('not-acceptable', 'presencebroadcast takes moderator, participant, visitor');
    c.presenceBroadcast = pb as Role[];
  }
  c.presenceThreshold = int(form, FIELD_PRESENCE_THRESHOLD, 0, 1_000_000) ?? c.presenceThreshold;
  c.public = b('muc#roomconfig_publicroom') ?? c.public;
  c.persistent = b('muc#roomconfig_persistentroom') ?? c.persistent;
  c.moderated = b('muc#roomconfig_moderatedroom') ?? c.moderated;
  c.membersOnly = b('muc#roomconfig_membersonly') ?? c.membersOnly;
  const secret = form.text('muc#roomconfig_roomsecret');
  const protectedRoom = b('muc#roomconfig_passwordprotectedroom');
  if (secret !== undefined) c.password = secret;
  if (protectedRoom === false) c.password = '';
  if (protectedRoom === true && c.password === '')
    throw new StanzaError('not-acceptable', 'a password-protected room needs muc#roomconfig_roomsecret');
  c.whois = pick(form, 'muc#roomconfig_whois', ['moderators', 'anyone'] as const) ?? c.whois;
  c.historyLength = int(form, 'muc#maxhistoryfetch', 0, limits.maxHistory) ?? c.historyLength;
  return c;
}
