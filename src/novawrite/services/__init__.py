"""Use cases: functions and small classes that take the database explicitly."""
