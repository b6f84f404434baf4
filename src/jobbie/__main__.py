"""`python -m jobbie` is the `jobbie` command."""

from jobbie.cli import main

main()
