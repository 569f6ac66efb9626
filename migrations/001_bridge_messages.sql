-- The table of the bridges' `database` sink (docs/bridges.md, "Receiving"): one row per event a
-- bridge received from its peer and handed to PostgreSQL. The gateway runs this file itself
-- when it connects and finds no `bridge_messages` table; an operator who keeps DDL away from
-- the gateway's role runs it once beforehand. Safe to run again.
CREATE TABLE IF NOT EXISTS bridge_messages (
    id          bigserial   PRIMARY KEY,
    -- The tenant whose bridge received it, and the bridge's name (BRIDGES_FILE).
    tenant_id   text        NOT NULL,
    bridge      text        NOT NULL,
    -- The peer's event name and payload.
    event       text        NOT NULL,
    data        jsonb       NOT NULL,
    -- When the gateway received it (the seed payload's `timestamp`).
    "timestamp" timestamptz NOT NULL,
    -- The seed payload's `metadata` ({tenantId, bridge}) and `source` ({provider, url, protocol}).
    metadata    jsonb       NOT NULL,
    source      jsonb       NOT NULL,
    -- When the row was written.
    received_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS bridge_messages_tenant_time ON bridge_messages (tenant_id, "timestamp");
