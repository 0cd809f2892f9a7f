// Every module the server can load, in load order (no filesystem scanning).
import type { XepModule } from '../src/api/index.js';
import disco from './0030-disco/index.js';
import privateStorage from './0049-private/index.js';
import vcard from './0054-vcard/index.js';
import version from './0092-version/index.js';
import ping from './0199-ping/index.js';
import time from './0202-time/index.js';
import im from '../src/im/index.js';
import last from './0012-last/index.js';
import register from './0077-register/index.js';
import offline from './0160-offline/index.js';
import blocking from './0191-blocking/index.js';
import reporting from './0377-spam-reporting/index.js';
import carbons from './0280-carbons/index.js';
import muc from './0045-muc/index.js';
import sm from './0198-sm/index.js';
import csi from './0352-csi/index.js';
import sid from './0359-sid/index.js';
import push from './0357-push/index.js';
import mam from './0313-mam/index.js';
import adhoc from './0050-adhoc/index.js';
import admin from './0133-admin/index.js';
import caps from './0115-caps/index.js';
import pep from './0163-pep/index.js';
import bookmarks from './0402-bookmarks/index.js';
import avatars from './0398-avatar-conversion/index.js';
import mds from './0490-mds/index.js';
import turn from './0215-extdisco/index.js';
import contact from './0157-contact/index.js';
import upload from './0363-upload/index.js';
import invites from './0401-invites/index.js';

// src/im/ holds RFC 6121 core IM, on the same module contract, always loaded first.
export const MODULES: XepModule<never>[] = [
  im,
  disco,
  last,
  privateStorage,
  vcard,
  caps,
  pep,
  bookmarks,
  avatars,
  mds,
  turn,
  contact,
  upload,
  register,
  invites,
  version,
  offline,
  blocking,
  reporting,
  ping,
  time,
  carbons,
  muc,
  sm,
  csi,
  sid,
  push,
  mam,
  adhoc,
  admin,
] as XepModule<never>[];
