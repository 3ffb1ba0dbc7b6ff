"""Telling people: one Notifier interface over Slack, email, PagerDuty and Jira."""
