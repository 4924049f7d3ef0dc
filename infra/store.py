"""The artifact store every job uses: local files, plus the Firestore mirror when configured.

Kept apart from :mod:`infra.artifacts` (the store itself) and :mod:`infra.firestore_mirror` (which
uses the store) so that neither imports the other.
"""

from __future__ import annotations

from infra.artifacts import ArtifactMirror, ArtifactStore
from infra.settings import Settings, load_settings


def open_store(settings: Settings | None = None) -> ArtifactStore:
    """The local artifact store of ``settings`` (default: the environment), mirrored to Firestore
    when ``FIRESTORE_EMULATOR_HOST`` or ``FIRESTORE_PROJECT`` is set.

    The mirror module is imported only when Firestore is configured (its client is heavy).
    """
    s = settings or load_settings()
    mirror: ArtifactMirror | None = None
    if s.firestore_enabled:
        from infra.firestore_mirror import make_mirror  # lazy: google-cloud libs are slow to import

        mirror = make_mirror(s)
    return ArtifactStore.from_settings(s, mirror=mirror)
