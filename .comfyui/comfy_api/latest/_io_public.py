from ._io import *  # noqa: F403
