"""`cffi.ffiplatform` under the switch: building a C extension or shared library with
setuptools (what build scripts and test suites use to compile the C code they then
dlopen). Nothing here involves jitffi's backend; compile errors become cffi's
VerificationError."""
import os
import sys

from jitffi import VerificationError, VerificationMissing  # noqa: F401

__jitffi__ = True

# The Extension keywords that hold file names (cffi's list; users read it).
LIST_OF_FILE_NAMES = ['sources', 'include_dirs', 'library_dirs', 'extra_objects', 'depends']


def get_extension(srcfilename, modname, sources=(), **kwds):
    """A setuptools Extension named `modname` built from `srcfilename` and `sources`."""
    from setuptools import Extension
    files = [srcfilename] + [os.path.normpath(s) for s in sources]
    return Extension(name=modname, sources=files, **kwds)


def compile(tmpdir, ext, compiler_verbose=0, debug=None):
    """Builds `ext` into `tmpdir` with setuptools' build_ext; returns the absolute path
    of the built file."""
    saved = os.environ.copy()
    try:
        return os.path.abspath(_build_ext(tmpdir, ext, compiler_verbose, debug))
    finally:
        # distutils may grow variables such as CFLAGS on each build: put them back.
        for key, value in saved.items():
            if os.environ.get(key) != value:
                os.environ[key] = value


def _build_ext(tmpdir, ext, compiler_verbose, debug):
    from setuptools import Distribution
    from distutils import log
    from distutils.errors import CompileError, LinkError
    dist = Distribution({'ext_modules': [ext]})
    dist.parse_config_files()
    options = dist.get_option_dict('build_ext')
    options['debug'] = ('ffiplatform', sys.flags.debug if debug is None else debug)
    options['force'] = ('ffiplatform', True)
    options['build_lib'] = ('ffiplatform', tmpdir)
    options['build_temp'] = ('ffiplatform', tmpdir)
    old = log.set_threshold(0) or 0
    try:
        log.set_verbosity(compiler_verbose)
        try:
            dist.run_command('build_ext')
        except (CompileError, LinkError) as e:
            raise VerificationError('%s: %s' % (e.__class__.__name__, e)) from None
        [output] = dist.get_command_obj('build_ext').get_outputs()
    finally:
        log.set_threshold(old)
    return output


def maybe_relative_path(path):
    """`path` relative to the current directory when it is inside it, else unchanged."""
    if not os.path.isabs(path):
        return path
    here = os.path.join(os.getcwd(), '')
    return path[len(here):] if path.startswith(here) else path


def flatten(x):
    """A canonical string for nested lists, tuples, dicts, strings and ints (cffi
    hashes Extension arguments with it)."""
    out = []
    _flatten(x, out)
    return ''.join(out)


def _flatten(x, out):
    if isinstance(x, str):
        out.append('%ds%s' % (len(x), x))
    elif isinstance(x, dict):
        out.append('%dd' % len(x))
        for key in sorted(x):
            _flatten(key, out)
            _flatten(x[key], out)
        return
    elif isinstance(x, (list, tuple)):
        out.append('%dl' % len(x))
        for item in x:
            _flatten(item, out)
    elif isinstance(x, int):
        out.append('%di' % (x,))
    else:
        raise TypeError("the keywords to verify() contains unsupported object %r" % (x,))
