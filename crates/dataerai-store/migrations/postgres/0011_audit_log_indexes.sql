-- The admin area's audit log, newest first, filtered by action or by actor,
-- and each user's last sign-in (the newest `auth.sign_in` they made).
CREATE INDEX audit_events_action ON audit_events(action, seq);
CREATE INDEX audit_events_actor ON audit_events(actor_user_id, seq);
