from ._jitffi import __version__
