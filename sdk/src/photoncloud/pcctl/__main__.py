"""`python -m photoncloud.pcctl`, the same as the `pcctl` command."""

from .cli import main

main()
