"""For tests that interrupt a subprocess with SIGINT.

A shell that runs the test suite in the background sets SIGINT to "ignore", children inherit
that, and Python then never raises KeyboardInterrupt, so the signal would be lost. Passing
`preexec_fn=default_sigint` to `subprocess.Popen` restores the default disposition in the child.
"""
import signal


def default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
