"""One HTTP client for the tests' own calls (to the simulator, the API, a dev stack): `httpx.get(...)` makes a client
per call, and its TLS context costs about 30 ms of CPU, which polling loops paid many times a second. It keeps no
cookies (a cookie jar that accepts none), so each call stands alone as `httpx.get` did."""

from __future__ import annotations

from http.cookiejar import CookieJar, DefaultCookiePolicy

import httpx

http = httpx.Client(timeout=5.0, cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])))
