-- Wallet balances, withdrawals and the transactional outbox.
-- golang-migrate format: this file runs inside one transaction (walletctl) or as one
-- multi-statement query (the migrate CLI); either way it applies whole or not at all.

-- Money is numeric end to end: 78 digits covers 2^256 wei; 18 decimals is ETH's precision.
CREATE TABLE accounts (
    user_id     bigint PRIMARY KEY CHECK (user_id > 0),
    balance     numeric(78, 18) NOT NULL DEFAULT 0 CHECK (balance >= 0),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- The broadcaster's state machine: pending -> signed -> broadcast -> confirmed, or -> failed
-- (refunded in the same transaction). Every step is a conditional UPDATE ... WHERE status = <expected>.
CREATE TABLE withdrawals (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id          bigint NOT NULL REFERENCES accounts (user_id),
    chain            text NOT NULL,
    to_address       text NOT NULL,
    amount           numeric(78, 18) NOT NULL CHECK (amount > 0),
    status           text NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'signed', 'broadcast', 'confirmed', 'failed')),
    -- Idempotency-Key of the creating request and a digest of its body (same key + other body = 409).
    idempotency_key  text UNIQUE,
    request_digest   bytea,
    -- Set together when the transaction is signed, before anything is sent.
    from_address     text,
    nonce            bigint CHECK (nonce >= 0),
    tx_hash          text,
    raw_tx           bytea,
    failure_reason   text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    signed_at        timestamptz,
    broadcast_at     timestamptz,
    confirmed_at     timestamptz,
    failed_at        timestamptz,
    CONSTRAINT withdrawals_signed_fields CHECK (
        status IN ('pending', 'failed')
        OR (from_address IS NOT NULL AND nonce IS NOT NULL AND tx_hash IS NOT NULL AND raw_tx IS NOT NULL))
);
-- A nonce is used by one live withdrawal per sender; a failed one may have released it for reuse.
CREATE UNIQUE INDEX withdrawals_sender_nonce ON withdrawals (chain, from_address, nonce)
    WHERE nonce IS NOT NULL AND status <> 'failed';
CREATE UNIQUE INDEX withdrawals_tx_hash ON withdrawals (tx_hash) WHERE tx_hash IS NOT NULL;
-- Work lists of the confirmation tracker and the db-poll mode stay small: finished rows are not indexed.
CREATE INDEX withdrawals_open ON withdrawals (status, id) WHERE status IN ('pending', 'signed', 'broadcast');
CREATE INDEX withdrawals_user ON withdrawals (user_id, id);

-- Nonces per hot-wallet address, allocated under this row's lock in the signing transaction.
CREATE TABLE hot_wallet_nonces (
    chain       text NOT NULL,
    address     text NOT NULL,
    next_nonce  bigint NOT NULL CHECK (next_nonce >= 0),
    PRIMARY KEY (chain, address)
);
-- Nonces of transactions the node rejected for good: reused first, so no gap stays behind.
CREATE TABLE hot_wallet_released_nonces (
    chain        text NOT NULL,
    address      text NOT NULL,
    nonce        bigint NOT NULL CHECK (nonce >= 0),
    released_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (chain, address, nonce)
);

-- The transactional outbox. Any application may insert rows; outbox-relay publishes and deletes them.
--   key          orders messages: rows of one key are published in id order (NULL: no order).
--   partition_no the relay's unit of ownership: 256 lease partitions by key hash (by id for NULL keys).
--   attempts, last_error, next_attempt_at: set when the broker rejects a row; after max_attempts the
--                row moves to outbox_dead_letters.
CREATE TABLE outbox_messages (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    topic            text NOT NULL CHECK (topic <> ''),
    key              text,
    payload          bytea NOT NULL,
    headers          jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(headers) = 'object'),
    partition_no     smallint NOT NULL GENERATED ALWAYS AS (
                         (CASE WHEN key IS NULL THEN id ELSE hashtextextended(key, 0) END & 255)::smallint) STORED,
    created_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    attempts         integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_error       text,
    next_attempt_at  timestamptz
);
-- The claim walks the primary key in id order; this partial index serves the "is an earlier row of
-- this key waiting for a retry?" check and stays tiny (only rows that failed at least once).
CREATE INDEX outbox_messages_retrying ON outbox_messages (key, id) WHERE attempts > 0;
-- Insert/delete churn: vacuum after a fixed number of dead rows, not a fraction of the table,
-- and without cost-based throttling, so claim scans do not walk long runs of dead tuples.
ALTER TABLE outbox_messages SET (
    autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_threshold = 10000,
    autovacuum_vacuum_insert_scale_factor = 0,
    autovacuum_vacuum_insert_threshold = 20000,
    autovacuum_analyze_scale_factor = 0,
    autovacuum_analyze_threshold = 20000,
    autovacuum_vacuum_cost_delay = 0
);

-- Every insert wakes the relays (LISTEN outbox_messages) in the inserting transaction, whoever the
-- writer is; the payload names the schema so relays of other schemas ignore it. Notifications of
-- one transaction collapse into one.
CREATE FUNCTION outbox_messages_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('outbox_messages', TG_TABLE_SCHEMA);
    RETURN NULL;
END;
$$;
CREATE TRIGGER outbox_messages_notify AFTER INSERT ON outbox_messages
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_messages_notify();

-- Rows the broker rejected max_attempts times. `walletctl dead-letters requeue` moves them back.
CREATE TABLE outbox_dead_letters (
    id          bigint PRIMARY KEY,  -- the outbox_messages id it had
    topic       text NOT NULL,
    key         text,
    payload     bytea NOT NULL,
    headers     jsonb NOT NULL,
    created_at  timestamptz NOT NULL,
    attempts    integer NOT NULL,
    last_error  text NOT NULL,
    dead_at     timestamptz NOT NULL DEFAULT now()
);
