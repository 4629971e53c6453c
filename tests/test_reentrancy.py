"""Python code that runs while jitffi works on a cdata (a __repr__, a destructor, an
allocator's free) may touch that same cdata again: it must see a consistent state, and
no caught panic (jitffi's InternalError) may come out."""
import jitffi
from jitffi import _jitffi


def test_internal_error_is_a_system_error():
    assert issubclass(_jitffi.InternalError, SystemError)


def test_repr_of_the_callable_may_release_the_callback():
    ffi = jitffi.FFI()
    holder = {}

    class Target:
        def __call__(self, x):
            return x

        def __repr__(self):
            ffi.release(holder["cb"])
            return "<target>"

    holder["cb"] = cb = ffi.callback("int(int)", Target())
    assert repr(cb) == "<cdata 'int(*)(int)' calling <target>>"
    assert repr(cb) == "<cdata 'int(*)(int)' released>"


def test_repr_of_a_handle_target_may_release_the_handle():
    ffi = jitffi.FFI()
    holder = {}

    class Obj:
        def __repr__(self):
            ffi.release(holder["h"])
            return "<obj>"

    holder["h"] = h = ffi.new_handle(Obj())
    assert repr(h) == "<cdata 'void *' handle to <obj>>"
    assert repr(h) == "<cdata 'void *' released>"


def test_destructor_may_release_and_inspect_its_cdata():
    ffi = jitffi.FFI()
    seen = []
    holder = {}

    def destructor(p):
        g = holder["g"]
        ffi.release(g)  # already being released: nothing more happens
        seen.append(repr(g))

    raw = ffi.new("int[4]")
    holder["g"] = g = ffi.gc(raw, destructor)
    ffi.release(g)
    assert seen == ["<cdata 'int[4]' released>"]


def test_gc_detach_drops_a_destructor_that_touches_the_cdata():
    ffi = jitffi.FFI()
    holder = {}

    class Destructor:
        def __call__(self, p):
            pass

        def __del__(self):
            # runs when ffi.gc(p, None) drops it: the cdata's state must be free
            holder["repr"] = repr(holder["g"])

    holder["g"] = g = ffi.gc(ffi.new("int *"), Destructor())
    assert ffi.gc(g, None) is None
    assert holder["repr"].startswith("<cdata 'int *' 0x")


def test_allocator_free_may_look_at_the_cdata():
    ffi = jitffi.FFI()
    blocks = {}
    seen = []
    holder = {}

    def alloc(n):
        b = ffi.new("char[]", n)
        blocks[int(ffi.cast("intptr_t", b))] = b
        return b

    def free(p):
        seen.append(repr(holder["p"]))
        del blocks[int(ffi.cast("intptr_t", p))]

    holder["p"] = p = ffi.new_allocator(alloc, free)("int[2]", [1, 2])
    assert list(p) == [1, 2]
    ffi.release(p)
    assert seen == ["<cdata 'int[2]' released>"] and not blocks
