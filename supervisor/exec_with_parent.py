"""`python -m supervisor.exec_with_parent PROGRAM ARGS...`: run a program that is not ours
(coturn) so that it still dies with the supervisor: the parent-death signal set here survives
the exec."""

import os
import sys

from protocol.child import die_with_parent

die_with_parent()
os.execvp(sys.argv[1], sys.argv[1:])
