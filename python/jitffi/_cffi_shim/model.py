"""`cffi.model` under the switch, as far as code that caches cdef() results needs it.

jitffi has no Python type model. `ffi._parser._declarations` is a DeclarationsSnapshot
(its class is here, so pickles name `cffi.model`, the module a restricted unpickler of
such a cache allows), which restores the declarations when assigned back. The other
names are cffi's class names, so that isinstance() checks answer False rather than
raising, and a cache that real cffi wrote (made of those classes) unpickles into
objects that assigning to `ffi._parser._declarations` refuses with a clear error.
"""
from jitffi._decl_cache import DeclarationsSnapshot as _Snapshot, ForeignModelObject

__jitffi__ = True


class DeclarationsSnapshot(_Snapshot):
    __slots__ = ()
    __module__ = "cffi.model"


class BaseTypeByIdentity(ForeignModelObject):
    __module__ = "cffi.model"


class BaseType(BaseTypeByIdentity):
    pass


class VoidType(BaseType):
    pass


class BasePrimitiveType(BaseType):
    pass


class PrimitiveType(BasePrimitiveType):
    pass


class UnknownIntegerType(BasePrimitiveType):
    pass


class UnknownFloatType(BasePrimitiveType):
    pass


class BaseFunctionType(BaseType):
    pass


class RawFunctionType(BaseFunctionType):
    pass


class FunctionPtrType(BaseFunctionType):
    pass


class PointerType(BaseType):
    pass


class NamedPointerType(PointerType):
    pass


class ArrayType(BaseType):
    pass


class StructOrUnionOrEnum(BaseTypeByIdentity):
    pass


class StructOrUnion(StructOrUnionOrEnum):
    pass


class StructType(StructOrUnion):
    pass


class UnionType(StructOrUnion):
    pass


class EnumType(StructOrUnionOrEnum):
    pass


for _cls in list(globals().values()):
    if isinstance(_cls, type) and issubclass(_cls, ForeignModelObject):
        _cls.__module__ = "cffi.model"
del _cls
