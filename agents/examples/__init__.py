"""Runnable examples of extending dca: a tool, a check, an ability and a task family."""
