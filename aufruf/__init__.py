"""aufruf: appointment booking and queue management for public offices."""
