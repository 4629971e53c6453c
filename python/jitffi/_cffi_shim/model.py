"""`cffi.model` under the switch, as far as code that caches cdef() results needs it.

jitffi's type model is in Rust; the classes here are cffi's model types as values (their
C names built as cffi builds them: `PointerType(PrimitiveType("int")).get_c_name("x")`
is "int * x"), for code and tests that build or inspect them. `ffi._parser._declarations`
is a DeclarationsSnapshot
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


# Qualifier bits, as cffi numbers them.
Q_CONST = 0x01
Q_RESTRICT = 0x02
Q_VOLATILE = 0x04


def qualify(quals, declarator):
    """`declarator` with the qualifiers `quals` written in front of it."""
    for bit, word in ((Q_CONST, "const"), (Q_VOLATILE, "volatile"), (Q_RESTRICT, "__restrict")):
        if quals & bit:
            declarator = " %s %s" % (word, declarator.lstrip())
    return declarator


# A type's C name is kept with a marker, `&`, where a declarator goes ("int&[5]": an
# array of 5 ints; "int(*&)(void)": a function pointer); `$` marks a name C cannot spell.
class BaseTypeByIdentity(ForeignModelObject):
    is_array_type = False
    is_raw_function = False

    def get_c_name(self, replace_with="", context="a C file", quals=0):
        """The C spelling of this type around the declarator `replace_with` ("x",
        "*p", "[5]"...)."""
        text = self.c_name_with_marker
        decl = replace_with.strip()
        if decl:
            if decl.startswith("*") and "&[" in text:
                decl = "(%s)" % decl  # a pointer to an array needs parentheses
            elif decl[0] not in "[(":
                decl = " " + decl
        text = text.replace("&", qualify(quals, decl))
        if "$" in text:
            from jitffi import VerificationError
            raise VerificationError("cannot generate '%s' in %s: unknown type name"
                                    % (self._get_c_name(), context))
        return text

    def _get_c_name(self):
        return self.c_name_with_marker.replace("&", "")

    def has_c_name(self):
        return "$" not in self._get_c_name()

    def is_integer_type(self):
        return False

    def __repr__(self):
        return "<%s>" % (self._get_c_name(),)


class BaseType(BaseTypeByIdentity):
    """Types equal by their class and their defining attributes (`_attrs_`)."""
    _attrs_ = ()

    def _get_items(self):
        return [(name, getattr(self, name)) for name in self._attrs_]

    def __eq__(self, other):
        return self.__class__ == other.__class__ and self._get_items() == other._get_items()

    def __ne__(self, other):
        return not self == other

    def __hash__(self):
        return hash((self.__class__, tuple(self._get_items())))


class VoidType(BaseType):
    def __init__(self):
        self.c_name_with_marker = "void&"


void_type = VoidType()


class BasePrimitiveType(BaseType):
    def is_complex_type(self):
        return False


# The primitive types by kind: c(haracter), i(nteger), f(loat), j (complex).
_KINDS = dict(
    [(n, "c") for n in ("char", "wchar_t", "char16_t", "char32_t")]
    + [(n, "f") for n in ("float", "double", "long double")]
    + [(n, "j") for n in ("float _Complex", "double _Complex")]
    + [(n, "i") for n in (
        "short", "int", "long", "long long", "signed char", "unsigned char",
        "unsigned short", "unsigned int", "unsigned long", "unsigned long long", "_Bool",
        "int8_t", "uint8_t", "int16_t", "uint16_t", "int32_t", "uint32_t", "int64_t",
        "uint64_t", "int_least8_t", "uint_least8_t", "int_least16_t", "uint_least16_t",
        "int_least32_t", "uint_least32_t", "int_least64_t", "uint_least64_t",
        "int_fast8_t", "uint_fast8_t", "int_fast16_t", "uint_fast16_t", "int_fast32_t",
        "uint_fast32_t", "int_fast64_t", "uint_fast64_t", "intptr_t", "uintptr_t",
        "intmax_t", "uintmax_t", "ptrdiff_t", "size_t", "ssize_t")])


class PrimitiveType(BasePrimitiveType):
    _attrs_ = ("name",)

    def __init__(self, name):
        self.name = name
        self.c_name_with_marker = name + "&"

    def is_char_type(self):
        return _KINDS.get(self.name) == "c"

    def is_integer_type(self):
        return _KINDS.get(self.name) == "i"

    def is_float_type(self):
        return _KINDS.get(self.name) == "f"

    def is_complex_type(self):
        return _KINDS.get(self.name) == "j"


class UnknownIntegerType(BasePrimitiveType):
    _attrs_ = ("name",)

    def __init__(self, name):
        self.name = name
        self.c_name_with_marker = name + "&"

    def is_integer_type(self):
        return True


class UnknownFloatType(BasePrimitiveType):
    _attrs_ = ("name",)

    def __init__(self, name):
        self.name = name
        self.c_name_with_marker = name + "&"


def _arguments_text(args, ellipsis):
    names = [arg._get_c_name() for arg in args]
    if ellipsis:
        names.append("...")
    return ", ".join(names) or "void"


class BaseFunctionType(BaseType):
    _attrs_ = ("args", "result", "ellipsis", "abi")
    _declarator = "(&)"

    def __init__(self, args, result, ellipsis, abi=None):
        self.args = tuple(args)
        self.result = result
        self.ellipsis = ellipsis
        self.abi = abi
        inner = self._declarator
        if abi == "__stdcall":
            inner = inner.replace("(", "(__stdcall ", 1)
        self.c_name_with_marker = result.c_name_with_marker.replace(
            "&", "%s(%s)" % (inner, _arguments_text(self.args, ellipsis)))


class RawFunctionType(BaseFunctionType):
    """A function type (not a pointer): what `int f(int)` declares."""
    is_raw_function = True

    def as_function_pointer(self):
        return FunctionPtrType(self.args, self.result, self.ellipsis, self.abi)


class FunctionPtrType(BaseFunctionType):
    _declarator = "(*&)"

    def as_raw_function(self):
        return RawFunctionType(self.args, self.result, self.ellipsis, self.abi)


class PointerType(BaseType):
    _attrs_ = ("totype", "quals")

    def __init__(self, totype, quals=0):
        self.totype = totype
        self.quals = quals
        declarator = " *&"
        if totype.is_array_type:
            declarator = "(%s)" % declarator.lstrip()
        self.c_name_with_marker = totype.c_name_with_marker.replace(
            "&", qualify(quals, declarator))


def ConstPointerType(totype):
    """A pointer to a const `totype`."""
    return PointerType(totype, Q_CONST)


voidp_type = PointerType(void_type)
const_voidp_type = ConstPointerType(void_type)


class NamedPointerType(PointerType):
    """A pointer type known only by its typedef name."""
    _attrs_ = ("totype", "name")

    def __init__(self, totype, name, quals=0):
        PointerType.__init__(self, totype, quals)
        self.name = name
        self.c_name_with_marker = name + "&"


class ArrayType(BaseType):
    _attrs_ = ("item", "length")
    is_array_type = True

    def __init__(self, item, length):
        self.item = item
        self.length = length
        if length is None:
            brackets = "&[]"
        elif length == "...":
            brackets = "&[/*...*/]"
        else:
            brackets = "&[%s]" % (length,)
        self.c_name_with_marker = item.c_name_with_marker.replace("&", brackets)

    def length_is_unknown(self):
        return isinstance(self.length, str)

    def resolve_length(self, newlength):
        return ArrayType(self.item, newlength)


char_array_type = ArrayType(PrimitiveType("char"), None)


class StructOrUnionOrEnum(BaseTypeByIdentity):
    _attrs_ = ("name",)
    forcename = None
    kind = None

    def build_c_name_with_marker(self):
        self.c_name_with_marker = (self.forcename or "%s %s" % (self.kind, self.name)) + "&"

    def force_the_name(self, forcename):
        self.forcename = forcename
        self.build_c_name_with_marker()

    def get_official_name(self):
        assert self.c_name_with_marker.endswith("&")
        return self.c_name_with_marker[:-1]


class StructOrUnion(StructOrUnionOrEnum):
    fixedlayout = None
    completed = 0
    partial = False
    packed = 0

    def __init__(self, name, fldnames, fldtypes, fldbitsize, fldquals=None):
        self.name = name
        self.fldnames = fldnames
        self.fldtypes = fldtypes
        self.fldbitsize = fldbitsize
        self.fldquals = fldquals
        self.build_c_name_with_marker()

    def anonymous_struct_fields(self):
        for name, tp in zip(self.fldnames or (), self.fldtypes or ()):
            if name == "" and isinstance(tp, StructOrUnion):
                yield tp

    def enumfields(self, expand_anonymous_struct_union=True):
        quals = self.fldquals or (0,) * len(self.fldnames or ())
        for name, tp, bits, q in zip(self.fldnames or (), self.fldtypes or (),
                                     self.fldbitsize or (), quals):
            if name == "" and isinstance(tp, StructOrUnion) and expand_anonymous_struct_union:
                yield from tp.enumfields()
            else:
                yield (name, tp, bits, q)


class StructType(StructOrUnion):
    kind = "struct"


class UnionType(StructOrUnion):
    kind = "union"


class EnumType(StructOrUnionOrEnum):
    kind = "enum"
    partial = False
    partial_resolved = False

    def __init__(self, name, enumerators, enumvalues, baseinttype=None):
        self.name = name
        self.enumerators = enumerators
        self.enumvalues = enumvalues
        self.baseinttype = baseinttype
        self.build_c_name_with_marker()


def unknown_type(name, structname=None):
    """A type known only by its typedef name (`typedef ... foo_t;`)."""
    tp = StructType(structname or "$%s" % name, None, None, None)
    tp.force_the_name(name)
    tp.origin = "unknown_type"
    return tp


def unknown_ptr_type(name, structname=None):
    """A pointer type known only by its typedef name (`typedef ... *foo_p;`)."""
    tp = StructType(structname or "$$%s" % name, None, None, None)
    return NamedPointerType(tp, name)


for _cls in list(globals().values()):
    if isinstance(_cls, type) and issubclass(_cls, ForeignModelObject):
        _cls.__module__ = "cffi.model"
del _cls
