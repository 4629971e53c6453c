"""`python -m jitffi run script.py args...` / `python -m jitffi run -m module args...`:
runs a program with jitffi standing in for cffi (JITFFI_AS_CFFI=1, also for the
subprocesses it starts)."""
import os
import runpy
import sys

_USAGE = """usage: python -m jitffi run script.py [args...]
       python -m jitffi run -m module [args...]

Runs the program with `import cffi` and `import _cffi_backend` giving jitffi
(as JITFFI_AS_CFFI=1 does; subprocesses inherit it)."""


def main(argv):
    if len(argv) < 2 or argv[0] != "run" or (argv[1] == "-m" and len(argv) < 3):
        sys.stderr.write(_USAGE + "\n")
        return 2
    import _jitffi_as_cffi
    _jitffi_as_cffi.install()
    if argv[1] == "-m":
        module = argv[2]
        sys.argv = [module] + argv[3:]  # runpy puts the module's path in argv[0]
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    else:
        script = argv[1]
        sys.argv = argv[1:]
        # As `python script.py`: the script's directory first on sys.path.
        sys.path[0] = os.path.dirname(os.path.abspath(script))
        runpy.run_path(script, run_name="__main__")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
