"""meshcanary: Git-native canary releases for Istio."""

__version__ = "0.1.0"
