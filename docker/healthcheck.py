"""A container's health check: its service's /health over HTTPS, verified against the platform's CA.

Copied into the image as /opt/photoncloud/healthcheck.py; compose runs it in every service's container
(SERVICE names the service; PHOTONCLOUD_TLS_CA the CA the platform made on its first start).
"""

import os
import ssl
import sys
import urllib.request

# The services' REST ports inside their containers (the defaults of the design).
REST_PORTS = {"chainfire": 8081, "flaredb": 8082, "iam": 8083, "plasmavmc": 8084, "k8shost": 8085,
              "creditservice": 8086, "prismnet": 8087}


def main() -> int:
    """0 when the service answers healthy, 1 otherwise (what a container health check expects)."""
    context = ssl.create_default_context(cafile=os.environ["PHOTONCLOUD_TLS_CA"])
    url = f"https://127.0.0.1:{REST_PORTS[os.environ['SERVICE']]}/health"
    try:
        with urllib.request.urlopen(url, timeout=2, context=context) as response:
            return 0 if response.status == 200 else 1
    except OSError as exc:
        print(f"{url}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
