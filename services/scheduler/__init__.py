"""The scheduler service: RQ's cron scheduler (`rq cron services.scheduler.cron`) starting the daily
batch. See cron.py."""
