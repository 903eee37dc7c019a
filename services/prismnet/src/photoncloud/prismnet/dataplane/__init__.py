"""PrismNET's dataplane: the agent that makes a host carry VPCs, subnets, ports and security groups.

Run it on every host as root: `python -m photoncloud.prismnet.dataplane` (agent.py says what it does,
netdev.DeviceNames in the shared library how its devices are named).
"""
