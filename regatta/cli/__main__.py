"""`python -m regatta.cli`: the same as the `regatta` command."""

from regatta.cli import main

main()
