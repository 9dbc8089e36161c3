# Not code, and never any: this empty file makes letters/ the package flexnet.letters,
# so that the letters ship inside the wheel and are found through importlib.resources.
# (A namespace package cannot do it on Python 3.11 with an editable install: see setup.cfg.)
