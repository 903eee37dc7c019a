"""`python -m photoncloud.plasmavmc`: run PlasmaVMC."""

from .app import main

main()
