-- Every status change of a withdrawal, with when it happened, for `walletctl withdrawals show` and
-- `list --older-than` (time in the current status). A trigger records it, so every writer (wallet,
-- broadcaster, an operator's SQL) is covered without changing them. Cheap on purpose: it fires only
-- on an UPDATE that changes status (a handful per withdrawal), never on the wallet's INSERT: a
-- withdrawal's first status is `pending` at created_at, read from the row itself.
CREATE TABLE withdrawal_status_history (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    withdrawal_id    bigint NOT NULL REFERENCES withdrawals (id) ON DELETE CASCADE,
    from_status      text NOT NULL,
    to_status        text NOT NULL,
    -- The changing transaction's time, as the writers' own *_at columns (now()).
    changed_at       timestamptz NOT NULL DEFAULT now(),
    -- failure_reason when the change is to `failed`.
    reason           text
);
CREATE INDEX withdrawal_status_history_withdrawal ON withdrawal_status_history (withdrawal_id, id);

CREATE FUNCTION withdrawal_status_history_record() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO withdrawal_status_history (withdrawal_id, from_status, to_status, reason)
    VALUES (NEW.id, OLD.status, NEW.status, CASE WHEN NEW.status = 'failed' THEN NEW.failure_reason END);
    RETURN NULL;
END
$$;

CREATE TRIGGER withdrawals_status_history AFTER UPDATE OF status ON withdrawals
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION withdrawal_status_history_record();

-- Withdrawals from before this migration: their history rebuilt from the status timestamps the
-- row keeps (pending -> signed -> broadcast -> confirmed, or -> failed from the last one reached).
INSERT INTO withdrawal_status_history (withdrawal_id, from_status, to_status, changed_at, reason)
SELECT id, from_status, to_status, changed_at, reason
FROM (
    SELECT w.id, s.from_status, s.to_status, s.changed_at, s.reason, s.step
    FROM withdrawals w
    CROSS JOIN LATERAL (VALUES
        (1, 'pending', 'signed', w.signed_at, NULL::text),
        (2, 'signed', 'broadcast', w.broadcast_at, NULL),
        (3, 'broadcast', 'confirmed', w.confirmed_at, NULL),
        (4, CASE WHEN w.broadcast_at IS NOT NULL THEN 'broadcast'
                 WHEN w.signed_at IS NOT NULL THEN 'signed' ELSE 'pending' END,
            'failed', w.failed_at, w.failure_reason)
    ) AS s (step, from_status, to_status, changed_at, reason)
    WHERE s.changed_at IS NOT NULL
) AS steps
ORDER BY id, changed_at, step;
