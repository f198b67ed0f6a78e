"""`python -m workbench`: the CLI."""

from workbench.cli import main

main()
