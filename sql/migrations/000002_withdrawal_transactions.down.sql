-- Fails (and changes nothing) when a failed and a live withdrawal share a tx_hash: the old index
-- cannot hold both.
DROP INDEX withdrawals_tx_hash;
CREATE UNIQUE INDEX withdrawals_tx_hash ON withdrawals (tx_hash) WHERE tx_hash IS NOT NULL;
ALTER TABLE withdrawals
    DROP CONSTRAINT withdrawals_cancel_fields,
    DROP COLUMN cancel_requested_by,
    DROP COLUMN cancel_requested_at;
DROP TABLE withdrawal_transactions;
