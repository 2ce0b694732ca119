"""Daily weather aggregates every day; on the last day of a month, a branch builds the month's."""
