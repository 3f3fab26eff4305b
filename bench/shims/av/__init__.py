"""Bench-only stand-in for PyAV (ComfyUI imports it at start for its video nodes; FLUX image graphs never call it).

The GPU bench machine has no PyAV and its 35 MB wheel does not fit the working tree that travels there. Any
attribute or submodule resolves to a placeholder; calling one raises. Never installed in the image.
"""
import importlib.abc
import importlib.machinery
import sys
import types


class _Placeholder(types.ModuleType):
    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        sub = _Placeholder(f"{self.__name__}.{name}")
        setattr(self, name, sub)
        return sub

    def __call__(self, *args, **kwargs):
        raise RuntimeError("PyAV is not installed on this bench machine")

    def __mro_entries__(self, bases):
        return (object,)

    def __or__(self, other):
        return self

    __ror__ = __or__

    def __getitem__(self, item):
        return self


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path=None, target=None):
        if name.startswith("av."):
            return importlib.machinery.ModuleSpec(name, self, is_package=True)
        return None

    def create_module(self, spec):
        return _Placeholder(spec.name)

    def exec_module(self, module):
        module.__path__ = []


sys.meta_path.insert(0, _Finder())
sys.modules[__name__].__class__ = _Placeholder
__path__ = []
__version__ = "0.0.0+bench-stub"
