"""Notifier destinations: one message, sent once, to a webhook (json, slack, discord, teams,
ntfy, gotify), a mail server, a Healthchecks ping URL or an Apprise URL. Queues, retries,
rate limits and what to send live above, in reconciler/notifications.py."""
