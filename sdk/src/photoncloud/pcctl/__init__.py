"""pcctl: PhotonCloud's command line, built on photoncloud.sdk."""
