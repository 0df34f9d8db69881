-- API tokens. Only the SHA-256 of a token's plaintext is stored (hash); the
-- plaintext is shown once, when the token is created. grants is a JSON array
-- of {"role", "scope"} objects. expires_at is NULL for a token that never
-- expires, revoked_at NULL for one still in force.
CREATE TABLE tokens (
    id         text NOT NULL PRIMARY KEY,
    hash       text NOT NULL UNIQUE,
    user_name  text NOT NULL,
    grants     text NOT NULL,
    created_at text COLLATE "C" NOT NULL,
    expires_at text COLLATE "C",
    revoked_at text COLLATE "C",
    created_by text NOT NULL
);
