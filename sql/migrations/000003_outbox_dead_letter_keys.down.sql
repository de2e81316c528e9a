DROP TABLE outbox_discarded_dead_letters;
DROP INDEX outbox_dead_letters_key;
