-- Every signed version of a withdrawal's transaction, and operator cancel requests.
-- golang-migrate format: applies whole or not at all.
--
-- A withdrawal has one nonce and one or more versions at that nonce: the first payment, fee-bumped
-- replacements of it (same recipient and amount), and at most a few 'cancel' versions (0-value
-- self-transfers that replace the payment when an operator cancels). Any one version can be mined;
-- a mined payment version IS the payment, whichever it is.
CREATE TABLE withdrawal_transactions (
    id                        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    withdrawal_id             bigint NOT NULL REFERENCES withdrawals (id),
    kind                      text NOT NULL CHECK (kind IN ('payment', 'cancel')),
    nonce                     bigint NOT NULL CHECK (nonce >= 0),
    tx_hash                   text NOT NULL,
    raw_tx                    bytea NOT NULL,
    -- Wei. NULL only for versions copied from withdrawals signed before this migration.
    max_fee_per_gas           numeric(78, 0) CHECK (max_fee_per_gas >= 0),
    max_priority_fee_per_gas  numeric(78, 0) CHECK (max_priority_fee_per_gas >= 0),
    created_at                timestamptz NOT NULL DEFAULT now(),
    -- The first send attempt, committed BEFORE the bytes leave the process: from then on the
    -- version may be in a mempool, so its nonce is never given to another payment.
    sent_at                   timestamptz,
    last_sent_at              timestamptz,
    -- Where the tracker last saw it mined (cleared again when a reorg drops the block).
    mined_block_number        bigint CHECK (mined_block_number >= 0),
    mined_block_hash          text,
    mined_success             boolean,
    -- Set when its withdrawal failed: the version can no longer land (never sent, or its nonce was
    -- taken on chain by something else). Only live versions must have unique hashes, so an identical
    -- payout retried after a failure (same nonce, recipient, amount, fees: same bytes) can pay.
    discarded_at              timestamptz,
    CONSTRAINT withdrawal_transactions_mined_fields CHECK (
        (mined_block_number IS NULL) = (mined_block_hash IS NULL)
        AND (mined_block_number IS NULL) = (mined_success IS NULL))
);
CREATE UNIQUE INDEX withdrawal_transactions_live_hash ON withdrawal_transactions (tx_hash) WHERE discarded_at IS NULL;
CREATE INDEX withdrawal_transactions_withdrawal ON withdrawal_transactions (withdrawal_id, id);

-- Versions of withdrawals signed before this migration. Whether a signed one was sent is unknown:
-- it counts as sent (its nonce is never released).
INSERT INTO withdrawal_transactions (withdrawal_id, kind, nonce, tx_hash, raw_tx, created_at, sent_at, last_sent_at,
                                     discarded_at)
SELECT id, 'payment', nonce, tx_hash, raw_tx, coalesce(signed_at, updated_at), coalesce(broadcast_at, signed_at),
       coalesce(broadcast_at, signed_at), CASE WHEN status = 'failed' THEN coalesce(failed_at, now()) END
FROM withdrawals
WHERE nonce IS NOT NULL AND tx_hash IS NOT NULL AND raw_tx IS NOT NULL
ORDER BY id;

-- `walletctl withdrawals cancel ID` writes these; the broadcaster acts on them.
ALTER TABLE withdrawals
    ADD COLUMN cancel_requested_at timestamptz,
    ADD COLUMN cancel_requested_by text,
    ADD CONSTRAINT withdrawals_cancel_fields CHECK ((cancel_requested_at IS NULL) = (cancel_requested_by IS NULL));

-- withdrawals.tx_hash: unique among withdrawals that did not fail (see discarded_at above).
DROP INDEX withdrawals_tx_hash;
CREATE UNIQUE INDEX withdrawals_tx_hash ON withdrawals (tx_hash) WHERE tx_hash IS NOT NULL AND status <> 'failed';
