-- The two lookups that run on every authenticated request (SPEC §4): an API
-- token's identity (db/tokens.cpp) and a browser session's (db/sessions.cpp).
--
-- Why functions: DATABASE_URL may point at PgBouncer in transaction mode
-- (SPEC §3), so the server prepares no statement, and PostgreSQL plans a
-- plain statement again on every call. For these joins the planning cost
-- more than the execution (pg_stat_statements during 64 concurrent 1 MiB
-- uploads: token lookup 0.19 ms planning against 0.03 ms executing), and a
-- tus upload authenticates twice (creation and PATCH). PL/pgSQL keeps each
-- statement's plan in the backend that ran it, which is no session state a
-- client can see: any backend behind the pooler plans it once and reuses it
-- (pgbench, one client: 0.175 ms per lookup as a statement, 0.075 ms as a
-- call of this function).
--
-- What each one checks is unchanged from the statements they replace:
-- revocation, expiry and disabled users against the database clock. A
-- change to either lookup is a new migration (create or replace function).

-- `stale`: last_used_at is worth writing (a minute or more old, or none).
create function token_identity(p_token_id text)
  returns table (secret_hash text, id bigint, username text, role text,
                 quota_bytes bigint, stale boolean)
  language plpgsql stable
as $$
begin
  return query
    select t.secret_hash, u.id, u.username, u.role, u.quota_bytes,
           (t.last_used_at is null or t.last_used_at < now() - interval '1 minute')
    from api_tokens t join users u on u.id = t.user_id
    where t.id = p_token_id
      and t.revoked_at is null
      and (t.expires_at is null or t.expires_at > now())
      and u.disabled_at is null;
end
$$;

-- Pushes the idle expiry forward (never past the absolute one) and answers
-- who the session is; no row for an unknown, expired or disabled one.
create function session_identity(p_id_hash text, p_idle_seconds bigint)
  returns table (id bigint, username text, role text, quota_bytes bigint,
                 csrf_token text)
  language plpgsql volatile
as $$
begin
  return query
    update sessions s set last_seen_at = now(),
           idle_expires_at = least(now() + make_interval(secs => p_idle_seconds),
                                   s.absolute_expires_at)
    from users u
    where s.id_hash = p_id_hash and u.id = s.user_id and u.disabled_at is null
      and s.idle_expires_at > now() and s.absolute_expires_at > now()
    returning u.id, u.username, u.role, u.quota_bytes, s.csrf_token;
end
$$;
