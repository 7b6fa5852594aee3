"""The exceptions clopt raises: one line from the library (clopt_errmsg) and its status."""


class Error(Exception):
    """A failure of libclopt (or of finding it). `status` is the library's negative status
    (enum clopt_status), or None when the failure happened before the library was called."""

    def __init__(self, message, status=None, result=None):
        super().__init__(message)
        self.message = message
        self.status = status
        # A partial result where one exists (a diverged run: the last finite theta).
        self.result = result


class BadInput(Error, ValueError):
    """The caller's input is wrong: an unknown name, a value out of range, a missing or
    malformed file (CLOPT_ERR_INVALID_ARG, CLOPT_ERR_BAD_FILE)."""


class DeviceError(Error):
    """No OpenCL device, the named one is absent, it lacks a feature, is out of memory, or
    an OpenCL call failed (NO_DEVICE, UNSUPPORTED, OUT_OF_MEMORY, OPENCL)."""


class Diverged(Error, ArithmeticError):
    """The loss or ||g|| became NaN/Inf; `result.x` holds the last finite iterate."""
