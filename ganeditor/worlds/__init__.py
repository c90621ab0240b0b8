"""Procedural worlds with ground truth and offline photo sets.

- ``portraits``: faces with attributes and landmarks (``render_portrait``, ``render_from_attributes``)
- ``scenes``: street scenes rendered by day and by night from the same parameters (``paired``)
- ``synthetic_night``: a night version of a real daytime photo
- ``datasets``: deterministic torch datasets over the worlds
- ``photos``: the offline real-photo set gathered from package registries

Import the submodules you need; this package imports nothing heavy itself.
"""
