"""The kiosk at a location's entrance: draw a ticket or check in with a booking code."""
