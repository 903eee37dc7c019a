"""`python -m photoncloud.prismnet`: run PrismNET."""

from .app import main

main()
