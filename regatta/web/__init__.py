"""The fleet view: server-rendered pages on the API's port (`/ui`), signed in with an API token
exchanged for a session cookie. See regatta/web/pages.py."""
