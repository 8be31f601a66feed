"""kling_lab's benchmarks: ``python -m bench`` (see bench/README.md).

Nothing here imports kling_lab or fal_client at package import: ``bench.__main__``
starts the emulator first, since fal_client fixes its host when first imported.
"""
