// Every module the server can load, in load order (no filesystem scanning).
import type { XepModule } from '../src/api/index.js';
import disco from './0030-disco/index.js';
import privateStorage from './0049-private/index.js';
import vcard from './0054-vcard/index.js';
import version from './0092-version/index.js';
import ping from './0199-ping/index.js';
import time from './0202-time/index.js';
import im from '../src/im/index.js';

// src/im/ holds RFC 6121 core IM, on the same module contract, always loaded first.
export const MODULES: XepModule<never>[] = [im, disco, privateStorage, vcard, version, ping, time] as XepModule<never>[];
