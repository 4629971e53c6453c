"""`cffi.error` under the switch: cffi's exception classes are jitffi's."""
from jitffi import (CDefError, FFIError, VerificationError, VerificationMissing,  # noqa: F401
                    PkgConfigError)

__jitffi__ = True
