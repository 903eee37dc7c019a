"""`python -m photoncloud.creditservice`: run CreditService."""

from .app import main

main()
