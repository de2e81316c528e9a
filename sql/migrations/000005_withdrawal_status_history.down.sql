DROP TRIGGER withdrawals_status_history ON withdrawals;
DROP FUNCTION withdrawal_status_history_record();
DROP TABLE withdrawal_status_history;
