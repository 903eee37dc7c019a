"""`python -m photoncloud.iam`: run the IAM service."""

from .app import main

main()
