# One image for every Regatta role: its command chooses which (`api`, `worker`, `worker --site NAME`,
# `migrate`); docker-compose.yml runs each. Built from the same pinned versions as `make venv`
# (constraints.txt), so what runs in production is what the tests ran.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    REGATTA_HOME=/var/lib/regatta

# git: bundles read from a repository at a ref (GitPython drives the real git)
RUN apt-get update -q \
 && apt-get install -y -q --no-install-recommends git \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/regatta --create-home regatta

WORKDIR /opt/regatta
# The dependencies first, so a change to the code does not reinstall them.
COPY pyproject.toml constraints.txt README.md ./
COPY regatta/__init__.py regatta/__init__.py
RUN pip install --no-cache-dir -c constraints.txt . && pip uninstall -y regatta
COPY regatta regatta
COPY workflows workflows
COPY activities activities
COPY workers workers
RUN pip install --no-cache-dir --no-deps -c constraints.txt . \
 && python -m compileall -q /opt/regatta /usr/local/lib/python3.11/site-packages >/dev/null

USER regatta
EXPOSE 8700 9464
ENTRYPOINT ["regatta"]
CMD ["api", "--host", "0.0.0.0"]
