export const NS_CLIENT = 'jabber:client';
export const NS_STREAM = 'http://etherx.jabber.org/streams';
export const NS_TLS = 'urn:ietf:params:xml:ns:xmpp-tls';
export const NS_SASL = 'urn:ietf:params:xml:ns:xmpp-sasl';
export const NS_BIND = 'urn:ietf:params:xml:ns:xmpp-bind';
export const NS_SESSION = 'urn:ietf:params:xml:ns:xmpp-session';
export const NS_FRAMING = 'urn:ietf:params:xml:ns:xmpp-framing';
export const NS_SASL_CB = 'urn:xmpp:sasl-cb:0';
