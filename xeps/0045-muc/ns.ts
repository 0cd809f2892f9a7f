// Namespaces of XEP-0045 and the extensions a modern MUC service speaks.
export const NS_MUC = 'http://jabber.org/protocol/muc';
export const NS_USER = 'http://jabber.org/protocol/muc#user';
export const NS_ADMIN = 'http://jabber.org/protocol/muc#admin';
export const NS_OWNER = 'http://jabber.org/protocol/muc#owner';
export const NS_UNIQUE = 'http://jabber.org/protocol/muc#unique';
export const NS_REQUEST = 'http://jabber.org/protocol/muc#request';
export const NS_REGISTER_FORM = 'http://jabber.org/protocol/muc#register';
export const NS_ROOMCONFIG = 'http://jabber.org/protocol/muc#roomconfig';
export const NS_ROOMINFO = 'http://jabber.org/protocol/muc#roominfo';
export const NS_STABLE_ID = 'http://jabber.org/protocol/muc#stable_id';
export const NS_SELF_PING = 'http://jabber.org/protocol/muc#self-ping-optimization';
export const NS_REGISTER = 'jabber:iq:register';
export const NS_DISCO_INFO = 'http://jabber.org/protocol/disco#info';
export const NS_DISCO_ITEMS = 'http://jabber.org/protocol/disco#items';
export const NS_RSM = 'http://jabber.org/protocol/rsm';
export const NS_PING = 'urn:xmpp:ping';
export const NS_SID = 'urn:xmpp:sid:0';
export const NS_OCCUPANT_ID = 'urn:xmpp:occupant-id:0';
export const NS_DELAY = 'urn:xmpp:delay';
export const NS_MODERATE = 'urn:xmpp:message-moderate:1';
export const NS_RETRACT = 'urn:xmpp:message-retract:1';
/** XEP-0425 0.2 / XEP-0424 0.3, still sent by deployed clients (slixmpp), inside an XEP-0422 fastening */
export const NS_MODERATE_0 = 'urn:xmpp:message-moderate:0';
export const NS_RETRACT_0 = 'urn:xmpp:message-retract:0';
export const NS_FASTEN = 'urn:xmpp:fasten:0';
export const NS_FALLBACK = 'urn:xmpp:fallback:0';
export const NS_VCARD = 'vcard-temp';
