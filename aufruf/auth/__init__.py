"""Staff accounts, roles, sessions for pages, bearer tokens for devices.

logic.py   who may do what (the role table), CSRF tokens, throttling decisions: pure
service.py accounts, sessions, tokens, sign-in with throttling, in the database
guards.py  the `actor` dependency, `requires(action)` guards, socket and page helpers
pages.py   /login and /logout;  api.py  GET /api/v1/me;  cli.py  `aufruf user|token`
"""
