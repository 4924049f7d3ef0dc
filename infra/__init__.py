"""Shared infrastructure: settings, production-write guard, artifact store, loaders, event bus.

No trading logic lives here; every other layer may import it, it imports none of them.
"""
