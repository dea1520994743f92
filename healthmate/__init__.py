"""``python -m healthmate``: the one help page listing every command of streams, batch and web."""
