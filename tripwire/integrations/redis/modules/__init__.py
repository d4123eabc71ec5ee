"""What feeds Sentry's Queries (`queries`) and Caches (`caches`) pages."""
