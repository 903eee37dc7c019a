"""`python -m photoncloud.flaredb`: run the FlareDB service."""

from .app import main

main()
