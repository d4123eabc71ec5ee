"""Small wire-level fakes of servers that cannot run in CI, for real client libraries."""
