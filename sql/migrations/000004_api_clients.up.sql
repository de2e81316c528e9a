-- API clients (issue 13): who created each withdrawal, Idempotency-Keys per client, and deposits
-- with their own Idempotency-Key so that a retried deposit credits once.

-- The name of the API token that created the withdrawal (NULL: the service ran with
-- auth.disabled = true, or the row predates this migration).
ALTER TABLE withdrawals ADD COLUMN created_by text;

-- Idempotency-Keys belong to a client: two clients may both send "order-1". The wallet's insert
-- uses ON CONFLICT DO NOTHING, which any unique index arbitrates.
ALTER TABLE withdrawals DROP CONSTRAINT withdrawals_idempotency_key_key;
CREATE UNIQUE INDEX withdrawals_client_idempotency_key ON withdrawals (coalesce(created_by, ''), idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- Every credit through the API. balance_after is the answer the deposit got, replayed to a retry
-- with the same key and body (request_digest).
CREATE TABLE deposits (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id          bigint NOT NULL CHECK (user_id > 0),
    amount           numeric(78, 18) NOT NULL CHECK (amount > 0),
    balance_after    numeric(78, 18),
    idempotency_key  text,
    request_digest   bytea,
    created_by       text,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX deposits_client_idempotency_key ON deposits (coalesce(created_by, ''), idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX deposits_user ON deposits (user_id, id);
