"""The store's schema, as numbered migrations for each backend. A store applies, at start-up and
under a lock (so that replicas started together do not race), every migration above the version
its database records, in one transaction each.

1  budgets, single-use confirmations, the audit (append-only: the database refuses UPDATE,
   DELETE and, in PostgreSQL, TRUNCATE)
2  the audit's outcome records (`intent_id`: a send is recorded before it happens and its outcome
   after, so a process killed in between leaves "outcome unknown", never nothing); approval
   pages; the token-check cache
3  OAuth (`--auth oauth`): registered clients, grants (the Relatel token encrypted), and the
   single-use or expiring secrets of the flow (consents, codes, access and refresh tokens),
   kept only as SHA-256 digests
4  when each OAuth client registered and first completed a grant: clients that never complete
   one expire, and only so many may be waiting at once (clients already registered count from
   the migration; those with a grant count as granted)
5  the budget's and the audit's `tenant` column is renamed `account`, after what it holds: the
   account (a pseudonym of company and employee; before that is known, of the token), not the
   credential a call uses
6  retention: a record may leave the audit only by a prune recorded in it first (a `pruning`
   record of the tool `audit_retention`, written after the records it removes, naming the cutoff
   they are older than): UPDATE (and TRUNCATE) are refused as before, and so is any DELETE of a
   row that no such record covers. Indexes on `at` (the time filters, the prune) and on
   `(tool, id)` (the tool filter, the last prune)

Version 1 is written with IF NOT EXISTS so that a SQLite file from before migrations existed is
taken over as it is.
"""

from __future__ import annotations

SQLITE: tuple[str, ...] = (
    """
    CREATE TABLE IF NOT EXISTS budget (
        tenant TEXT NOT NULL, day TEXT NOT NULL, kind TEXT NOT NULL, used INTEGER NOT NULL,
        PRIMARY KEY (tenant, day, kind));
    CREATE TABLE IF NOT EXISTS used_token (nonce TEXT PRIMARY KEY, expires REAL NOT NULL);
    CREATE TABLE IF NOT EXISTS audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, tenant TEXT NOT NULL, tool TEXT NOT NULL,
        kind TEXT NOT NULL, arguments TEXT NOT NULL, channel TEXT, decision TEXT NOT NULL,
        status INTEGER, upstream_id TEXT, detail TEXT);
    CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    """,
    """
    ALTER TABLE audit ADD COLUMN intent_id INTEGER;
    CREATE INDEX audit_intent ON audit (intent_id);
    CREATE INDEX audit_tenant ON audit (tenant, id);
    CREATE TABLE approval (
        id TEXT PRIMARY KEY, question TEXT NOT NULL, tool TEXT NOT NULL, expires REAL NOT NULL,
        decision TEXT);
    CREATE TABLE account (token TEXT PRIMARY KEY, account TEXT, expires REAL NOT NULL);
    """,
    """
    CREATE TABLE oauth_client (client_id TEXT PRIMARY KEY, info TEXT NOT NULL);
    CREATE TABLE oauth_grant (
        id TEXT PRIMARY KEY, client_id TEXT NOT NULL, account TEXT NOT NULL, relatel_token TEXT NOT NULL,
        created REAL NOT NULL, revoked REAL);
    CREATE TABLE oauth_secret (
        digest TEXT PRIMARY KEY, kind TEXT NOT NULL, grant_id TEXT, data TEXT NOT NULL,
        expires REAL NOT NULL, used REAL);
    CREATE INDEX oauth_secret_grant ON oauth_secret (grant_id);
    """,
    """
    ALTER TABLE oauth_client ADD COLUMN created REAL;
    ALTER TABLE oauth_client ADD COLUMN granted REAL;
    UPDATE oauth_client SET created = CAST(strftime('%s', 'now') AS REAL),
        granted = (SELECT min(g.created) FROM oauth_grant g WHERE g.client_id = oauth_client.client_id);
    CREATE INDEX oauth_client_waiting ON oauth_client (created) WHERE granted IS NULL;
    """,
    """
    ALTER TABLE budget RENAME COLUMN tenant TO account;
    ALTER TABLE audit RENAME COLUMN tenant TO account;
    DROP INDEX audit_tenant;
    CREATE INDEX audit_account ON audit (account, id);
    """,
    """
    DROP TRIGGER audit_no_delete;
    CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit WHEN NOT EXISTS (
        SELECT 1 FROM audit p WHERE p.tool = 'audit_retention' AND p.decision = 'pruning'
        AND p.id > OLD.id AND OLD.at < json_extract(p.arguments, '$.older_than'))
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only: a record leaves it only by a prune recorded in it'); END;
    CREATE INDEX audit_at ON audit (at);
    CREATE INDEX audit_tool ON audit (tool, id);
    """,
)

POSTGRES: tuple[str, ...] = (
    """
    CREATE TABLE budget (
        tenant TEXT NOT NULL, day TEXT NOT NULL, kind TEXT NOT NULL, used BIGINT NOT NULL,
        PRIMARY KEY (tenant, day, kind));
    CREATE TABLE used_token (nonce TEXT PRIMARY KEY, expires DOUBLE PRECISION NOT NULL);
    CREATE TABLE audit (
        id BIGSERIAL PRIMARY KEY, at TEXT NOT NULL, tenant TEXT NOT NULL, tool TEXT NOT NULL,
        kind TEXT NOT NULL, arguments TEXT NOT NULL, channel TEXT, decision TEXT NOT NULL,
        status INTEGER, upstream_id TEXT, detail TEXT);
    CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'the audit log is append-only'; END $$;
    CREATE TRIGGER audit_no_change BEFORE UPDATE OR DELETE ON audit
        FOR EACH ROW EXECUTE FUNCTION audit_append_only();
    CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit
        FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
    """,
    """
    ALTER TABLE audit ADD COLUMN intent_id BIGINT;
    CREATE INDEX audit_intent ON audit (intent_id);
    CREATE INDEX audit_tenant ON audit (tenant, id);
    CREATE TABLE approval (
        id TEXT PRIMARY KEY, question TEXT NOT NULL, tool TEXT NOT NULL,
        expires DOUBLE PRECISION NOT NULL, decision TEXT);
    CREATE TABLE account (token TEXT PRIMARY KEY, account TEXT, expires DOUBLE PRECISION NOT NULL);
    """,
    """
    CREATE TABLE oauth_client (client_id TEXT PRIMARY KEY, info TEXT NOT NULL);
    CREATE TABLE oauth_grant (
        id TEXT PRIMARY KEY, client_id TEXT NOT NULL, account TEXT NOT NULL, relatel_token TEXT NOT NULL,
        created DOUBLE PRECISION NOT NULL, revoked DOUBLE PRECISION);
    CREATE TABLE oauth_secret (
        digest TEXT PRIMARY KEY, kind TEXT NOT NULL, grant_id TEXT, data TEXT NOT NULL,
        expires DOUBLE PRECISION NOT NULL, used DOUBLE PRECISION);
    CREATE INDEX oauth_secret_grant ON oauth_secret (grant_id);
    """,
    """
    ALTER TABLE oauth_client ADD COLUMN created DOUBLE PRECISION;
    ALTER TABLE oauth_client ADD COLUMN granted DOUBLE PRECISION;
    UPDATE oauth_client SET created = extract(epoch FROM now()),
        granted = (SELECT min(g.created) FROM oauth_grant g WHERE g.client_id = oauth_client.client_id);
    CREATE INDEX oauth_client_waiting ON oauth_client (created) WHERE granted IS NULL;
    """,
    """
    ALTER TABLE budget RENAME COLUMN tenant TO account;
    ALTER TABLE audit RENAME COLUMN tenant TO account;
    ALTER INDEX audit_tenant RENAME TO audit_account;
    """,
    """
    DROP TRIGGER audit_no_change ON audit;
    CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
        FOR EACH ROW EXECUTE FUNCTION audit_append_only();
    CREATE FUNCTION audit_pruned_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF EXISTS (SELECT 1 FROM audit p WHERE p.tool = 'audit_retention' AND p.decision = 'pruning'
                       AND p.id > OLD.id AND OLD.at < (p.arguments::jsonb ->> 'older_than')) THEN
                RETURN OLD;
            END IF;
            RAISE EXCEPTION 'the audit log is append-only: a record leaves it only by a prune recorded in it';
        END $$;
    CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
        FOR EACH ROW EXECUTE FUNCTION audit_pruned_only();
    CREATE INDEX audit_at ON audit (at);
    CREATE INDEX audit_tool ON audit (tool, id);
    """,
)

AUDIT_FIELDS = (
    "id",
    "at",
    "account",
    "tool",
    "kind",
    "arguments",
    "channel",
    "decision",
    "status",
    "upstream_id",
    "detail",
)
# One logical record per attempt: an intent merged with its outcome, if one was written.
# An intent without an outcome is a send the server stopped in the middle of: outcome unknown.
DECISION = """CASE WHEN o.id IS NOT NULL THEN o.decision
                WHEN i.decision = 'sending' THEN 'outcome_unknown' ELSE i.decision END"""
RECORDS = f"""
    SELECT i.id, i.at, i.account, i.tool, i.kind, i.arguments,
           CASE WHEN o.id IS NULL THEN i.channel ELSE o.channel END,
           {DECISION},
           CASE WHEN o.id IS NULL THEN i.status ELSE o.status END,
           CASE WHEN o.id IS NULL THEN i.upstream_id ELSE o.upstream_id END,
           CASE WHEN o.id IS NOT NULL THEN o.detail
                WHEN i.decision = 'sending' THEN 'sent; the server stopped before it learned the outcome'
                ELSE i.detail END
    FROM audit i LEFT JOIN audit o ON o.intent_id = i.id
    WHERE i.intent_id IS NULL {{where}}
    ORDER BY i.id {{order}} LIMIT ?
"""
# The logical records (intents) a prune may remove: older than the cutoff, written before the
# prune's own record, and with no outcome that is not (an intent and its outcome go together).
PRUNABLE = """
    SELECT i.id FROM audit i
    WHERE i.intent_id IS NULL AND i.at < ? AND i.id < ?
      AND NOT EXISTS (SELECT 1 FROM audit o WHERE o.intent_id = i.id AND (o.at >= ? OR o.id > ?))
    ORDER BY i.id LIMIT ?
"""
