/**
 * Events the trust module publishes: type name to payload (plain data: ids and primitives).
 * Other modules may import these types (type-only) to subscribe.
 */
export type TrustEvents = {};
