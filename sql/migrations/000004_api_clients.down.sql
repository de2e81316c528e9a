-- Reverts 000004. Fails (and changes nothing) if two clients used the same Idempotency-Key,
-- since keys were global before it.
DROP TABLE deposits;
DROP INDEX withdrawals_client_idempotency_key;
ALTER TABLE withdrawals ADD CONSTRAINT withdrawals_idempotency_key_key UNIQUE (idempotency_key);
ALTER TABLE withdrawals DROP COLUMN created_by;
