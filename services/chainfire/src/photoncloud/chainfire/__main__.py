"""`python -m photoncloud.chainfire`: run the ChainFire service."""

from .app import main

main()
