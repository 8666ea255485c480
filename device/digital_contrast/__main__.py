"""`python -m digital_contrast`: the command line of cli.py (the one module that imports it)."""

from digital_contrast.cli import main

main()
