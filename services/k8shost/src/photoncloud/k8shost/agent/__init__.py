"""k8shost's node agent (the kubelet's role): registers its node, heartbeats, runs the pods bound
to it and reports their phase and containers' states. Run it with `python -m photoncloud.k8shost.agent`."""
