-- Throttling of guesses (sign-in passwords, user codes), one row per key: the consecutive
-- failures counted and when the last was counted. An attempt is counted before its guess is
-- checked, in one transaction with the check of the key's delay (issue 13, finding 1).
-- `login_failures` is no longer written; it stays for servers of the previous version during an
-- upgrade and empties through the clean-up.
CREATE TABLE throttles (
    key TEXT PRIMARY KEY NOT NULL,
    failures INTEGER NOT NULL,
    last_at INTEGER NOT NULL
);
CREATE INDEX throttles_last_at ON throttles (last_at);
