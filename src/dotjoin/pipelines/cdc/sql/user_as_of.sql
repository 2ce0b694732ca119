-- A user's state as of an instant: the version valid then (valid_from <= t < valid_to), none if deleted.
-- tables: users
-- param: user_id bigint
-- param: as_of timestamptz
SELECT user_id, email, full_name, country, tier, version, op, valid_from, valid_to
FROM users_history
WHERE user_id = :user_id
  AND valid_from <= :as_of AND (valid_to IS NULL OR valid_to > :as_of)
  AND NOT is_deleted
