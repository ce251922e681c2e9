-- Configuration as code (issue 16): the objects `tessera apply` created, which `--prune` may
-- delete once they leave the file (objects made otherwise are never pruned).
CREATE TABLE applied_objects (
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    PRIMARY KEY (kind, key)
);
