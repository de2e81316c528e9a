-- outbox.dead_letter_blocks_key: a dead letter holds back the later rows of its key. The relay's
-- claim asks, per claimed row, "has an earlier row of this key been dead-lettered?"; this index
-- answers it with one probe (the table is small, but a scan per claimed row would not be).
CREATE INDEX outbox_dead_letters_key ON outbox_dead_letters (key, id) WHERE key IS NOT NULL;

-- `walletctl dead-letters discard` moves dead letters here instead of deleting them: who dropped
-- which message, when, and the message itself, for the audit trail. Nothing reads it back.
CREATE TABLE outbox_discarded_dead_letters (
    id            bigint PRIMARY KEY,  -- the outbox_messages id it had
    topic         text NOT NULL,
    key           text,
    payload       bytea NOT NULL,
    headers       jsonb NOT NULL,
    created_at    timestamptz NOT NULL,
    attempts      integer NOT NULL,
    last_error    text NOT NULL,
    dead_at       timestamptz NOT NULL,
    discarded_at  timestamptz NOT NULL DEFAULT now(),
    discarded_by  text NOT NULL DEFAULT current_user
);
