"""`python -m photoncloud.k8shost`: run k8shost's API server."""

from .app import main

main()
