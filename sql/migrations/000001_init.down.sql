DROP TABLE outbox_dead_letters;
DROP TRIGGER outbox_messages_notify ON outbox_messages;
DROP FUNCTION outbox_messages_notify();
DROP TABLE outbox_messages;
DROP TABLE hot_wallet_released_nonces;
DROP TABLE hot_wallet_nonces;
DROP TABLE withdrawals;
DROP TABLE accounts;
