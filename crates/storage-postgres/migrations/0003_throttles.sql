-- Throttling of guesses (sign-in passwords, user codes), one row per key: the consecutive
-- failures counted and when the last was counted. An attempt is counted before its guess is
-- checked, in one transaction that holds the keys' rows locked (issue 13, finding 1), so the
-- limit holds across instances. `login_failures` is no longer written; it stays for instances
-- of the previous version during a rolling upgrade and empties through the clean-up.
CREATE TABLE throttles (
    key TEXT PRIMARY KEY,
    failures BIGINT NOT NULL,
    last_at BIGINT NOT NULL
);
CREATE INDEX throttles_last_at ON throttles (last_at);
