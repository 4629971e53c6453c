"""`cffi.api` under the switch: the FFI class and the errors, where cffi has them."""
from jitffi import FFI, CDefError, FFIError, VerificationError, VerificationMissing  # noqa: F401

__jitffi__ = True
basestring = str
unicode = str
