-- API tokens. Only the SHA-256 of a token's plaintext is stored (hash); the
-- plaintext is shown once, when the token is created. grants is a JSON array
-- of {"role", "scope"} objects. expires_at is NULL for a token that never
-- expires, revoked_at NULL for one still in force.
CREATE TABLE tokens (
    id         TEXT NOT NULL PRIMARY KEY,
    hash       TEXT NOT NULL UNIQUE,
    user_name  TEXT NOT NULL,
    grants     TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT,
    revoked_at TEXT,
    created_by TEXT NOT NULL
) STRICT;
