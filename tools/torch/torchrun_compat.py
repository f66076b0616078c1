"""torchrun_compat.py — lets Debian's torchrun (torch 1.13) start on Python 3.11. Python 3.11
iterates an IntFlag without its zero and multi-bit members, so torch 1.13's Std.from_str("0")
(torchrun's default --redirects and --tee) returns None and every `torchrun` or `python3 -m
torch.distributed.run` stops with "AttributeError: 'NoneType' object has no attribute 'get'"
before a worker starts (fixed upstream in torch 2.0). `make deps` installs this file and a .pth
line that calls install(): a finder that, when torch.distributed.elastic.multiprocessing.api is
first imported, replaces Std.from_str with one that parses the same forms, if the bug is there.
Nothing else is imported or changed, and nothing at all on a torch without the bug."""
import importlib.abc
import importlib.util
import re
import sys

TARGET = "torch.distributed.elastic.multiprocessing.api"


def patch(mod):
    std = mod.Std
    if std.from_str("0") is not None:
        return

    def from_str(cls, vm):
        if re.match(mod._VALUE_REGEX, vm):
            return cls(int(vm))
        if re.match(mod._MAPPING_REGEX, vm):
            return {int(i): cls(int(v)) for i, v in (m.split(":") for m in vm.split(","))}
        raise ValueError("%s does not match: <%s> or <%s>" %
                         (vm, mod._VALUE_REGEX, mod._MAPPING_REGEX))
    std.from_str = classmethod(from_str)


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != TARGET:
            return None
        sys.meta_path.remove(self)  # one import to watch: find it the ordinary way
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            patch(module)
        spec.loader.exec_module = exec_module
        return spec


def install():
    if sys.version_info >= (3, 11) and not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())
