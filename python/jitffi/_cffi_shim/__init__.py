"""`cffi` when JITFFI_AS_CFFI=1 (or after jitffi.install_as_cffi()): jitffi under cffi's
name. This file is only ever loaded as the module `cffi` (by _jitffi_as_cffi.py's finder).

Check which one is active: `cffi.__jitffi__` is True here (real cffi has no such name),
and `cffi.__file__` points into the jitffi package.
"""
from jitffi import (FFI, CDefError, FFIError, VerificationError, VerificationMissing,
                    PkgConfigError, __version__, __version_info__)

__all__ = ['FFI', 'VerificationError', 'VerificationMissing', 'CDefError', 'FFIError']

__jitffi__ = True
__version_verifier_modules__ = "0.8.6"
