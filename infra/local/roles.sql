-- The two database roles of docworker (docs/deploy.md), for the local stack: run once per
-- cluster, by a superuser, before the first migration (whose grants need docworker_app to exist).
-- Idempotent, and safe to run from several sessions at once. The passwords are for the local
-- stack only; in production give the roles generated passwords or IAM authentication.
DO $$
BEGIN
    CREATE ROLE docworker_owner LOGIN PASSWORD 'docworker_owner';
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END
$$;
DO $$
BEGIN
    CREATE ROLE docworker_app LOGIN PASSWORD 'docworker_app';
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END
$$;
