-- pgbench script: the transaction wallet-service runs for POST /v1/withdrawals (src/wallet/store.cpp),
-- statement for statement: insert the withdrawal (idempotency key + digest; created_by NULL, as the
-- benchmark's service runs with auth.disabled), conditional debit,
-- outbox row (its AFTER INSERT trigger runs pg_notify), commit. Run with -M prepared, as the
-- service uses prepared statements. No ':' in the SQL text but variables (pgbench would take
-- "HH24:MI" for variables), hence to_json() for the RFC 3339 time where the service uses to_char().
\set user random(1, :users)
BEGIN;
INSERT INTO withdrawals (user_id, chain, to_address, amount, idempotency_key, request_digest)
  VALUES (:user, 'eth', '0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed', 0.000001, gen_random_uuid()::text,
          sha256(convert_to(CAST(:user AS text) || '0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed0.000001eth', 'UTF8')))
  ON CONFLICT DO NOTHING
  RETURNING id AS withdrawal_id, (to_json(created_at AT TIME ZONE 'UTC') #>> '{}') || 'Z' AS created_at \gset
UPDATE accounts SET balance = balance - 0.000001, updated_at = now()
  WHERE user_id = :user AND balance >= 0.000001 RETURNING balance;
INSERT INTO outbox_messages (topic, key, payload, headers)
  VALUES ('wallet_events_withdrawal', CAST(:user AS text),
          convert_to('{"withdrawal_id":' || CAST(:withdrawal_id AS text) || ',"user_id":' || CAST(:user AS text) ||
                     ',"to_address":"0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed","amount":"0.000001","chain":"eth"}', 'UTF8'),
          jsonb_build_object('event-type', 'WithdrawalCreated', 'created-at', CAST(:created_at AS text))
            || jsonb_build_object('event-id', gen_random_uuid()::text));
COMMIT;
