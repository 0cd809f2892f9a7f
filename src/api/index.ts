// The only import surface for xeps/** (enforced by eslint).
export * from './module.js';
export * from './errors.js';
export { Element, x, parseXml, escapeXML, escapeXMLText, dateTime, serialize } from '../xml/index.js';
export { Jid, JidError, tryJid } from '../jid.js';
export { enforceNickname, PrecisError } from '../precis.js';
export { AccountExistsError } from '../storage/types.js';
export { AccountInputError } from '../accounts.js';
export type {
  Storage,
  RoomStore,
  RoomAffiliation,
  StoredRoom,
  AccountStore,
  UserDataStore,
  RosterStore,
  RosterItem,
  Subscription,
  OfflineStore,
  PubSubStore,
  StoredPubSubItem,
  StoredPubSubNode,
  CapsStore,
} from '../storage/types.js';
export { z } from 'zod';
export { dataForm, SubmittedForm, NS_DATA } from './forms.js';
export type { FormField, FieldType } from './forms.js';
export { NS_MAM, NS_MAM_EXTENDED, mamForm, parseMamQuery, runMamQuery, mamMetadata, replaceArchived } from './mam.js';
export type { ArchiveStore, ArchiveRow, ArchivedMessage, StoredInvite } from '../storage/types.js';
export { PendingIqs, type PendingIqLimits } from './pending-iqs.js';
