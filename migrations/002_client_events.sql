-- The table of `forward` destinations of kind `database` (BACKENDS_FILE; docs/namespace-spec.md,
-- "Forwarding client events to backends"): one row per client event a spec forwarded there. The
-- gateway runs this file itself when it connects and finds no `client_events` table; an operator
-- who keeps DDL away from the gateway's role runs it once beforehand. Safe to run again.
CREATE TABLE IF NOT EXISTS client_events (
    id          bigserial   PRIMARY KEY,
    -- The destination's name in BACKENDS_FILE (several may share the table).
    destination text        NOT NULL,
    -- The socket's tenant (NULL when it has none), the spec's namespace and the event's name.
    tenant_id   text,
    namespace   text        NOT NULL,
    event       text        NOT NULL,
    -- The socket's public id and user id (NULL when anonymous), also in `socket`.
    socket_id   text        NOT NULL,
    user_id     text,
    -- What was forwarded: the call's `data`, and its `socket`
    -- ({id, transport, userId, tenantId, roles, authenticated}).
    data        jsonb       NOT NULL,
    socket      jsonb       NOT NULL,
    -- When the gateway received the event (the call's `timestamp`).
    "timestamp" timestamptz NOT NULL,
    -- When the row was written.
    received_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS client_events_tenant_time ON client_events (tenant_id, "timestamp");
