-- Groups of users and the roles APIs declare (issue 16): access tokens for an API carry the
-- roles granted to the user, directly or through a group; the `groups` scope releases the
-- user's groups.
ALTER TABLE apis ADD COLUMN roles TEXT NOT NULL DEFAULT '[]';  -- JSON array of {name, description}
CREATE TABLE groups (
    name TEXT PRIMARY KEY NOT NULL,
    description TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE group_members (
    group_name TEXT NOT NULL,
    user_id TEXT NOT NULL,
    PRIMARY KEY (group_name, user_id)
);
CREATE INDEX group_members_user ON group_members (user_id);
-- A role of API `api` granted to a user (kind 'user', assignee: the user's id) or to a group
-- (kind 'group', assignee: the group's name).
CREATE TABLE role_assignments (
    api TEXT NOT NULL,
    role TEXT NOT NULL,
    kind TEXT NOT NULL,
    assignee TEXT NOT NULL,
    PRIMARY KEY (api, role, kind, assignee)
);
CREATE INDEX role_assignments_assignee ON role_assignments (kind, assignee);
